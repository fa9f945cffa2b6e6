// What a network-booting client gets: one pure function from what the client says
// about itself (architecture, firmware) and what the registry says about the node
// (next boot) to a boot file and how to fetch it. Both DHCP modes (full and proxy)
// ask it, so they never disagree.
import type { BootConfig, BootFilesConfig } from '../config/schema.js';
import type { NextBoot, NodeRecord } from '../nodes/registry.js';

/** RFC 4578 / IANA "Processor Architecture Types" (option 93) that kaboot knows. */
export const Arch = {
  BiosX86: 0,
  UefiIa32: 6,
  UefiX64: 7,
  UefiBc: 9,
  UefiArm32: 10,
  UefiArm64: 11,
  UefiX64Http: 16,
  UefiArm64Http: 19,
} as const;

/** Architectures an http_boot EFI binary (x64 or ARM64) can run on. */
const HTTP_BOOT_ARCHES: readonly number[] = [Arch.UefiX64Http, Arch.UefiArm64Http, Arch.UefiX64, Arch.UefiBc, Arch.UefiArm64];

export type Firmware = 'pxe' | 'ipxe' | 'http';

/** What a client says about itself in its DHCP request. */
export interface BootClient {
  /** lower-case colon MAC */
  mac: string;
  /** option 93; 0 (BIOS) when absent */
  arch: number;
  /** option 60 as text, if any */
  vendorClass?: string;
  /** iPXE is already running: user class "iPXE" or option 175 present */
  ipxe: boolean;
}

export interface BootInputs {
  client: BootClient;
  /** the registry's record, if the node is known */
  node?: NodeRecord;
  boot: BootConfig;
  /** address the client reaches kaboot at (the receiving interface, or next_server) */
  serverIp: string;
  httpPort: number;
}

export type BootDecision =
  | {
      /** boot file name (TFTP path) or full http:// URL */
      file: string;
      via: 'tftp' | 'http';
      /** the file is pxelinux: send options 208 and 211 */
      pxelinux: boolean;
      /** vendor class to echo in the reply (option 60) */
      vendorClass: 'PXEClient' | 'HTTPClient';
      firmware: Firmware;
      nextBoot: NextBoot;
      reason: string;
    }
  | { none: string; firmware: Firmware; nextBoot: NextBoot };

export const isBoot = (d: BootDecision): d is Extract<BootDecision, { file: string }> => 'file' in d;

export function scriptUrl(serverIp: string, httpPort: number, mac: string): string {
  return `http://${serverIp}:${httpPort}/ipxe/${mac.toLowerCase().replace(/:/g, '-')}.ipxe`;
}

const IPXE_BINARY = /(^|\/)(undionly\.k?kpxe|ipxe\.(pxe|efi|lkrn)|snponly\.efi|[^/]*ipxe[^/]*)$/i;
const PXELINUX = /(^|\/)(l?pxelinux\.0|gpxelinux\.0)$/i;

export function isIpxeBinary(file: string): boolean {
  return IPXE_BINARY.test(file);
}

export function isPxelinux(file: string): boolean {
  return PXELINUX.test(file);
}

export function firmwareOf(c: BootClient): Firmware {
  if (c.ipxe) return 'ipxe';
  if (c.arch === Arch.UefiX64Http || c.arch === Arch.UefiArm64Http || c.vendorClass?.startsWith('HTTPClient')) return 'http';
  return 'pxe';
}

const archName: Record<number, string> = {
  0: 'BIOS',
  6: 'IA32 UEFI',
  7: 'x64 UEFI',
  9: 'x64 UEFI (EBC)',
  10: 'ARM32 UEFI',
  11: 'ARM64 UEFI',
  16: 'x64 UEFI HTTP',
  19: 'ARM64 UEFI HTTP',
};

export function describeArch(arch: number): string {
  return archName[arch] ?? `arch ${arch}`;
}

/** Which configured entry a PXE ROM of this architecture uses, if any. */
function pxeEntry(arch: number): keyof BootFilesConfig | undefined {
  switch (arch) {
    case Arch.BiosX86:
      return 'bios_pxe';
    case Arch.UefiIa32:
    case Arch.UefiX64:
    case Arch.UefiBc:
      return 'uefi_pxe';
    case Arch.UefiArm64:
      return 'arm64_pxe';
    default:
      return undefined;
  }
}

export function decideBoot(inp: BootInputs): BootDecision {
  const { client, boot } = inp;
  const firmware = firmwareOf(client);
  const nextBoot: NextBoot = inp.node?.next_boot ?? boot.default;
  const known = inp.node ? 'known node' : `unknown node, default ${boot.default}`;
  const script = scriptUrl(inp.serverIp, inp.httpPort, client.mac);
  const httpUrl = (path: string) =>
    /^https?:\/\//i.test(path) ? path : `http://${inp.serverIp}:${inp.httpPort}/${path.replace(/^\/+/, '')}`;
  const none = (why: string): BootDecision => ({ none: why, firmware, nextBoot });
  const give = (file: string, via: 'tftp' | 'http', reason: string): BootDecision => ({
    file,
    via,
    pxelinux: via === 'tftp' && isPxelinux(file),
    vendorClass: firmware === 'http' ? 'HTTPClient' : 'PXEClient',
    firmware,
    nextBoot,
    reason: `${reason}; ${known}, next boot ${nextBoot}`,
  });

  if (firmware === 'ipxe') {
    const entry: keyof BootFilesConfig = client.arch === Arch.BiosX86 ? 'bios_ipxe' : 'uefi_ipxe';
    const value = boot.files[entry];
    if (value === 'script') return give(script, 'http', `iPXE on ${describeArch(client.arch)}: ${entry} is the iPXE script`);
    // Loop breaking: iPXE already runs, so it never gets an iPXE binary again.
    if (isIpxeBinary(value)) return give(script, 'http', `iPXE on ${describeArch(client.arch)}: ${entry} ${value} is iPXE itself, so the script instead`);
    if (/^https?:\/\//i.test(value)) return give(value, 'http', `iPXE on ${describeArch(client.arch)}: ${entry}`);
    return give(value, 'tftp', `iPXE on ${describeArch(client.arch)}: ${entry}`);
  }

  if (firmware === 'http') {
    if (!HTTP_BOOT_ARCHES.includes(client.arch)) {
      return none(`HTTP boot client of ${describeArch(client.arch)}: no boot file for it`);
    }
    const value = boot.files.http_boot;
    if (value === 'script') return none('http_boot is "script", which only iPXE can run; give an EFI binary (e.g. ipxe.efi)');
    return give(httpUrl(value), 'http', `UEFI HTTP boot on ${describeArch(client.arch)}: http_boot`);
  }

  const entry = pxeEntry(client.arch);
  if (!entry) return none(`no boot file for a PXE ROM of ${describeArch(client.arch)}`);
  const value = boot.files[entry];
  if (value === 'script') return none(`${entry} is "script", which a PXE ROM cannot run; give a loader (e.g. pxelinux.0, ipxe.efi)`);
  if (/^https?:\/\//i.test(value)) return none(`${entry} is a URL, which a PXE ROM cannot fetch (TFTP only)`);
  return give(value, 'tftp', `PXE ROM on ${describeArch(client.arch)}: ${entry}`);
}
