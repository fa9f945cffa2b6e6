// What kaboot tells the agent on the kernel command line (pxelinux/iPXE configs kaboot writes):
//   kaboot.server=IP:PORT   the appliance's HTTP address
//   kaboot.token=TOKEN      the token the agent authenticates with
//   BOOTIF=01-aa-bb-cc-dd-ee-ff   pxelinux's IPAPPEND 2: the NIC the node booted from
//   ip=CLIENT:SERVER:GATEWAY:NETMASK   pxelinux's IPAPPEND 1 (iPXE writes the same): the
//                           lease the boot firmware got, so the agent need not ask DHCP again
import ipaddr from 'ipaddr.js';
import { normalizeMac } from '../nodes/registry.js';

export interface ApplianceAddress {
  host: string;
  port: number;
}

/** The boot firmware's lease, from ip= (syslinux's IPAPPEND 1 form). */
export interface FirmwareLease {
  ip: string;
  /** prefix length */
  prefix: number;
  /** the boot server (next-server) */
  server?: string;
  gateway?: string;
}

export interface AgentCmdline {
  server?: ApplianceAddress;
  token?: string;
  bootif?: string;
  ip?: FirmwareLease;
  /** kaboot.* words that could not be read, with why */
  problems: string[];
}

export function parseApplianceAddress(text: string): ApplianceAddress | undefined {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(text);
  if (!m) return undefined;
  const port = m[2] === undefined ? 80 : Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  if (/^\d/.test(m[1]!) && m[1]!.split('.').some((o) => Number(o) > 255)) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export function parseKernelCmdline(text: string): AgentCmdline {
  const out: AgentCmdline = { problems: [] };
  for (const word of text.trim().split(/\s+/)) {
    const eq = word.indexOf('=');
    if (eq < 0) continue;
    const key = word.slice(0, eq);
    const value = word.slice(eq + 1);
    if (key === 'kaboot.server') {
      const a = parseApplianceAddress(value);
      if (a) out.server = a;
      else out.problems.push(`kaboot.server=${value}: not IP:PORT`);
    } else if (key === 'kaboot.token') {
      if (value.length > 0) out.token = value;
      else out.problems.push('kaboot.token is empty');
    } else if (key === 'ip') {
      const lease = parseFirmwareLease(value);
      if (lease) out.ip = lease;
      else out.problems.push(`ip=${value}: not CLIENT:SERVER:GATEWAY:NETMASK (IPv4): DHCP will ask again`);
    } else if (key === 'BOOTIF') {
      const mac = normalizeMac(value.replace(/^[0-9a-fA-F]{2}-(?=([0-9a-fA-F]{2}-){5}[0-9a-fA-F]{2}$)/, ''));
      if (mac) out.bootif = mac;
      else out.problems.push(`BOOTIF=${value}: not a MAC address`);
    }
  }
  return out;
}

/** ip=10.0.0.5:10.0.0.1:10.0.0.1:255.255.255.0 (server and gateway may be empty or 0.0.0.0). */
export function parseFirmwareLease(value: string): FirmwareLease | undefined {
  const f = value.split(':');
  if (f.length !== 4) return undefined;
  const [client, server, gateway, mask] = f as [string, string, string, string];
  const v4 = (t: string) => ipaddr.IPv4.isValidFourPartDecimal(t);
  if (!v4(client) || !v4(mask) || (server !== '' && !v4(server)) || (gateway !== '' && !v4(gateway))) return undefined;
  const prefix = ipaddr.IPv4.parse(mask).prefixLengthFromSubnetMask();
  if (prefix === null || prefix === 0 || client === '0.0.0.0') return undefined;
  const set = (t: string) => t !== '' && t !== '0.0.0.0';
  return { ip: client, prefix, ...(set(server) ? { server } : {}), ...(set(gateway) ? { gateway } : {}) };
}

export function applianceUrl(a: ApplianceAddress): string {
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  return `http://${host}:${a.port}`;
}
