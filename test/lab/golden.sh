#!/usr/bin/env bash
# The lab's golden system: a small real Debian bookworm on a raw virtual disk, built
# once and cached, keyed by its inputs.
#
#   test/lab/golden.sh        build (or reuse) the golden; the last line of stdout is
#                             the path of its disk image
#
# The disk: 2 GiB raw, DOS label, one bootable Linux partition from 1 MiB to the end,
# ext4 labelled "golden". The system: debootstrap minbase with the cloud kernel,
# systemd, udev and grub-pc; hostname "golden"; fstab by UUID; GRUB written by hand
# (grub-install cannot map a loop device that covers one partition, see LAB-NOTES)
# with console=ttyS0 on the kernel line; a unit, kaboot-golden-marker.service, that
# prints on ttyS0
#   KABOOT-GOLDEN-MARKER host=<hostname> machine-id=<id> root=<UUID of />
# and powers the machine off. Under /srv/kaboot-golden it holds files that a clone
# must reproduce exactly: user.* xattrs (one binary), POSIX ACLs (access and
# default), a file capability (security.capability), a 64 MiB sparse file with three
# islands of data, a hard link pair, a FIFO, a symlink, a character device node, a
# setuid file and files owned by ids no user has (numeric owners).
#
# Cache: ${KABOOT_GOLDEN_CACHE:-~/.cache/kaboot/golden}/<key>/ holds disk.raw and
# golden.json (what is inside: partition offset, UUID, kernel, package versions). The
# key is a hash of this script's text, the package list, the mirror and the versions
# the mirror's bookworm suite offers for the included packages. The build happens in
# a temporary folder beside it that is renamed into place at the end, so a killed
# build leaves no half cache; a lock serialises concurrent builds.
#
# Environment:
#   KABOOT_GOLDEN_CACHE   cache folder (default ~/.cache/kaboot/golden)
#   GOLDEN_MIRROR         Debian mirror (default: the machine's apt source for bookworm)
#   GOLDEN_REBUILD=1      build even if the cache holds this key
#   GOLDEN_KEEP           builds (keys) kept in the cache, newest first (default 3)
# Needs root and the Debian packages debootstrap, fdisk (sfdisk), util-linux (losetup,
# mount), e2fsprogs, attr (setfattr), acl (setfacl), libcap2-bin (setcap), coreutils.
# GRUB's tools come from the golden itself (grub-pc in the chroot), not from the host.
set -euo pipefail

suite=bookworm
include=linux-image-cloud-amd64,systemd-sysv,udev,grub-pc,e2fsprogs,iproute2,kmod,initramfs-tools
disk_bytes=$((2 * 1024 * 1024 * 1024))
part_start_sectors=2048
log() { echo "golden: $*" >&2; }
[[ $EUID -eq 0 ]] || { echo "golden: needs root (debootstrap, loop devices)" >&2; exit 2; }
# The build's mounts live in a mount namespace of its own. In the machine's namespace
# they were copied into every namespace another process created meanwhile (`ip netns
# exec`, `unshare -m`), and stayed there after our umount: e2fsck then found the loop
# device "in use". A private namespace also drops every mount when the build dies.
if [[ "${GOLDEN_PRIVATE_MOUNTS:-}" != 1 ]]; then
  GOLDEN_PRIVATE_MOUNTS=1 exec unshare --mount --propagation private bash "${BASH_SOURCE[0]}" "$@"
fi
for tool in debootstrap sfdisk losetup mkfs.ext4 setfattr setfacl setcap sha256sum flock; do
  command -v "$tool" >/dev/null || { echo "golden: $tool is missing (install debootstrap fdisk util-linux e2fsprogs attr acl libcap2-bin)" >&2; exit 2; }
done

# The mirror the machine's apt uses for the suite (apt knows it from sources.list or
# deb822 .sources, whichever the machine has).
mirror="${GOLDEN_MIRROR:-$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(IDENTIFIER)' \
  | awk -v s="$suite" '$2 == s && $3 == "Packages" { print $1; exit }')}"
[[ -n "$mirror" ]] || { echo "golden: no apt source for $suite; set GOLDEN_MIRROR" >&2; exit 2; }
mirror="${mirror%/}"

# The versions debootstrap will get: the suite's own (not -security or -updates,
# which debootstrap does not use), as this machine's apt lists last saw them.
# One apt-cache call for all of them: each call parses apt's caches (~0.6 s).
madison="$(apt-cache madison ${include//,/ })"
versions="$(for p in ${include//,/ }; do
  v="$(awk -F' *[|] *' -v p="$p" -v m="$mirror" -v s="$suite/main" '{ sub(/^ +/, "", $1) } $1 == p && index($3, m" "s" ") == 1 { print $2; exit }' <<<"$madison")"
  echo "$p=${v:-unknown}"
done)"
script_hash="$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"
key="$(printf 'script=%s\nsuite=%s\ninclude=%s\nmirror=%s\n%s\n' "$script_hash" "$suite" "$include" "$mirror" "$versions" \
  | sha256sum | cut -c1-16)"

cache="${KABOOT_GOLDEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kaboot/golden}"
final="$cache/$key"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
# Builds killed with SIGKILL (no trap ran) leave a .build-* folder, maybe mounted;
# under the lock no build is running, so they can go. --one-file-system: never into a
# mount that could not be undone.
for stale in "$cache"/.build-*; do
  [[ -d "$stale" ]] || continue
  # Its debootstrap (own process group, recorded) may still run: end it, if that pid
  # is still a debootstrap into this very folder.
  pgid="$(cat "$stale/debootstrap.pgid" 2>/dev/null || true)"
  if [[ "$pgid" =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pgid/cmdline" 2>/dev/null | grep -q "debootstrap.*$stale/mnt"; then
    log "ending the debootstrap (group $pgid) of a killed build"
    kill -KILL -- "-$pgid" 2>/dev/null || true
  fi
  losetup -j "$stale/disk.raw" -O NAME -n 2>/dev/null | while read -r l; do losetup -d "$l" || true; done
  rm -rf --one-file-system "$stale"
done
if [[ -f "$final/disk.raw" && -f "$final/golden.json" && "${GOLDEN_REBUILD:-0}" != 1 ]]; then
  log "cached: $final"
  echo "$final/disk.raw"
  exit 0
fi

work="$(mktemp -d "$cache/.build-$key-XXXXXX")"
mnt="$work/mnt"
loop=""
debootstrap_pid=
cleanup() {
  local rc=$?
  if [[ -n "$debootstrap_pid" ]]; then
    kill -TERM -- "-$debootstrap_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 -- "-$debootstrap_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$debootstrap_pid" 2>/dev/null || true
  fi
  if mountpoint -q "$mnt" 2>/dev/null; then umount -R "$mnt" || umount -R -l "$mnt" || true; fi
  [[ -n "$loop" ]] && losetup -d "$loop" 2>/dev/null || true
  [[ -d "$work" ]] && rm -rf --one-file-system "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
started=$(date +%s)
log "building $key from $mirror ($suite) in $work"

# --- disk, partition, file system ---
disk="$work/disk.raw"
truncate -s "$disk_bytes" "$disk"
printf 'label: dos\nstart=%d, type=83, bootable\n' "$part_start_sectors" | sfdisk -q "$disk"
part_offset=$((part_start_sectors * 512))
part_size=$(( $(sfdisk --dump "$disk" | sed -n 's/.*: start= *[0-9]*, size= *\([0-9]*\),.*/\1/p' | head -n1) * 512 ))
(( part_size > 0 )) || { log "cannot read the partition's size from sfdisk"; exit 1; }
loop="$(losetup --find --show --offset "$part_offset" --sizelimit "$part_size" "$disk")"
mkfs.ext4 -q -L golden "$loop"
uuid="$(blkid -o value -s UUID "$loop")"
mkdir -p "$mnt"
mount "$loop" "$mnt"
# Detached while mounted: the kernel frees the loop device at the unmount, also when
# the namespace holding the mount dies with a killed build.
losetup -d "$loop"
loop=""

# --- the system ---
# In the background, in a process group of its own, and waited for: bash runs a trap
# only after a foreground command ends, so a TERM would otherwise wait for all of
# debootstrap; `wait` returns at once and the trap ends the whole group.
setsid debootstrap --variant=minbase --include="$include" "$suite" "$mnt" "$mirror" >"$work/debootstrap.log" 2>&1 9>&- &
debootstrap_pid=$!
echo "$debootstrap_pid" >"$work/debootstrap.pgid"
wait "$debootstrap_pid" || { tail -n 40 "$work/debootstrap.log" >&2; log "debootstrap failed"; exit 1; }
debootstrap_pid=
log "debootstrap done after $(( $(date +%s) - started )) s"
kernel_version="$(ls "$mnt/lib/modules" | sort -V | tail -n1)"
[[ -f "$mnt/boot/vmlinuz-$kernel_version" && -f "$mnt/boot/initrd.img-$kernel_version" ]] \
  || { log "no kernel or initramfs for $kernel_version in /boot"; exit 1; }

echo golden >"$mnt/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tgolden\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$mnt/etc/hosts"
printf '# <file system> <mount point> <type> <options> <dump> <pass>\nUUID=%s / ext4 errors=remount-ro 0 1\n' "$uuid" >"$mnt/etc/fstab"
printf 'deb %s %s main\n' "$mirror" "$suite" >"$mnt/etc/apt/sources.list"

# The marker: written straight to the serial port, so it shows whatever the console
# setup; then poweroff, which makes qemu exit.
cat >"$mnt/usr/local/sbin/kaboot-golden-marker" <<'EOF'
#!/bin/sh
# Prints the lab's marker on the serial console and powers the machine off.
echo "KABOOT-GOLDEN-MARKER host=$(hostname) machine-id=$(cat /etc/machine-id) root=$(findmnt -no UUID /)" >/dev/ttyS0
systemctl --no-block poweroff
EOF
chmod 755 "$mnt/usr/local/sbin/kaboot-golden-marker"
cat >"$mnt/etc/systemd/system/kaboot-golden-marker.service" <<'EOF'
[Unit]
Description=kaboot lab: print the golden marker on ttyS0 and power off
After=local-fs.target systemd-hostnamed.service systemd-machine-id-commit.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/kaboot-golden-marker

[Install]
WantedBy=multi-user.target
EOF
mkdir -p "$mnt/etc/systemd/system/multi-user.target.wants"
ln -s /etc/systemd/system/kaboot-golden-marker.service "$mnt/etc/systemd/system/multi-user.target.wants/kaboot-golden-marker.service"

# --- GRUB, by hand ---
# /etc/default/grub for a clone's update-grub (the agent's prepare step), so its
# generated grub.cfg keeps the serial console; grub.cfg itself is written here.
cat >"$mnt/etc/default/grub" <<'EOF'
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0,115200"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
EOF
mkdir -p "$mnt/boot/grub/i386-pc"
cp "$mnt"/usr/lib/grub/i386-pc/*.mod "$mnt"/usr/lib/grub/i386-pc/*.lst "$mnt/boot/grub/i386-pc/"
cat >"$mnt/boot/grub/grub.cfg" <<EOF
# written by test/lab/golden.sh
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set default=0
set timeout=0
menuentry 'Debian GNU/Linux (kaboot golden)' {
	insmod part_msdos
	insmod ext2
	search --no-floppy --fs-uuid --set=root $uuid
	linux /boot/vmlinuz-$kernel_version root=UUID=$uuid ro console=ttyS0,115200
	initrd /boot/initrd.img-$kernel_version
}
EOF
chroot "$mnt" grub-mkimage -O i386-pc -o /boot/grub/i386-pc/core.img -p '(hd0,msdos1)/boot/grub' \
  biosdisk part_msdos ext2 search search_fs_uuid linux normal serial terminal
core="$mnt/boot/grub/i386-pc/core.img"
core_sectors=$(( ($(stat -c %s "$core") + 511) / 512 ))
(( core_sectors < part_start_sectors - 1 )) || { log "core.img ($core_sectors sectors) does not fit before the partition"; exit 1; }
cp "$mnt/usr/lib/grub/i386-pc/boot.img" "$mnt/boot/grub/i386-pc/boot.img"
# boot.img's code (440 bytes, not the partition table) to sector 0; it loads the
# sector it names at 0x5c (1 by default), the start of core.img.
dd if="$mnt/usr/lib/grub/i386-pc/boot.img" of="$disk" bs=440 count=1 conv=notrunc status=none
dd if="$core" of="$disk" bs=512 seek=1 conv=notrunc status=none

# --- files a clone must reproduce exactly ---
t="$mnt/srv/kaboot-golden"
mkdir -p "$t"
echo "a file with user xattrs" >"$t/xattr.txt"
setfattr -n user.kaboot.note -v golden "$t/xattr.txt"
setfattr -n user.kaboot.binary -v 0x00ff10fe7f "$t/xattr.txt"
mkdir "$t/acl-dir"
setfacl -m u:1234:rwx,g:2345:r-x "$t/acl-dir"
setfacl -d -m u:1234:rwx,o::--- "$t/acl-dir"
echo "inherits the default ACL" >"$t/acl-dir/inherited.txt"
echo "a file with an access ACL" >"$t/acl-file.txt"
setfacl -m u:4321:r--,m::rw- "$t/acl-file.txt"
cp "$mnt/bin/true" "$t/cap-true"
setcap cap_net_raw+ep "$t/cap-true"
truncate -s 64M "$t/sparse.bin"
for mib in 0 17 63; do
  printf 'island at %d MiB\n' "$mib" | dd of="$t/sparse.bin" bs=1M seek="$mib" conv=notrunc status=none
done
echo "one inode, two names" >"$t/hardlink-a"
ln "$t/hardlink-a" "$t/hardlink-b"
mkfifo "$t/fifo"
mknod "$t/null-copy" c 1 3
ln -s ../kaboot-golden/xattr.txt "$t/symlink-to-xattr"
printf '#!/bin/sh\necho setuid\n' >"$t/setuid.sh"
chmod 4755 "$t/setuid.sh"
echo "owned by ids no user has" >"$t/numeric-owner.txt"
chown 1234:2345 "$t/numeric-owner.txt" "$t/acl-dir"
chmod 1777 "$t/acl-dir"
chmod 0755 "$t"

# --- inventory, then close the file system ---
packages_json="$(chroot "$mnt" dpkg-query -W -f '${Package}\t${Version}\n' | awk -F'\t' 'BEGIN { printf "{" } { printf "%s\"%s\":\"%s\"", (NR > 1 ? "," : ""), $1, $2 } END { printf "}" }')"
used_bytes=$(( $(df --output=used -B1 "$mnt" | tail -n1) ))
machine_id="$(cat "$mnt/etc/machine-id" 2>/dev/null || true)"
umount "$mnt"
loop="$(losetup --find --show --offset "$part_offset" --sizelimit "$part_size" "$disk")"
# In case the device is still held a moment after the unmount (exit 8, "in use").
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  fsck_rc=0
  fsck_out="$(e2fsck -f -y "$loop" 2>&1)" || fsck_rc=$?
  (( fsck_rc == 8 )) || break
  sleep 0.5
done
(( fsck_rc <= 1 )) || { echo "$fsck_out" >&2; grep -l "$(basename "$loop")" /proc/[0-9]*/mountinfo >&2 || true; log "e2fsck exit $fsck_rc"; exit 1; }
losetup -d "$loop"
loop=""

cat >"$work/golden.json" <<EOF
{
  "key": "$key",
  "disk": "disk.raw",
  "disk_bytes": $disk_bytes,
  "label": "dos",
  "partition": { "number": 1, "start_bytes": $part_offset, "size_bytes": $part_size, "fstype": "ext4", "fslabel": "golden", "uuid": "$uuid", "used_bytes": $used_bytes },
  "bootloader": "grub-pc",
  "kernel": "$kernel_version",
  "hostname": "golden",
  "machine_id": "$machine_id",
  "marker": "KABOOT-GOLDEN-MARKER",
  "suite": "$suite",
  "mirror": "$mirror",
  "include": "$include",
  "build_seconds": $(( $(date +%s) - started )),
  "packages": $packages_json
}
EOF
rm -rf "$mnt" "$work/debootstrap.log" "$work/debootstrap.pgid"
# Into place in one rename; an old build of the same key (GOLDEN_REBUILD) goes first.
if [[ -e "$final" ]]; then rm -rf "$final.old"; mv "$final" "$final.old"; fi
mv "$work" "$final"
rm -rf "$final.old"
work=/nonexistent
# Older keys (an older script, older package versions) pile up at ~600 MB each: keep
# the newest few.
ls -1dt "$cache"/[0-9a-f]*/ 2>/dev/null | tail -n +$(( ${GOLDEN_KEEP:-3} + 1 )) | while read -r old; do
  log "removing old build ${old%/}"
  rm -rf --one-file-system "${old%/}"
done
log "built $key in $(( $(date +%s) - started )) s: $final"
echo "$final/disk.raw"
