// DHCP on one NIC with busybox udhcpc. udhcpc calls a script on each event; ours sets the
// address and route and writes the lease's variables to a file the agent reads back.
import { writeFileSync, readFileSync, mkdirSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { Firmware } from './firmware.js';
import { clientArchHex } from './firmware.js';

export interface Lease {
  iface: string;
  ip: string;
  /** prefix length */
  mask: number;
  router?: string;
  /** the DHCP server that answered (option 54) */
  serverid?: string;
  /** BOOTP next-server (siaddr) */
  siaddr?: string;
  bootFile?: string;
}

export const vendorClass = 'kaboot-agent';

export function udhcpcArgs(iface: string, fw: Firmware, script: string, opts: { tries?: number; timeoutS?: number } = {}): string[] {
  return [
    'udhcpc', '-f', '-q', '-n',
    '-i', iface,
    '-s', script,
    '-t', String(opts.tries ?? 4),
    '-T', String(opts.timeoutS ?? 2),
    '-V', vendorClass,
    '-x', `0x5d:${clientArchHex(fw)}`,
  ];
}

const leaseVars = ['interface', 'ip', 'mask', 'subnet', 'router', 'serverid', 'siaddr', 'boot_file'] as const;

/** The script udhcpc runs; `busybox` is the binary to call for ip. */
export function udhcpcScript(busybox: string, leaseDir: string): string {
  const dump = leaseVars.map((v) => `echo "${v}=\${${v}}"`).join('\n    ');
  return `#!/bin/sh
# written by kaboot-agent: configure the lease, then record it for the agent
bb=${busybox}
case "$1" in
  deconfig)
    $bb ip -4 addr flush dev "$interface"
    $bb ip link set "$interface" up
    ;;
  bound|renew)
    $bb ip -4 addr flush dev "$interface"
    $bb ip addr add "$ip/\${mask:-24}" dev "$interface"
    if [ -n "$router" ]; then
      for r in $router; do $bb ip route replace default via "$r" dev "$interface" && break; done
    fi
    {
    ${dump}
    } > "${leaseDir}/$interface.lease"
    ;;
esac
exit 0
`;
}

export function writeUdhcpcScript(dir: string, busybox: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'udhcpc.script');
  writeFileSync(file, udhcpcScript(busybox, dir));
  chmodSync(file, 0o755);
  return file;
}

export function parseLease(text: string): Lease | undefined {
  const v = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) v.set(line.slice(0, eq), line.slice(eq + 1).trim());
  }
  const ip = v.get('ip');
  const iface = v.get('interface');
  if (!ip || !iface || !isIPv4(ip)) return undefined;
  const mask = Number(v.get('mask') || maskFromDotted(v.get('subnet') ?? '') || 24);
  const first = (s: string | undefined) => s?.split(/\s+/).find(isIPv4);
  const siaddr = first(v.get('siaddr'));
  return {
    iface,
    ip,
    mask,
    router: first(v.get('router')),
    serverid: first(v.get('serverid')),
    siaddr: siaddr && siaddr !== '0.0.0.0' ? siaddr : undefined,
    bootFile: v.get('boot_file') || undefined,
  };
}

export function readLease(dir: string, iface: string): Lease | undefined {
  try {
    return parseLease(readFileSync(join(dir, `${iface}.lease`), 'utf8'));
  } catch {
    return undefined;
  }
}

function isIPv4(s: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(s) && s.split('.').every((o) => Number(o) <= 255);
}

function maskFromDotted(s: string): number | undefined {
  if (!isIPv4(s)) return undefined;
  const n = s.split('.').reduce((acc, o) => (acc << 8) + Number(o), 0) >>> 0;
  const bits = n.toString(2).replace(/0+$/, '');
  return /^1*$/.test(bits) ? bits.length : undefined;
}
