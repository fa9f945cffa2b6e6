#!/usr/bin/env bash
# The kaboot lab: PXE-boot a qemu VM (TCG, real firmware) from `kaboot serve`, all
# inside a network namespace made for this run.
#
#   test/lab/lab.sh bios   SeaBIOS -> iPXE ROM (e1000) -> DHCP -> iPXE script over
#                          HTTP -> kernel + initrd over HTTP (boot.files.bios_ipxe: script)
#                          LAB_BIOS_PXELINUX=1: -> TFTP pxelinux.0 -> pxelinux.cfg
#                          -> kernel + initrd over TFTP (bios_ipxe: pxelinux.0)
#   test/lab/lab.sh uefi   OVMF -> iPXE ROM (virtio-net) -> DHCP -> iPXE script over
#                          HTTP -> kernel + initrd over HTTP
#
#   test/lab/lab.sh bios-local   a node on local boot with a small disk (bootindex=2)
#   test/lab/lab.sh uefi-local   whose boot loader prints KABOOT-LAB-DISK firmware=<fw>:
#                          BIOS: the script's `sanboot --drive 0x80` -> the disk's MBR
#                          (GRUB's boot.img + core.img); UEFI: the script chainloads
#                          local-boot-x64.efi over HTTP, which finds the ESP's
#                          \EFI\BOOT\BOOTX64.EFI (a GRUB image) and chainloads it.
#                          LAB_LOCAL_DISK=empty: a blank disk; on UEFI the image finds
#                          nothing and exits, and the run ends when OVMF goes on
#                          with its own network boot (the "marker").
#                          LAB_NO_LOCAL_EFI=1: images/ without local-boot-x64.efi, so
#                          the script exits to the firmware (the old path, to compare).
#
# The initrd (build-initrd.sh) gets an address by DHCP from the server and prints
#   KABOOT-LAB-MARKER ip=<address> mac=<mac>
# on ttyS0. Exit 0 once that marker is seen; otherwise non-zero, with the tails of the
# serial log and of the server's log. On success the last line of stdout is
#   LAB-RESULT mode=<bios|uefi> ip=<address> mac=<mac> via=<tftp|http> seconds=<qemu start to marker> guest_uptime=<s>
# preceded by LAB-PHASES: when each milestone (iPXE up, lease, boot program or script
# loaded, kernel started, init started) first showed on the console, in seconds, and by
# LAB-CMDLINE, the kernel command line the guest booted with.
#
# Environment:
#   LAB_SERVER   kaboot (default) | dnsmasq (a stand-in used while developing the lab)
#   LAB_TIMEOUT  seconds to wait for the marker (default 240)
#   LAB_KEEP     1: keep the run's work folder (logs, config) and print its path
#   LAB_MEM      guest memory in MiB (default 512)
#   LAB_IPV6_RA  1: an IPv6 router advertisement on the bridge (dnsmasq), so iPXE does
#                not wait ~15 s for one (see docs/lab.md); empty: an RA that configures
#                nothing (router lifetime 0, M=0 O=0, no prefix; ra-empty.py, python3);
#                kaboot: kaboot itself answers router solicitations so (ipv6_ra: quiet)
#   LAB_INITRD_PAD_MB  N: append N MiB of random bytes (an uncompressed cpio) to the
#                initrd, to time an initrd as large as the agent's (44 MB)
#   LAB_BIOS_PXELINUX 1: BIOS through pxelinux and TFTP (the default before bios_ipxe
#                became "script"), to compare
#   LAB_CAPTURE  1: capture the bridge's traffic to <work>/lab.pcap (needs tcpdump; use with LAB_KEEP=1)
#   KABOOT       the kaboot command (default: node <repo>/bin/kaboot.js)
# Needs root, and the Debian packages qemu-system-x86 ipxe-qemu ovmf ipxe pxelinux
# syslinux-common busybox-static kmod cpio (dnsmasq-base for LAB_SERVER=dnsmasq); the
# local modes also grub-common grub-pc-bin grub-efi-amd64-bin fdisk dosfstools mtools,
# and `npm run build` (they build local-boot-x64.efi with dist/src/stage2/local-boot-efi.js).
set -euo pipefail

mode="${1:-}"
case "$mode" in
  bios|uefi) fw=$mode; local_boot=0 ;;
  bios-local|uefi-local) fw=${mode%-local}; local_boot=1 ;;
  *) echo "usage: $0 bios|uefi|bios-local|uefi-local" >&2; exit 2 ;;
esac
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
server_kind="${LAB_SERVER:-kaboot}"
timeout_s="${LAB_TIMEOUT:-240}"
mem="${LAB_MEM:-512}"
[[ $EUID -eq 0 ]] || { echo "lab: needs root (network namespaces, tap devices)" >&2; exit 2; }

# Lab network: the server owns .1 on the bridge; the pool is .100-.199.
subnet=10.99.0.0/24
server_ip=10.99.0.1
pool_first=10.99.0.100
pool_last=10.99.0.199
append="console=ttyS0,115200 panic=-1"

log() { echo "lab[$mode]: $*" >&2; }

# --- kernel and initrd (cached; the initrd is rebuilt, byte-identical, every run) ---
# A lock, so that two runs side by side do not fill the cache at the same time.
mkdir -p "$here/.cache"
exec 9>"$here/.cache/.lock"
flock 9
eval "$("$here/fetch-kernel.sh")"            # KERNEL_VERSION, KERNEL_DIR
initrd_cache="$here/.cache/initrd-$KERNEL_VERSION.rdz"
"$here/build-initrd.sh" "$KERNEL_DIR" "$KERNEL_VERSION" "$initrd_cache" >/dev/null
flock -u 9
exec 9>&-

# --- the run's own folder, namespace and processes; the trap removes them ---
ns="kblab-$$-$RANDOM"
work="$(mktemp -d "/tmp/kblab-$mode-XXXXXX")"
pids=()
ns_made=0
failed=0
# SIGTERM first (kaboot flushes its log on the way out), SIGKILL after 2 s.
stop_processes() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
cleanup() {
  local rc=$?
  stop_processes
  if [[ $ns_made == 1 ]]; then
    # Anything still inside the run's namespace was started by one of ours.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      log "killing leftover pid $pid ($(cat /proc/"$pid"/comm 2>/dev/null)) in $ns"
      kill -9 "$pid" 2>/dev/null || true
    done
    ip netns del "$ns" 2>/dev/null || true
  fi
  if [[ "${LAB_KEEP:-0}" == 1 ]]; then
    log "kept $work"
  elif [[ $failed == 1 ]]; then
    rm -rf "$work/images" "$work/tftp" "$work/OVMF_VARS.fd" "$work/disk.raw"
    log "logs kept in $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

images="$work/images"
mkdir -p "$images" "$work/state"
cp "$KERNEL_IMAGE" "$images/vmlinuz"
cp "$initrd_cache" "$images/all.rdz"
if [[ "${LAB_INITRD_PAD_MB:-0}" != 0 ]]; then
  # An uncompressed cpio with one file of random bytes after the initrd (the kernel unpacks
  # concatenated archives): an initrd as large as the agent's, to time its transfer.
  mkdir -p "$work/pad"
  head -c "$((LAB_INITRD_PAD_MB * 1048576))" /dev/urandom >"$work/pad/pad.bin"
  (cd "$work/pad" && echo pad.bin | cpio --quiet -o -H newc) >>"$images/all.rdz"
  rm -rf "$work/pad"
fi

# A node on local boot gets a 64 MiB disk whose boot loader prints a marker and halts.
make_local_disk() {
  local disk="$1" d="$work/localdisk"
  mkdir -p "$d"
  truncate -s 64M "$disk"
  if [[ $fw == bios ]]; then
    printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q "$disk"
    printf 'serial --unit=0 --speed=115200\nterminal_output serial\necho KABOOT-LAB-DISK firmware=bios\nhalt\n' >"$d/early.cfg"
    grub-mkimage -O i386-pc -d /usr/lib/grub/i386-pc -c "$d/early.cfg" -p /boot/grub -o "$d/core.img" biosdisk serial terminal echo halt
    # boot.img's code to sector 0 (it loads sector 1, the start of core.img), core.img from sector 1
    dd if=/usr/lib/grub/i386-pc/boot.img of="$disk" bs=440 count=1 conv=notrunc status=none
    dd if="$d/core.img" of="$disk" bs=512 seek=1 conv=notrunc status=none
  else
    # GPT: an EFI system partition (32 MiB from 1 MiB) and an ext4 root, as a UEFI clone has.
    # Both made and filled by offset (the host's loop driver scans no partitions, and its
    # kernel may have no vfat module).
    printf 'label: gpt\nstart=2048, size=65536, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=67584, size=63454, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' | sfdisk -q "$disk"
    # (mkfs.vfat warns that the file is larger than the partition: that is the point of the count)
    mkfs.vfat -F 16 -n ESP --offset 2048 "$disk" $((65536 / 2)) 2>&1 >/dev/null | { grep -v 'block count mismatch' || true; } >&2
    # The root holds /boot/grub/grub.cfg, which prints the marker; BOOTX64.EFI is what
    # `grub-install --removable` makes: an image whose embedded config finds the root by
    # its UUID and sets the prefix there, so reaching the marker proves that GRUB, started
    # by local-boot-x64.efi's chainloader, found its own disk and config.
    local uuid
    uuid="$(cat /proc/sys/kernel/random/uuid)"
    mkdir -p "$d/root/boot/grub"
    printf 'echo "KABOOT-LAB-DISK firmware=uefi grub.cfg=(hd0,gpt2)"\nhalt\n' >"$d/root/boot/grub/grub.cfg"
    mkfs.ext4 -q -F -U "$uuid" -d "$d/root" -E offset=$((67584 * 512)) "$disk" $((63454 / 2))k
    printf 'search.fs_uuid %s root\nset prefix=($root)/boot/grub\n' "$uuid" >"$d/load.cfg"
    grub-mkimage -O x86_64-efi -d /usr/lib/grub/x86_64-efi -c "$d/load.cfg" -p /boot/grub -o "$d/BOOTX64.EFI" \
      part_gpt ext2 search_fs_uuid normal echo halt
    MTOOLS_SKIP_CHECK=1 mmd -i "$disk@@1M" ::/EFI ::/EFI/BOOT
    MTOOLS_SKIP_CHECK=1 mcopy -i "$disk@@1M" "$d/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
  fi
}
if [[ $local_boot == 1 ]]; then
  if [[ "${LAB_LOCAL_DISK:-loader}" == empty ]]; then
    truncate -s 64M "$work/disk.raw"
  else
    make_local_disk "$work/disk.raw"
  fi
  if [[ $fw == uefi && "${LAB_NO_LOCAL_EFI:-0}" != 1 ]]; then
    # what `kaboot stage2 build` writes, built here with the host's GRUB by the same code
    node -e "import('$repo/dist/src/stage2/local-boot-efi.js').then((m) => m.buildLocalBootEfi({ root: '/', out: '$images/local-boot-x64.efi', epoch: 1704067200 })).catch((e) => { console.error(e); process.exit(1); })"
  fi
fi

ip netns add "$ns"
ns_made=1
nsx() { ip netns exec "$ns" "$@"; }
# Start a long-running command in the namespace; its pid goes to pids (ip netns exec
# execs the command, so $! is the command itself, not a wrapper).
spawn() {
  local out="$1"; shift
  ip netns exec "$ns" "$@" </dev/null >>"$out" 2>&1 &
  pids+=($!)
}
nsx ip link set lo up
nsx ip link add br0 type bridge
nsx ip link set br0 type bridge forward_delay 0 stp_state 0
nsx ip addr add "$server_ip/24" brd + dev br0
nsx ip link set br0 up
# A veth port that is always up keeps the bridge's carrier on. Without it, br0 has no
# carrier until qemu opens tap0, and node's os.networkInterfaces() (libuv skips an
# interface that is not IFF_RUNNING) does not list br0, so kaboot would see no address.
nsx ip link add keep0 type veth peer name keep1
nsx ip link set keep0 master br0
nsx ip link set keep0 up
nsx ip link set keep1 up
nsx ip tuntap add tap0 mode tap
nsx ip link set tap0 master br0
nsx ip link set tap0 up

# --- the server ---
server_log="$work/server.log"
bios_ipxe=script
boot_default=kamethod
[[ $local_boot == 1 ]] && boot_default=local
[[ "${LAB_BIOS_PXELINUX:-0}" == 1 ]] && bios_ipxe=pxelinux.0
ipv6_ra=off
[[ "${LAB_IPV6_RA:-0}" == kaboot ]] && ipv6_ra=quiet
start_kaboot() {
  cat >"$work/kaboot.yaml" <<EOF
# written by test/lab/lab.sh for one lab run
interfaces: [br0]
images_dir: $images
state_dir: $work/state
dhcp:
  mode: full
  subnets:
    - subnet: $subnet
      interface: br0
      range: [$pool_first, $pool_last]
      routers: [$server_ip]
      next_server: $server_ip
      lease_time: 600
boot:
  default: $boot_default
  kernel: vmlinuz
  initrd: all.rdz
  append: "$append"
  pxelinux:
    reboot_time: 30
    prompt_timeout: 0
  files:
    bios_ipxe: $bios_ipxe
log:
  level: debug
  pretty: false
ipv6_ra: $ipv6_ra
EOF
  local cmd
  read -r -a cmd <<<"${KABOOT:-node $repo/bin/kaboot.js}"
  spawn "$server_log" "${cmd[@]}" serve --config "$work/kaboot.yaml"
}

start_dnsmasq() {
  local tftp="$work/tftp"
  mkdir -p "$tftp/pxelinux.cfg"
  cp /usr/lib/PXELINUX/pxelinux.0 /usr/lib/syslinux/modules/bios/ldlinux.c32 "$tftp/"
  ln "$images/vmlinuz" "$tftp/vmlinuz"
  ln "$images/all.rdz" "$tftp/all.rdz"
  cp /usr/lib/ipxe/ipxe.efi "$tftp/"
  printf 'DEFAULT lab\nPROMPT 0\nLABEL lab\n  KERNEL vmlinuz\n  APPEND initrd=all.rdz %s\n' "$append" >"$tftp/pxelinux.cfg/default"
  printf '#!ipxe\nkernel http://%s/vmlinuz initrd=all.rdz %s\ninitrd http://%s/all.rdz\nboot\n' \
    "$server_ip" "$append" "$server_ip" >"$tftp/boot.ipxe"
  spawn "$server_log" busybox httpd -f -p "$server_ip:80" -h "$tftp"
  # BIOS (arch 0): pxelinux.0 over TFTP, iPXE or not. UEFI: iPXE gets the HTTP script,
  # a bare UEFI PXE ROM gets ipxe.efi first.
  spawn "$server_log" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=br0 --bind-interfaces \
    --dhcp-range="$pool_first,$pool_last,255.255.255.0,10m" --no-ping --log-dhcp \
    --dhcp-leasefile="$work/state/dnsmasq.leases" --pid-file= \
    --enable-tftp --tftp-root="$tftp" \
    --dhcp-match=set:efi,option:client-arch,7 --dhcp-match=set:efi,option:client-arch,9 \
    --dhcp-userclass=set:ipxe,iPXE \
    --dhcp-boot=tag:!efi,pxelinux.0 \
    --dhcp-boot=tag:efi,tag:!ipxe,ipxe.efi \
    --dhcp-boot=tag:efi,tag:ipxe,"http://$server_ip/boot.ipxe" \
    ${LAB_DNSMASQ_ARGS:-}
}

case "$server_kind" in
  kaboot) start_kaboot ;;
  dnsmasq) start_dnsmasq ;;
  *) echo "lab: LAB_SERVER must be kaboot or dnsmasq, not $server_kind" >&2; exit 2 ;;
esac

show_logs() {
  echo "----- serial log (last 60 lines): $work/serial.log -----" >&2
  tail -n 60 "$work/serial.log" 2>/dev/null | tr -d '\r' | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' >&2 || true
  echo >&2
  echo "----- qemu stderr -----" >&2
  tail -n 20 "$work/qemu.err" >&2 2>/dev/null || true
  echo "----- server log (last 60 lines): $server_log -----" >&2
  tail -n 60 "$server_log" >&2 2>/dev/null || true
}
fail() { failed=1; log "FAIL: $*"; stop_processes; show_logs; exit 1; }

# Wait until the server listens on DHCP (udp 67), TFTP (udp 69) and HTTP (tcp 80).
ready=0
for _ in $(seq 1 150); do
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || fail "server exited before it was ready"; done
  if nsx ss -H -lun 'sport = :67' | grep -q . && nsx ss -H -lun 'sport = :69' | grep -q . && nsx ss -H -ltn 'sport = :80' | grep -q .; then ready=1; break; fi
  sleep 0.2
done
[[ $ready == 1 ]] || fail "server not listening on udp 67, udp 69 and tcp 80 after 30 s"

# iPXE's "Configuring" waits for IPv6 router discovery too; without a router
# advertisement on the link that wait ends only after ~15 s of router solicitations.
# LAB_IPV6_RA=1 puts an IPv6 router (dnsmasq, RA only, no DHCPv6) on the bridge.
if [[ "${LAB_IPV6_RA:-0}" == 1 ]]; then
  nsx ip -6 addr add fd00:99::1/64 dev br0 nodad
  spawn "$work/ra.log" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=br0 \
    --bind-interfaces --pid-file= --enable-ra --dhcp-range=fd00:99::,ra-only,64
elif [[ "${LAB_IPV6_RA:-0}" == empty ]]; then
  # an RA that configures nothing: lifetime 0, M=0 O=0, no prefix (ra-empty.py)
  spawn "$work/ra.log" python3 "$here/ra-empty.py" br0
fi

if [[ "${LAB_CAPTURE:-0}" == 1 ]]; then
  spawn "$work/tcpdump.err" tcpdump -Z root -q -n -U -i br0 -w "$work/lab.pcap"
  sleep 0.5
fi

# --- the VM ---
mac="52:54:00:$(printf '%02x:%02x:%02x' $((RANDOM % 256)) $((RANDOM % 256)) $((RANDOM % 256)))"
qemu=(qemu-system-x86_64 -m "$mem" -smp 1 -cpu qemu64,+rdrand -nographic -no-reboot
  -netdev "tap,id=n0,ifname=tap0,script=no,downscript=no")
if [[ $fw == bios ]]; then
  qemu+=(-device "e1000,netdev=n0,mac=$mac,bootindex=1,romfile=/usr/lib/ipxe/qemu/efi-e1000.rom")
else
  cp /usr/share/OVMF/OVMF_VARS.fd "$work/OVMF_VARS.fd"
  qemu+=(-drive "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd"
    -drive "if=pflash,format=raw,file=$work/OVMF_VARS.fd"
    -device "virtio-net-pci,netdev=n0,mac=$mac,bootindex=1,romfile=/usr/lib/ipxe/qemu/efi-virtio.rom")
fi
if [[ $local_boot == 1 ]]; then
  qemu+=(-drive "if=none,id=d0,format=raw,file=$work/disk.raw" -device "virtio-blk-pci,drive=d0,bootindex=2")
fi
log "namespace $ns, server $server_kind, mac $mac, kernel $KERNEL_VERSION"
: >"$work/serial.log"
started=$(date +%s.%N)
ip netns exec "$ns" "${qemu[@]}" </dev/null >"$work/serial.log" 2>"$work/qemu.err" &
qemu_pid=$!
pids+=("$qemu_pid")

# Milestones on the serial console, timed from qemu's start (to the poll's 0.2 s).
milestones=(ipxe lease nbp kernel init)
marker_re='^KABOOT-LAB-MARKER '
declare -A pattern=(
  [ipxe]='iPXE initialising devices|Features: DNS HTTP'
  [lease]='^net0: 10\.99\.'
  [nbp]='^(pxelinux\.0|[^ ]+\.ipxe) : '
  [kernel]='Linux version'
  [init]='^KABOOT-LAB-INIT '
  # local boot: the script's first line, the local-boot image loaded, GRUB's chainload, OVMF's own network boot
  [script]='boots from its local disk'
  [efi]='local-boot-x64\.efi\.\.\. ok'
  [chain]='kaboot: chainloading \('
  [pxev4]='Start PXE over IPv4'
)
if [[ $local_boot == 1 ]]; then
  milestones=(ipxe lease script efi chain pxev4)
  marker_re="KABOOT-LAB-DISK firmware=$fw"
  # An empty disk on UEFI: local-boot-x64.efi finds nothing, says so and exits; the
  # marker is then the firmware going on with its next boot option.
  [[ $fw == uefi && "${LAB_LOCAL_DISK:-loader}" == empty ]] && marker_re='Start (PXE|HTTP Boot) over'
fi
declare -A seen_at=()
# the console without CRs and terminal escapes (iPXE colours its lines, GRUB moves the cursor)
console_now() { tr -d '\r' <"$work/serial.log" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g'; }
since_start() { awk -v now="$(date +%s.%N)" -v t0="$started" 'BEGIN { printf "%.1f", now - t0 }'; }
deadline=$(( $(date +%s) + timeout_s ))
marker=""
while :; do
  for m in "${milestones[@]}"; do
    [[ -z "${seen_at[$m]:-}" ]] && console_now | grep -a -E "${pattern[$m]}" >/dev/null && seen_at[$m]="$(since_start)"
  done
  marker="$(tr -d '\r' <"$work/serial.log" | grep -a -m1 -o -E "$marker_re.*" || true)"
  [[ -n "$marker" ]] && break
  if tr -d '\r' <"$work/serial.log" | grep -a -q '^KABOOT-LAB-FAIL '; then
    sleep 1
    fail "the guest's init failed: $(tr -d '\r' <"$work/serial.log" | grep -a -m1 '^KABOOT-LAB-FAIL ')"
  fi
  kill -0 "$qemu_pid" 2>/dev/null || { sleep 0.3; tr -d '\r' <"$work/serial.log" | grep -a -q -E "$marker_re" && continue; fail "qemu exited without the marker"; }
  (( $(date +%s) < deadline )) || fail "no marker after ${timeout_s} s"
  sleep 0.2
done
elapsed="$(since_start)"
if [[ $local_boot == 1 ]]; then
  for _ in $(seq 1 25); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.2; done
  console="$(tr -d '\r' <"$work/serial.log" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g')"
  grep -a -q 'boots from its local disk' <<<"$console" || fail "the disk booted, but not after kaboot's local-boot script"
  # how the disk was reached: iPXE's sanboot (BIOS), kaboot's local-boot image, or the firmware's own boot order
  firmware_net=$(grep -a -c -E 'Start (PXE|HTTP Boot) over' <<<"$console" || true)
  if [[ $fw == bios ]]; then
    way=sanboot
  elif [[ "${LAB_LOCAL_DISK:-loader}" == empty ]]; then
    way=local-efi-found-nothing
    grep -a -q 'kaboot: no local disk holds' <<<"$console" || fail "local-boot-x64.efi did not say that it found nothing"
  elif grep -a -q 'kaboot: chainloading (' <<<"$console"; then
    way=local-efi
    (( firmware_net == 0 )) || fail "OVMF tried its own network boot although local-boot-x64.efi found the disk"
  else
    way=firmware
  fi
  [[ "${LAB_NO_LOCAL_EFI:-0}" == 1 || $fw == bios || $way == local-efi* ]] || fail "UEFI reached its disk without kaboot's local-boot image"
  phases=""
  for m in "${milestones[@]}"; do phases+=" $m=${seen_at[$m]:--}"; done
  log "disk marker after ${elapsed} s: $marker"
  echo "LAB-PHASES mode=$mode$phases disk=$elapsed"
  echo "LAB-RESULT mode=$mode mac=$mac way=$way firmware_net_boots=$firmware_net seconds=$elapsed"
  exit 0
fi
got_ip="$(sed -n 's/.* ip=\([0-9.]*\).*/\1/p' <<<"$marker")"
got_mac="$(sed -n 's/.* mac=\([0-9a-f:]*\).*/\1/p' <<<"$marker")"
uptime="$(sed -n 's/.* uptime=\([0-9.]*\).*/\1/p' <<<"$marker")"
[[ "$got_mac" == "$mac" ]] || fail "marker names mac $got_mac, the VM has $mac"
[[ "$got_ip" == 10.99.0.* ]] || fail "marker address $got_ip is outside $subnet"
# The console shows which way the kernel and initrd came: pxelinux (TFTP only) prints
# "Loading vmlinuz... ok"; iPXE prints each URL it fetches.
console="$(tr -d '\r' <"$work/serial.log" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g')"
if [[ $mode == bios && ( $bios_ipxe == pxelinux.0 || $server_kind == dnsmasq ) ]]; then
  via=tftp
  grep -a -q '^pxelinux\.0 : ' <<<"$console" && grep -a -q 'Loading vmlinuz\.\.\. *ok' <<<"$console" \
    && grep -a -q 'Loading all\.rdz\.\.\. *ok' <<<"$console" \
    || fail "BIOS boot did not go through pxelinux with vmlinuz and all.rdz over TFTP"
else
  via=http
  # (a large file shows its progress, "12%" and backspaces, between the dots and "ok")
  grep -a -q -E 'http://[^ ]+/vmlinuz\.\.\.[^a-z]* ok' <<<"$console" && grep -a -q -E 'http://[^ ]+/all\.rdz\.\.\.[^a-z]* ok' <<<"$console" \
    || fail "$mode boot did not load vmlinuz and all.rdz over HTTP from iPXE"
fi
cmdline="$(grep -a -m1 -o 'Command line: .*' <<<"$console" || true)"

# Let the guest power itself off, so its last lines land in the log.
for _ in $(seq 1 50); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.2; done
if [[ "${LAB_VERBOSE:-0}" == 1 ]]; then show_logs; fi
log "marker after ${elapsed} s: $marker"
phases=""
for m in "${milestones[@]}"; do phases+=" $m=${seen_at[$m]:--}"; done
echo "LAB-PHASES mode=$mode$phases marker=$elapsed"
echo "LAB-CMDLINE ${cmdline#Command line: }"
echo "LAB-RESULT mode=$mode ip=$got_ip mac=$got_mac via=$via seconds=$elapsed guest_uptime=$uptime"
