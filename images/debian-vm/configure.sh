# Runs inside the image's root filesystem (chroot) after rootfs/ is copied in.
set -eu
systemctl enable systemd-networkd.service examlab-seed.service examlab-agent.service ssh.service
# The distribution's agent unit waits for a port examlab does not create.
systemctl mask qemu-guest-agent.service
# Names resolve without a resolver daemon: labs have no DNS unless a scenario adds one.
systemctl disable systemd-networkd-wait-online.service 2>/dev/null || true
# Nothing to reap: no e2scrub snapshots are ever made here, and it costs seconds per boot under TCG.
systemctl mask e2scrub_reap.service
# The small initramfs of conf.d/examlab.conf.
update-initramfs -u -k all
# Each lab machine gets its own identity at first boot.
: > /etc/machine-id
rm -f /etc/ssh/ssh_host_*
passwd -l root
apt-get clean
