// pxelinux.cfg files, as in the seed: a `local` label (boot the disk) and a
// `kamethod` label (kernel + initrd of the KA method). `default` is what nodes the
// registry does not know boot; 01-<mac> is written per node from its next_boot.
import type { BootConfig } from '../config/schema.js';
import type { NextBoot } from '../nodes/registry.js';

export interface KernelLine {
  /** the appliance's address as the node reaches it, and its HTTP port */
  server: string;
  httpPort: number;
  /** the deployment that holds the node: its id and token go on the kernel line (never the API token) */
  deployment?: { id: string; token: string };
}

export function kernelAppend(boot: BootConfig, at: KernelLine): string {
  const dep = at.deployment ? [`kaboot.token=${at.deployment.token}`, `kaboot.deployment=${at.deployment.id}`] : [];
  return [boot.append, `kaboot.server=${at.server}:${at.httpPort}`, ...dep].filter(Boolean).join(' ');
}

export function pxelinuxConfig(boot: BootConfig, next: NextBoot, at: KernelLine): string {
  const prompt = boot.pxelinux.prompt_timeout > 0 ? ['PROMPT 1', `TIMEOUT ${boot.pxelinux.prompt_timeout}`] : ['PROMPT 0'];
  return [
    `DEFAULT ${next}`,
    ...prompt,
    '',
    'LABEL local',
    '  LOCALBOOT 0',
    '',
    'LABEL kamethod',
    `  KERNEL ${boot.kernel}`,
    `  APPEND initrd=${boot.initrd} ${kernelAppend(boot, at)}`,
    // 1: ip=<client>:<server>:<gateway>:<netmask>, the lease pxelinux got (the agent need
    // not ask DHCP again); 2: BOOTIF=01-<mac>, which NIC booted
    '  IPAPPEND 3',
    '',
  ].join('\n');
}

/** pxelinux asks for pxelinux.cfg/01-aa-bb-cc-dd-ee-ff (ARP type 1, lower-case, dashes). */
export function macFromPxelinuxName(name: string): string | undefined {
  const m = /^01-([0-9a-f]{2}(?:-[0-9a-f]{2}){5})$/.exec(name.toLowerCase());
  return m ? m[1]!.replace(/-/g, ':') : undefined;
}
