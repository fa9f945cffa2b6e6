// BIOS or UEFI, as the running kernel sees it, and the DHCP client architecture (option 93,
// RFC 4578) the agent announces: busybox udhcpc sends none on its own.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export type Firmware = 'uefi' | 'bios';

export function detectFirmware(sysRoot = '/sys'): Firmware {
  return existsSync(join(sysRoot, 'firmware/efi')) ? 'uefi' : 'bios';
}

/** 0x0007 EFI x86-64, 0x0000 x86 BIOS */
export function clientArchHex(fw: Firmware): string {
  return fw === 'uefi' ? '0007' : '0000';
}
