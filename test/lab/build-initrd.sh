#!/usr/bin/env bash
# Build the lab's test initrd: busybox-static, the NIC modules of the lab kernel, and
# an /init that gets an address by DHCP, prints
#   KABOOT-LAB-MARKER ip=<address> mac=<mac>
# on the console and powers off. Reproducible: the same kernel tree, busybox and this
# script give a byte-identical initrd (sorted cpio list, fixed owners and mtimes, gzip -n).
#
# usage: build-initrd.sh KERNEL_DIR KERNEL_VERSION OUTPUT
#   (KERNEL_DIR and KERNEL_VERSION as printed by fetch-kernel.sh)
# Prints INITRD=<OUTPUT>.
set -euo pipefail

kdir="${1:?usage: build-initrd.sh KERNEL_DIR KERNEL_VERSION OUTPUT}"
kver="${2:?usage: build-initrd.sh KERNEL_DIR KERNEL_VERSION OUTPUT}"
out="${3:?usage: build-initrd.sh KERNEL_DIR KERNEL_VERSION OUTPUT}"
busybox="${BUSYBOX:-/bin/busybox}"
# 2024-01-01T00:00:00Z unless the caller fixes another instant.
epoch="${SOURCE_DATE_EPOCH:-1704067200}"

# e1000: the BIOS lab NIC. virtio_pci + virtio_net: the UEFI lab NIC (virtio_pci is the
# PCI transport; without it virtio_net loads but finds no device).
wanted_modules=(e1000 virtio_pci virtio_net)

[[ -x "$busybox" ]] && [[ "$(ldd "$busybox" 2>&1 || true)" == *'not a dynamic executable'* ]] \
  || { echo "build-initrd: $busybox is not a static busybox (install busybox-static)" >&2; exit 1; }

# Load order: every module after the modules its .ko names in depends=.
# Built-in modules (modinfo finds no file) need no loading.
declare -A seen=()
order=()
resolve() {
  local mod="$1" dep file
  [[ -n "${seen[$mod]:-}" ]] && return 0
  seen[$mod]=1
  if ! file="$(modinfo -b "$kdir" -k "$kver" -F filename "$mod" 2>/dev/null)" || [[ "$file" == "(builtin)" || -z "$file" ]]; then
    grep -q "/$mod.ko" "$kdir/lib/modules/$kver/modules.builtin" 2>/dev/null \
      || { echo "build-initrd: module $mod is neither in $kdir nor built in" >&2; exit 1; }
    return 0
  fi
  local deps
  deps="$(modinfo -b "$kdir" -k "$kver" -F depends "$mod")"
  for dep in ${deps//,/ }; do resolve "$dep"; done
  order+=("$mod:$file")
}
for m in "${wanted_modules[@]}"; do resolve "$m"; done

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,etc,lib/modules,proc,sys,tmp,run}
cp "$busybox" "$stage/bin/busybox"
mknod -m 600 "$stage/dev/console" c 5 1
mknod -m 666 "$stage/dev/null" c 1 3

: >"$stage/etc/modules.order"
for entry in "${order[@]}"; do
  mod="${entry%%:*}"
  file="${entry#*:}"
  case "$file" in
    *.ko) cp "$file" "$stage/lib/modules/$mod.ko" ;;
    *.ko.xz) xz -dc "$file" >"$stage/lib/modules/$mod.ko" ;;
    *.ko.zst) zstd -qdc "$file" >"$stage/lib/modules/$mod.ko" ;;
    *) echo "build-initrd: unknown module file type $file" >&2; exit 1 ;;
  esac
  echo "$mod" >>"$stage/etc/modules.order"
done

cat >"$stage/etc/udhcpc.script" <<'EOF'
#!/bin/busybox sh
# udhcpc calls this with the lease in the environment; configure it and remember it.
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
    echo "$ip" >/tmp/dhcp-ip
    ;;
esac
exit 0
EOF

cat >"$stage/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
echo "KABOOT-LAB-INIT uptime=$(cut -d' ' -f1 /proc/uptime)"

fail() {
  echo "KABOOT-LAB-FAIL $*"
  poweroff -f
}

# In dependency order (etc/modules.order); an error is shown, never hidden.
while read -r mod; do
  insmod "/lib/modules/$mod.ko" || fail "insmod $mod failed"
done </etc/modules.order

i=0
while [ ! -e /sys/class/net/eth0 ]; do
  i=$((i + 1))
  [ "$i" -gt 100 ] && { ls /sys/class/net; fail "no eth0 after 10 s"; }
  sleep 0.1
done
ip link set lo up
ip link set eth0 up || fail "ip link set eth0 up"
mac="$(cat /sys/class/net/eth0/address)"
udhcpc -i eth0 -n -q -t 10 -T 2 -s /etc/udhcpc.script || fail "udhcpc got no lease mac=$mac"
[ -s /tmp/dhcp-ip ] || fail "udhcpc script wrote no address mac=$mac"
echo "KABOOT-LAB-MARKER ip=$(cat /tmp/dhcp-ip) mac=$mac uptime=$(cut -d' ' -f1 /proc/uptime)"
ip -4 addr show dev eth0
poweroff -f
EOF
chmod 755 "$stage/init" "$stage/etc/udhcpc.script"

mkdir -p "$(dirname "$out")"
find "$stage" -exec touch -h -d "@$epoch" {} +
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) \
  | gzip -n -9 >"$out.tmp"
mv "$out.tmp" "$out"
echo "INITRD=$out"
