#!/bin/sh
# Starts the engines examlab drives when they are not running (no systemd needed) and waits for them.
set -eu
log_dir=${EXAMLAB_LOG_DIR:-/var/log/examlab}
mkdir -p "$log_dir"

wait_for() { # what, seconds, command...
  what=$1; seconds=$2; shift 2
  i=0
  while ! "$@" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt $((seconds * 4)) ]; then
      echo "$what did not come up within ${seconds}s; see $log_dir" >&2
      exit 2
    fi
    sleep 0.25
  done
}

# Kernel limits a room of systemd containers needs. Each one's systemd, dbus
# and logind hold 6 to 8 inotify instances, all as root (one user): a stock
# host's 128 stop new containers' units from starting past about 20 of them.
# And since every lab's root is the host's root, one candidate opening
# instances or watches until the limit would leave every other lab (and the
# host's own root processes) without: the limits are lifted altogether, and
# what bounds each lab is its memory limit, to which the kernel charges its
# instances and watches (about 1 KiB an instance).
# Only raised, never lowered.
raise() { # key minimum
  current=$(sysctl -n "$1" 2>/dev/null || echo 0)
  if [ "$current" -lt "$2" ]; then
    sysctl -qw "$1=$2" >/dev/null && echo "raised $1 from $current to $2"
  fi
}
raise fs.inotify.max_user_instances 2147483647
raise fs.inotify.max_user_watches 2147483647
# The same for epoll's per-user watches (root's run out, and so do the
# daemon's and the engine's event loops) and the system's open files (labs,
# without CAP_SYS_ADMIN, could no longer open any): both charged to the
# opener's memory limit.
raise fs.epoll.max_user_watches 2147483647
raise fs.file-max 9223372036854775807

# Docker's data root on a filesystem of its own: btrfs with simple quotas, so every
# lab machine's disk is bounded (`--storage-opt size`, which overlay2 honours
# only on XFS with project quotas, a kernel option this host's may lack) and
# labs filling their disks never reach the filesystem of examlab's store. The
# file is allocated in full, never sparse, for the same reason. Its size:
# EXAMLAB_DOCKER_DISK (default: half the free space, between 20G and 64G).
# Live restore: labs keep running while the engine restarts.
docker_root=${EXAMLAB_DOCKER_ROOT:-/var/lib/examlab/docker}
docker_disk=${EXAMLAB_DOCKER_DISK_FILE:-/var/lib/examlab/docker.btrfs}
mount_docker_root() {
  mountpoint -q "$docker_root" && return 0
  mkdir -p "$docker_root" "$(dirname "$docker_disk")"
  if [ ! -e "$docker_disk" ]; then
    size=${EXAMLAB_DOCKER_DISK:-}
    if [ -z "$size" ]; then
      free_gib=$(df -P --block-size=1G "$(dirname "$docker_disk")" | awk 'NR==2 {print $4}')
      half=$((free_gib / 2)); [ "$half" -gt 64 ] && half=64
      [ "$half" -lt 20 ] && { echo "not enough free space for Docker's data root: $free_gib GiB free beside $docker_disk, 40 needed" >&2; exit 2; }
      size=${half}G
    fi
    echo "allocating Docker's data root: $docker_disk ($size, btrfs with quotas)"
    fallocate -l "$size" "$docker_disk"
    mkfs.btrfs -q "$docker_disk" >/dev/null
  fi
  mount -o loop "$docker_disk" "$docker_root"
}
# Simple quotas (kernel 6.7+): each extent counts for the subvolume that
# wrote it, so a container's limit bounds what it writes, and removing a
# container costs no accounting. Full quotas walk every shared extent at each
# removal: with a room of labs the kernel's cleaner falls behind by hundreds
# of subvolumes, and past a depth it gives up and stops enforcing limits.
# btrfs-progs 6.2 cannot ask for simple quotas: the ioctl is made directly.
keep_quotas_enforced() {
  mountpoint -q "$docker_root" || return 0
  qgroups=/sys/fs/btrfs/$(findmnt -no UUID "$docker_root")/qgroups
  mode=$(cat "$qgroups/mode" 2>/dev/null || echo off)
  [ "$mode" = squota ] && return 0
  if [ -e /sys/fs/btrfs/features/simple_quota ]; then
    [ "$mode" = off ] || btrfs quota disable "$docker_root"
    python3 - "$docker_root" <<'PY'
import fcntl, os, struct, sys
BTRFS_IOC_QUOTA_CTL = (3 << 30) | (16 << 16) | (0x94 << 8) | 40
BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA = 4
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.ioctl(fd, BTRFS_IOC_QUOTA_CTL, bytearray(struct.pack("QQ", BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA, 0)))
PY
    echo "simple quotas on Docker's data root"
  else
    # An older kernel: full quotas, fully accounted at removals (slower, but limits stay enforced).
    [ "$mode" = off ] && btrfs quota enable "$docker_root" && echo "this kernel has no simple quotas: full btrfs quotas on Docker's data root (container removals cost more)" >&2
    echo 8 >"$qgroups/drop_subtree_threshold"
  fi
}
if ! docker info >/dev/null 2>&1; then
  mount_docker_root
  keep_quotas_enforced
  echo "starting dockerd (log: $log_dir/dockerd.log; data root $docker_root)"
  nohup dockerd --data-root "$docker_root" --storage-driver btrfs --live-restore >"$log_dir/dockerd.log" 2>&1 &
  wait_for dockerd 60 docker info
fi
keep_quotas_enforced

# libvirt: virtlogd keeps the VMs' console logs, libvirtd runs them. Only when
# KVM really runs guests may libvirtd see /dev/kvm: while the device exists but
# hangs guests, libvirtd re-probes QEMU at every domain start (about 52 s), so
# it then runs in a mount namespace of its own with /dev/kvm masked. Before
# any VM image is built only a tiny guest can probe KVM; run again after the
# images (as `make images` does), this re-decides with a real Linux kernel and
# restarts libvirtd if the answer changed (running VMs outlive the restart).
kvm_state=/run/examlab/libvirtd-kvm
kvm_decision() {
  if [ -e /dev/kvm ] && ! node "$(dirname "$0")/../dist/cli/bin.js" vm accel >/dev/null 2>&1; then echo masked; else echo visible; fi
}
start_libvirtd() { # masked|visible
  mkdir -p "$(dirname "$kvm_state")"
  echo "starting libvirtd (log: $log_dir/libvirtd.log; /dev/kvm $1)"
  if [ "$1" = masked ]; then
    unshare -m sh -c 'mount --bind /dev/null /dev/kvm && exec libvirtd -d' >>"$log_dir/libvirtd.log" 2>&1
  else
    libvirtd -d >>"$log_dir/libvirtd.log" 2>&1
  fi
  echo "$1" >"$kvm_state"
  wait_for libvirtd 60 virsh -c qemu:///system version
}
pgrep -x virtlogd >/dev/null || virtlogd -d
if ! virsh -c qemu:///system version >/dev/null 2>&1; then
  start_libvirtd "$(kvm_decision)"
elif [ -e /dev/kvm ] && [ "$(cat "$kvm_state" 2>/dev/null || echo visible)" = visible ] && [ "$(kvm_decision)" = masked ]; then
  echo "KVM does not run a Linux guest here: restarting libvirtd with /dev/kvm masked"
  pkill -x libvirtd || true
  wait_for "libvirtd's exit" 30 sh -c '! pgrep -x libvirtd'
  start_libvirtd masked
fi
