#!/usr/bin/env bash
# The real peers the tests run against, from Debian. Idempotent; needs root.
set -euo pipefail
packages=(
  iproute2 procps curl                         # namespaces, process tools
  isc-dhcp-client busybox-static dnsmasq-base dhcp-helper kea-admin kea-dhcp4-server   # DHCP clients, a DHCP server beside us, a relay, perfdhcp
  tftp-hpa atftp tftpd-hpa                     # TFTP clients; a TFTP peer for the benchmark
  qemu-system-x86 ipxe-qemu ovmf ipxe pxelinux syslinux-common syslinux-efi cpio   # the lab
  socat kmod tcpdump openssl udpcast libwrap0 time xz-utils           # captures; the KA benchmark's peers
  squashfs-tools squashfs-tools-ng zstd attr acl fdisk util-linux e2fsprogs libcap2-bin tar   # images, desc
  debootstrap xfsprogs btrfs-progs dosfstools python3                 # the lab golden, stage2 and agent tests, bench/naive-clone.sh
  grub-common grub-pc-bin grub-efi-amd64-bin mtools                   # the boot lab's local disks (BIOS and UEFI GRUB)
  ndisc6                                                              # rdisc6: the IPv6 RA test
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing test peers: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
