#!/bin/sh
# Installs the Debian packages examlab needs when they are missing (Debian 12, as root).
set -eu
# libvirt-dev before `npm ci`: the @unraid/libvirt binding builds against it.
want="docker.io debootstrap iptables gcc libc6-dev
  qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-dev libvirt-clients genisoimage fdisk btrfs-progs python3 zstd
  chromium fonts-dejavu-core"
missing=""
for pkg in $want; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "examlab needs these Debian packages:$missing (run as root, or install them)" >&2
    exit 2
  fi
  echo "installing:$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
