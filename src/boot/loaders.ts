// Boot loaders that Debian ships. A user who installs the packages (pxelinux,
// syslinux-common, syslinux-efi, ipxe) gets them served without copying anything;
// a file of the same name in images_dir takes precedence.
import { basename } from 'node:path';

const exact: Record<string, string> = {
  'pxelinux.0': '/usr/lib/PXELINUX/pxelinux.0',
  'lpxelinux.0': '/usr/lib/PXELINUX/lpxelinux.0',
  'undionly.kpxe': '/usr/lib/ipxe/undionly.kpxe',
  'undionly.kkpxe': '/usr/lib/ipxe/undionly.kkpxe',
  'ipxe.pxe': '/usr/lib/ipxe/ipxe.pxe',
  'ipxe.efi': '/usr/lib/ipxe/ipxe.efi',
  'snponly.efi': '/usr/lib/ipxe/snponly.efi',
  'syslinux.efi': '/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi',
};

/** Syslinux modules are asked for by bare name, from the loader's own folder. */
const moduleDirs: [RegExp, string][] = [
  [/^[a-z0-9_-]+\.c32$/, '/usr/lib/syslinux/modules/bios'],
  [/^[a-z0-9_-]+\.e64$/, '/usr/lib/syslinux/modules/efi64'],
];

/** The system path of a known loader for a request path (already normalised, no leading slash), or undefined. */
export function loaderPath(requestPath: string): string | undefined {
  if (requestPath.includes('/')) return undefined;
  const hit = exact[requestPath];
  if (hit) return hit;
  for (const [re, dir] of moduleDirs) if (re.test(requestPath)) return `${dir}/${basename(requestPath)}`;
  return undefined;
}
