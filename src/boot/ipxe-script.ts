// The iPXE script a node gets once iPXE runs: kernel and initrd over HTTP (much faster
// than TFTP), or back to the local disk. Never iPXE again, so no boot loop.
import type { BootConfig } from '../config/schema.js';
import type { NextBoot } from '../nodes/registry.js';
import { kernelAppend, type KernelLine } from './pxelinux-config.js';

export interface LocalBootOptions {
  /**
   * http:// URL of the EFI image that finds the node's boot loader on its local disks
   * (boot.files.uefi_local), when images_dir holds it; undefined: UEFI nodes just exit.
   */
  uefiLocalUrl?: string | undefined;
}

export function baseUrl(at: Pick<KernelLine, 'server' | 'httpPort'>): string {
  return `http://${at.server}${at.httpPort === 80 ? '' : `:${at.httpPort}`}`;
}

export function ipxeScript(boot: BootConfig, next: NextBoot, at: KernelLine, mac: string, local: LocalBootOptions = {}): string {
  if (next === 'local') return localScript(mac, local);
  const base = baseUrl(at);
  const initrdName = boot.initrd.split('/').pop()!;
  return [
    '#!ipxe',
    `echo kaboot: ${mac} boots kamethod`,
    // iPXE on UEFI needs initrd=<name> on the command line, or the kernel finds no initrd.
    // ip= is iPXE's lease in pxelinux's IPAPPEND 1 form: the agent need not ask DHCP again.
    `kernel ${base}/${boot.kernel} initrd=${initrdName} ${kernelAppend(boot, at)} BOOTIF=01-${mac.replace(/:/g, '-')} ip=\${ip}:\${next-server}:\${gateway}:\${netmask}`,
    `initrd ${base}/${boot.initrd}`,
    'boot',
    '',
  ].join('\n');
}

function localScript(mac: string, local: LocalBootOptions): string {
  // BIOS: iPXE boots the first disk through INT 13h. UEFI: Debian's iPXE (2019) cannot
  // sanboot a local disk, and a bare `exit` leaves OVMF to try PXEv4, PXEv6, HTTPv4 and
  // HTTPv6 first (about two minutes); a GRUB image that searches the local ESPs and
  // chainloads the boot loader it finds goes straight to the disk (as MAAS does). If that
  // image is missing, or finds nothing and returns, exit: the firmware goes on.
  const efi = local.uefiLocalUrl
    ? [`echo kaboot: chainloading ${local.uefiLocalUrl} to find the local disk's boot loader`, `chain ${local.uefiLocalUrl} || echo kaboot: ${local.uefiLocalUrl} failed`]
    : ['echo kaboot: no local-boot EFI image on the appliance (boot.files.uefi_local), back to the firmware'];
  return [
    '#!ipxe',
    `echo kaboot: ${mac} boots from its local disk`,
    'iseq ${platform} efi && goto efi ||',
    'sanboot --no-describe --drive 0x80 ||',
    'exit 1',
    ':efi',
    ...efi,
    'exit 1',
    '',
  ].join('\n');
}
