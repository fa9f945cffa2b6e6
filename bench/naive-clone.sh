#!/usr/bin/env bash
# The naive clone that kaboot's deploy is measured against (../shared/LAB-NOTES.md, "A
# naive clone"): a qemu TCG VM boots a kernel and a busybox initrd directly (no PXE), then
#   sfdisk (one DOS partition) → mkfs.ext4 → one tar stream of the golden root over one
#   TCP connection → fstab with the new UUID, hostname → grub-install + update-grub in a
#   chroot → poweroff,
# and the clone is then booted from its disk to the golden's marker.
# The VM is a lab node as kaboot deploys to it (test/helpers/lab-vm.ts): qemu64 with RDRAND
# (LAB_CPU), 1 GiB, one vCPU, a virtio disk, and the NIC of NAIVE_NIC: e1000 (default; the
# BIOS node's, bootNic.bios: SeaBIOS never netboots virtio-net) or virtio (the UEFI node's),
# so a comparison receives through the same emulated hardware on both sides.
#
# usage: naive-clone.sh GOLDEN_DISK
#   GOLDEN_DISK: a raw disk whose first partition holds the golden root (test/lab/golden.sh)
# Prints NAIVE-PHASES (seconds per phase, as the guest timed them) and
#   NAIVE-RESULT seconds=<qemu start to poweroff> boot_seconds=<clone boot to marker> wire_bytes=<bytes sent to the VM>
# Needs root (a namespace, a tap); busybox-static, qemu-system-x86, fdisk, e2fsprogs, tar, socat.
set -euo pipefail

golden="${1:?usage: naive-clone.sh GOLDEN_DISK}"
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
mem="${NAIVE_MEM:-1024}"
case "${NAIVE_NIC:-e1000}" in
  e1000) nic_device=e1000; nic_module=e1000 ;;
  virtio) nic_device=virtio-net-pci; nic_module=virtio_net ;;
  *) echo "naive-clone: NAIVE_NIC is e1000 or virtio, not ${NAIVE_NIC}" >&2; exit 2 ;;
esac
timeout_s="${NAIVE_TIMEOUT:-900}"
[[ $EUID -eq 0 ]] || { echo "naive-clone: needs root" >&2; exit 2; }
log() { echo "naive-clone: $*" >&2; }

eval "$("$repo/test/lab/fetch-kernel.sh")"   # KERNEL_VERSION, KERNEL_DIR, KERNEL_IMAGE

ns="kbnaive-$$-$RANDOM"
work="$(mktemp -d /tmp/kbnaive-XXXXXX)"
mnt="$work/golden"
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if ip netns list | grep -qw "$ns"; then
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  fi
  mountpoint -q "$mnt" && umount "$mnt"
  [[ -n "${loopdev:-}" ]] && losetup -d "$loopdev" 2>/dev/null
  if [[ $rc -ne 0 ]]; then log "failed; logs kept in $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# --- the installer initrd: busybox, the drivers, the real tools with their libraries ---
stage="$work/initrd"
mkdir -p "$stage"/{bin,dev,proc,sys,tmp,run,mnt,lib/modules,real/bin}
cp /bin/busybox "$stage/bin/busybox"
for m in virtio_pci virtio_blk $nic_module ext4; do
  modprobe -d "$KERNEL_DIR" -S "$KERNEL_VERSION" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' >"$work/modules"
while read -r ko; do
  cp "$ko" "$stage/lib/modules/"
  basename "$ko" >>"$stage/lib/modules/order"
done <"$work/modules"
# Kept apart from busybox's applets (LAB-NOTES: busybox's mke2fs and tar know no ext4, no xattrs).
for tool in /usr/sbin/sfdisk /usr/sbin/mke2fs /usr/bin/tar /usr/sbin/blkid; do
  cp "$tool" "$stage/real/bin/"
  for lib in $(ldd "$tool" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }'); do
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
  done
done
cat >"$stage/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
t0=$(cut -d' ' -f1 /proc/uptime)
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m 2>/dev/null; done
ip link set lo up; ip link set eth0 up; ip addr add 10.98.0.2/24 dev eth0
phase() { echo "NAIVE-PHASE $1 $(cut -d' ' -f1 /proc/uptime)"; }
fail() { echo "NAIVE-FAIL $*"; poweroff -f; }
phase start
while [ ! -b /dev/vda ]; do sleep 0.1; done
echo 'type=83, bootable' | /real/bin/sfdisk -q /dev/vda || fail sfdisk
for i in $(seq 1 100); do [ -b /dev/vda1 ] && break; sleep 0.1; done
[ -b /dev/vda1 ] || fail "no /dev/vda1"
/real/bin/mke2fs -q -F -t ext4 /dev/vda1 || fail mkfs
phase partitioned
mount -t ext4 /dev/vda1 /mnt || fail mount
nc 10.98.0.1 9000 | /real/bin/tar -x --xattrs --xattrs-include='*' --acls --numeric-owner --sparse -p -C /mnt || fail tar
phase received
uuid=$(/real/bin/blkid -s UUID -o value /dev/vda1)
echo "UUID=$uuid / ext4 errors=remount-ro 0 1" >/mnt/etc/fstab
echo naive-clone >/mnt/etc/hostname
for d in dev proc sys; do mount --bind /$d /mnt/$d; done
chroot /mnt /usr/bin/env PATH=/usr/sbin:/usr/bin:/sbin:/bin grub-install --target=i386-pc /dev/vda || fail grub-install
chroot /mnt /usr/bin/env PATH=/usr/sbin:/usr/bin:/sbin:/bin update-grub || fail update-grub
for d in dev proc sys; do umount /mnt/$d; done
umount /mnt; sync
phase done
echo NAIVE-DONE
poweroff -f
EOF
chmod +x "$stage/init"
(cd "$stage" && find . | sort | cpio -o -H newc --quiet | gzip -1) >"$work/naive.rdz"

# --- the golden root, read-only, and the network ---
offset=$(( $(sfdisk --json "$golden" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][0]["start"])') * 512 ))
loopdev=$(losetup -f --show -r -o "$offset" "$golden")
mkdir -p "$mnt"
mount -o ro "$loopdev" "$mnt"
ip netns add "$ns"
nsx() { ip netns exec "$ns" "$@"; }
nsx ip link set lo up
nsx ip tuntap add tap0 mode tap
nsx ip addr add 10.98.0.1/24 dev tap0
nsx ip link set tap0 up
nsx socat -u EXEC:"tar -C $mnt -c --one-file-system --xattrs --xattrs-include=* --acls --numeric-owner --sparse ." TCP-LISTEN:9000,reuseaddr 2>"$work/socat.err" &
pids+=($!)

truncate -s 2G "$work/disk.raw"
qemu=(qemu-system-x86_64 -m "$mem" -smp 1 -cpu qemu64,+rdrand -nographic -no-reboot
  -drive "file=$work/disk.raw,format=raw,if=virtio"
  -netdev "tap,id=n0,ifname=tap0,script=no,downscript=no" -device "$nic_device,netdev=n0,romfile=")
start=$(date +%s.%N)
nsx "${qemu[@]}" -kernel "$KERNEL_IMAGE" -initrd "$work/naive.rdz" -append "console=ttyS0 panic=-1 quiet" \
  </dev/null >"$work/install.log" 2>&1 &
qpid=$!; pids+=($qpid)
deadline=$(( $(date +%s) + timeout_s ))
while kill -0 "$qpid" 2>/dev/null; do
  [[ $(date +%s) -lt $deadline ]] || { log "install timed out"; tail -20 "$work/install.log" >&2; exit 1; }
  sleep 0.2
done
end=$(date +%s.%N)
grep -q NAIVE-DONE "$work/install.log" || { log "install failed"; tail -30 "$work/install.log" >&2; exit 1; }
wire=$(nsx cat /sys/class/net/tap0/statistics/tx_bytes)
phases=$(tr -d '\r' <"$work/install.log" | awk '/^NAIVE-PHASE / { printf "%s=%s ", $2, $3 }')

# --- the clone boots from its own disk ---
bstart=$(date +%s.%N)
qemu-system-x86_64 -m "$mem" -smp 1 -cpu qemu64,+rdrand -nographic -no-reboot -drive "file=$work/disk.raw,format=raw,if=virtio" -nic none \
  </dev/null >"$work/boot.log" 2>&1 &
bpid=$!; pids+=($bpid)
deadline=$(( $(date +%s) + 300 ))
until grep -q 'KABOOT-GOLDEN-MARKER' "$work/boot.log" 2>/dev/null; do
  kill -0 "$bpid" 2>/dev/null || { log "clone stopped before its marker"; tail -30 "$work/boot.log" >&2; exit 1; }
  [[ $(date +%s) -lt $deadline ]] || { log "clone boot timed out"; tail -30 "$work/boot.log" >&2; exit 1; }
  sleep 0.2
done
bend=$(date +%s.%N)
echo "NAIVE-PHASES $phases"
awk -v s="$start" -v e="$end" -v bs="$bstart" -v be="$bend" -v w="$wire" 'BEGIN { printf "NAIVE-RESULT seconds=%.1f boot_seconds=%.1f wire_bytes=%d\n", e - s, be - bs, w }'
