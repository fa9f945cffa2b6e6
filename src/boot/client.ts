// What a DHCP request says about the booting client: architecture (93), vendor class
// (60), and whether iPXE already runs (user class 77 "iPXE", or option 175).
import { Opt, macOf, type DhcpPacket } from '../dhcp/packet.js';
import type { BootClient } from './decide.js';

/** RFC 3004 user class: length-prefixed items; iPXE and some ROMs send one bare string instead. */
export function userClasses(v: Buffer | undefined): string[] {
  if (!v || v.length === 0) return [];
  const items: string[] = [];
  let i = 0;
  while (i < v.length) {
    const len = v[i]!;
    if (len === 0 || i + 1 + len > v.length) return [v.toString('latin1')];
    items.push(v.toString('latin1', i + 1, i + 1 + len));
    i += 1 + len;
  }
  return items;
}

export function bootClientOf(p: Pick<DhcpPacket, 'chaddr' | 'hlen' | 'options'>): BootClient {
  const archOpt = p.options.get(Opt.ClientArch);
  const vendor = p.options.get(Opt.VendorClass);
  const users = userClasses(p.options.get(Opt.UserClass));
  return {
    mac: macOf(p),
    // A client may list several architectures; the first is the one it runs.
    arch: archOpt && archOpt.length >= 2 ? archOpt.readUInt16BE(0) : 0,
    ...(vendor ? { vendorClass: vendor.toString('latin1') } : {}),
    ipxe: users.includes('iPXE') || p.options.has(Opt.Ipxe),
  };
}

export const isPxeVendor = (vendorClass: string | undefined) =>
  vendorClass !== undefined && (vendorClass.startsWith('PXEClient') || vendorClass.startsWith('HTTPClient'));
