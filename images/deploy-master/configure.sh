# Runs inside the image's root filesystem (chroot), after debian-vm's own.
set -eu
# A deployed machine has no lab seed CD: its identity comes from the deployment.
systemctl disable examlab-seed.service
