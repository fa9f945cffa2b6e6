// What kaboot tells the agent on the kernel command line (pxelinux/iPXE configs kaboot writes):
//   kaboot.server=IP:PORT   the appliance's HTTP address
//   kaboot.token=TOKEN      the token the agent authenticates with
//   BOOTIF=01-aa-bb-cc-dd-ee-ff   pxelinux's IPAPPEND 2: the NIC the node booted from
import { normalizeMac } from '../nodes/registry.js';

export interface ApplianceAddress {
  host: string;
  port: number;
}

export interface AgentCmdline {
  server?: ApplianceAddress;
  token?: string;
  bootif?: string;
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
    } else if (key === 'BOOTIF') {
      const mac = normalizeMac(value.replace(/^[0-9a-fA-F]{2}-(?=([0-9a-fA-F]{2}-){5}[0-9a-fA-F]{2}$)/, ''));
      if (mac) out.bootif = mac;
      else out.problems.push(`BOOTIF=${value}: not a MAC address`);
    }
  }
  return out;
}

export function applianceUrl(a: ApplianceAddress): string {
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  return `http://${host}:${a.port}`;
}
