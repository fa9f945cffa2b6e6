// The iPXE script a node gets once iPXE runs: kernel and initrd over HTTP (much faster
// than TFTP), or back to the local disk. Never iPXE again, so no boot loop.
import type { BootConfig } from '../config/schema.js';
import type { NextBoot } from '../nodes/registry.js';
import { kernelAppend, type KernelLine } from './pxelinux-config.js';

export function ipxeScript(boot: BootConfig, next: NextBoot, at: KernelLine, mac: string): string {
  if (next === 'local') {
    return [
      '#!ipxe',
      `echo kaboot: ${mac} boots from its local disk`,
      // UEFI: leave iPXE and let the firmware try its next boot entry. BIOS: the first disk.
      'iseq ${platform} efi && exit 1 ||',
      'sanboot --no-describe --drive 0x80 || exit 1',
      '',
    ].join('\n');
  }
  const base = `http://${at.server}${at.httpPort === 80 ? '' : `:${at.httpPort}`}`;
  const initrdName = boot.initrd.split('/').pop()!;
  return [
    '#!ipxe',
    `echo kaboot: ${mac} boots kamethod`,
    // iPXE on UEFI needs initrd=<name> on the command line, or the kernel finds no initrd.
    `kernel ${base}/${boot.kernel} initrd=${initrdName} ${kernelAppend(boot, at)} BOOTIF=01-${mac.replace(/:/g, '-')}`,
    `initrd ${base}/${boot.initrd}`,
    'boot',
    '',
  ].join('\n');
}
