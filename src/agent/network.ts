// Bring up every NIC (not lo) and ask DHCP on all of them at once; the leases go to the state.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Firmware } from './firmware.js';
import { readLease, udhcpcArgs, writeUdhcpcScript, type Lease } from './dhcp.js';
import type { StepContext } from './steps.js';
import type { FirmwareLease } from './cmdline.js';

export interface Nic {
  name: string;
  mac: string;
}

export function listNics(sysRoot = '/sys'): Nic[] {
  const dir = join(sysRoot, 'class/net');
  return readdirSync(dir)
    .filter((n) => n !== 'lo')
    .sort()
    .flatMap((name) => {
      try {
        const mac = readFileSync(join(dir, name, 'address'), 'utf8').trim().toLowerCase();
        return mac && mac !== '00:00:00:00:00:00' ? [{ name, mac }] : [];
      } catch {
        return [];
      }
    });
}

const NIC_WAIT_MS = 5000;

export interface NetworkState {
  busybox: string;
  /** the boot firmware's lease (ip= on the kernel line) and the NIC it booted from (BOOTIF=) */
  firmwareLease?: { mac: string; lease: FirmwareLease };
  runDir: string;
  sysRoot: string;
  firmware: Firmware;
  dhcp: boolean;
  nics: Nic[];
  leases: Lease[];
}

export async function networkUp(ctx: StepContext<NetworkState>): Promise<void> {
  const s = ctx.state;
  // /init loads the drivers and does not wait: a NIC whose probe is still running shows up soon
  for (const started = Date.now(); ; await new Promise((r) => setTimeout(r, 100))) {
    s.nics = listNics(s.sysRoot);
    if (s.nics.length > 0 || Date.now() - started > NIC_WAIT_MS) break;
  }
  if (s.nics.length === 0) throw new Error(`no network interface after ${NIC_WAIT_MS / 1000} s (is the NIC driver in the initrd?)`);
  ctx.say(`interfaces: ${s.nics.map((n) => `${n.name} ${n.mac}`).join(', ')}; firmware ${s.firmware}`);
  for (const n of s.nics) await ctx.exec(s.busybox, ['ip', 'link', 'set', n.name, 'up']);
  if (!s.dhcp) {
    ctx.say('DHCP skipped (--no-dhcp): using the addresses already set');
    return;
  }
  const fw = s.firmwareLease;
  const bootNic = fw && s.nics.find((n) => n.mac === fw.mac);
  if (fw && bootNic && !s.leases.some((l) => l.iface === bootNic.name)) {
    // the lease iPXE or pxelinux got a moment ago: asking DHCP again took 1.3 s under emulation
    const l = fw.lease;
    await ctx.exec(s.busybox, ['ip', '-4', 'addr', 'flush', 'dev', bootNic.name]);
    await ctx.exec(s.busybox, ['ip', 'addr', 'add', `${l.ip}/${l.prefix}`, 'dev', bootNic.name]);
    if (l.gateway) await ctx.exec(s.busybox, ['ip', 'route', 'replace', 'default', 'via', l.gateway, 'dev', bootNic.name], { allowFailure: true });
    s.leases.push({ iface: bootNic.name, ip: l.ip, mask: l.prefix, ...(l.gateway ? { router: l.gateway } : {}), ...(l.server ? { siaddr: l.server } : {}) });
    ctx.say(`${bootNic.name}: ${l.ip}/${l.prefix}, the boot firmware's lease (ip= on the kernel line)${l.server ? `, next-server ${l.server}` : ''}`);
  }
  const script = writeUdhcpcScript(s.runDir, s.busybox);
  const missing = s.nics.filter((n) => !s.leases.some((l) => l.iface === n.name));
  await Promise.all(missing.map((n) => ctx.exec(s.busybox, udhcpcArgs(n.name, s.firmware, script), { allowFailure: true })));
  for (const n of missing) {
    const lease = readLease(s.runDir, n.name);
    if (lease) {
      s.leases.push(lease);
      ctx.say(`${n.name}: ${lease.ip}/${lease.mask} from ${lease.serverid ?? '?'}${lease.siaddr ? `, next-server ${lease.siaddr}` : ''}`);
    } else {
      ctx.say(`${n.name}: no DHCP lease`);
    }
  }
  if (s.leases.length === 0) throw new Error('no DHCP lease on any interface');
}
