// PXE vendor-encapsulated options, carried in option 43 when the vendor class is
// "PXEClient" (Intel PXE specification 2.1, section 2.4 "DHCP Options Used by PXE").
// Each sub-option is code, length, value; the list ends with 255.
import type { OptionValueError } from './errors.js';
import { DhcpEncodeError } from './errors.js';
import { isIpv4, joinTlvs, readIpv4, walkTlvs, writeIpv4 } from './wire.js';

export enum PxeSubOpt {
  MtftpIp = 1,
  MtftpClientPort = 2,
  MtftpServerPort = 3,
  MtftpTimeout = 4,
  MtftpDelay = 5,
  DiscoveryControl = 6,
  DiscoveryMulticastAddr = 7,
  BootServers = 8,
  BootMenu = 9,
  MenuPrompt = 10,
  BootItem = 71,
}

/** Bits of sub-option 6, PXE_DISCOVERY_CONTROL. */
export const DiscoveryControl = {
  /** do not broadcast to discover boot servers */
  NoBroadcast: 0x01,
  /** do not multicast to discover boot servers */
  NoMulticast: 0x02,
  /** use and accept only the servers in sub-option 8 */
  OnlyListedServers: 0x04,
  /** a boot file name is in this packet: download it, no menu, prompt or discovery */
  UseBootFile: 0x08,
} as const;

/** Boot server type 0 is the PXE bootstrap server (PXE spec table 2-2). */
export const PXE_BOOTSTRAP_SERVER = 0;

export interface PxeBootServer {
  /** boot server type (0: PXE bootstrap server) */
  type: number;
  addresses: string[];
}

export interface PxeMenuItem {
  /** boot server type this item selects */
  type: number;
  description: string;
}

export interface PxeVendorOptions {
  mtftpIp?: string;
  mtftpClientPort?: number;
  mtftpServerPort?: number;
  /** seconds */
  mtftpTimeout?: number;
  /** seconds */
  mtftpDelay?: number;
  /** DiscoveryControl bits */
  discoveryControl?: number;
  discoveryMulticastAddr?: string;
  bootServers?: PxeBootServer[];
  bootMenu?: PxeMenuItem[];
  /** timeout in seconds (0: boot the first item at once, 255: wait for a key) and prompt text */
  menuPrompt?: { timeout: number; prompt: string };
  /** in 4011 boot server replies: the item (server type) and layer being answered */
  bootItem?: { type: number; layer: number };
  /** sub-options kaboot does not know, kept raw */
  other?: Map<number, Buffer>;
}

export type PxeDecodeResult = { ok: true; value: PxeVendorOptions } | { ok: false; error: OptionValueError };

const fail = (message: string): PxeDecodeResult => ({ ok: false, error: { code: 'bad-value', option: 43, message } });

/** Decode the value of option 43 as PXE sub-options. Never throws. */
export function decodePxeOptions(buf: Buffer): PxeDecodeResult {
  const walk = walkTlvs(buf, 0, buf.length);
  if (!walk.ok) return fail(`PXE sub-options: ${walk.message}`);
  const subs = joinTlvs(buf, walk.items);
  const out: PxeVendorOptions = {};
  for (const [code, v] of subs) {
    const bad = (what: string) => fail(`PXE sub-option ${code}: ${what} (got ${v.length} bytes)`);
    switch (code) {
      case PxeSubOpt.MtftpIp:
        if (v.length !== 4) return bad('needs 4 bytes');
        out.mtftpIp = readIpv4(v, 0);
        break;
      case PxeSubOpt.MtftpClientPort:
      case PxeSubOpt.MtftpServerPort:
        if (v.length !== 2) return bad('needs 2 bytes');
        if (code === PxeSubOpt.MtftpClientPort) out.mtftpClientPort = v.readUInt16BE(0);
        else out.mtftpServerPort = v.readUInt16BE(0);
        break;
      case PxeSubOpt.MtftpTimeout:
      case PxeSubOpt.MtftpDelay:
      case PxeSubOpt.DiscoveryControl:
        if (v.length !== 1) return bad('needs 1 byte');
        if (code === PxeSubOpt.MtftpTimeout) out.mtftpTimeout = v[0]!;
        else if (code === PxeSubOpt.MtftpDelay) out.mtftpDelay = v[0]!;
        else out.discoveryControl = v[0]!;
        break;
      case PxeSubOpt.DiscoveryMulticastAddr:
        if (v.length !== 4) return bad('needs 4 bytes');
        out.discoveryMulticastAddr = readIpv4(v, 0);
        break;
      case PxeSubOpt.BootServers: {
        const servers: PxeBootServer[] = [];
        let i = 0;
        while (i < v.length) {
          if (i + 3 > v.length) return bad('truncated boot server entry');
          const type = v.readUInt16BE(i);
          const count = v[i + 2]!;
          i += 3;
          if (i + 4 * count > v.length) return bad(`boot server entry claims ${count} addresses`);
          const addresses: string[] = [];
          for (let k = 0; k < count; k++, i += 4) addresses.push(readIpv4(v, i));
          servers.push({ type, addresses });
        }
        out.bootServers = servers;
        break;
      }
      case PxeSubOpt.BootMenu: {
        const items: PxeMenuItem[] = [];
        let i = 0;
        while (i < v.length) {
          if (i + 3 > v.length) return bad('truncated menu entry');
          const type = v.readUInt16BE(i);
          const len = v[i + 2]!;
          i += 3;
          if (i + len > v.length) return bad(`menu entry claims a ${len}-byte description`);
          items.push({ type, description: v.toString('latin1', i, i + len) });
          i += len;
        }
        out.bootMenu = items;
        break;
      }
      case PxeSubOpt.MenuPrompt:
        if (v.length < 1) return bad('needs a timeout byte');
        out.menuPrompt = { timeout: v[0]!, prompt: v.toString('latin1', 1) };
        break;
      case PxeSubOpt.BootItem:
        if (v.length !== 4) return bad('needs 4 bytes');
        out.bootItem = { type: v.readUInt16BE(0), layer: v.readUInt16BE(2) };
        break;
      default:
        (out.other ??= new Map()).set(code, v);
    }
  }
  return { ok: true, value: out };
}

function u8(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xff) throw new DhcpEncodeError('bad-option', `PXE ${what}: ${n} is not 0-255`);
  return n;
}
function u16(n: number, what: string): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new DhcpEncodeError('bad-option', `PXE ${what}: ${n} is not 0-65535`);
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
function ip(s: string, what: string): Buffer {
  const b = Buffer.alloc(4);
  if (!isIpv4(s)) throw new DhcpEncodeError('bad-option', `PXE ${what}: "${s}" is not an IPv4 address`);
  writeIpv4(b, 0, s, what);
  return b;
}
function text(s: string, max: number, what: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  if (b.length > max) throw new DhcpEncodeError('bad-option', `PXE ${what}: "${s}" is longer than ${max} bytes`);
  return b;
}

/**
 * Encode PXE sub-options for option 43, ending with 255. Sub-options are written in the
 * order 6, 7, 8, 9, 10, 71, 1-5, then unknown ones, which is the order PXE servers
 * (dnsmasq, Windows WDS) use. Throws DhcpEncodeError on values that do not fit.
 */
export function encodePxeOptions(o: PxeVendorOptions): Buffer {
  const subs = new Map<number, Buffer>();
  if (o.discoveryControl !== undefined) subs.set(PxeSubOpt.DiscoveryControl, Buffer.from([u8(o.discoveryControl, 'discovery control')]));
  if (o.discoveryMulticastAddr !== undefined) subs.set(PxeSubOpt.DiscoveryMulticastAddr, ip(o.discoveryMulticastAddr, 'discovery multicast address'));
  if (o.bootServers !== undefined) {
    subs.set(
      PxeSubOpt.BootServers,
      Buffer.concat(
        o.bootServers.flatMap((s) => [
          u16(s.type, 'boot server type'),
          Buffer.from([u8(s.addresses.length, 'boot server address count')]),
          ...s.addresses.map((a) => ip(a, 'boot server address')),
        ]),
      ),
    );
  }
  if (o.bootMenu !== undefined) {
    subs.set(
      PxeSubOpt.BootMenu,
      Buffer.concat(
        o.bootMenu.flatMap((m) => {
          const d = text(m.description, 255, 'menu description');
          return [u16(m.type, 'menu item type'), Buffer.from([d.length]), d];
        }),
      ),
    );
  }
  if (o.menuPrompt !== undefined) {
    subs.set(PxeSubOpt.MenuPrompt, Buffer.concat([Buffer.from([u8(o.menuPrompt.timeout, 'prompt timeout')]), text(o.menuPrompt.prompt, 254, 'prompt')]));
  }
  if (o.bootItem !== undefined) subs.set(PxeSubOpt.BootItem, Buffer.concat([u16(o.bootItem.type, 'boot item type'), u16(o.bootItem.layer, 'boot item layer')]));
  if (o.mtftpIp !== undefined) subs.set(PxeSubOpt.MtftpIp, ip(o.mtftpIp, 'MTFTP address'));
  if (o.mtftpClientPort !== undefined) subs.set(PxeSubOpt.MtftpClientPort, u16(o.mtftpClientPort, 'MTFTP client port'));
  if (o.mtftpServerPort !== undefined) subs.set(PxeSubOpt.MtftpServerPort, u16(o.mtftpServerPort, 'MTFTP server port'));
  if (o.mtftpTimeout !== undefined) subs.set(PxeSubOpt.MtftpTimeout, Buffer.from([u8(o.mtftpTimeout, 'MTFTP timeout')]));
  if (o.mtftpDelay !== undefined) subs.set(PxeSubOpt.MtftpDelay, Buffer.from([u8(o.mtftpDelay, 'MTFTP delay')]));
  for (const [code, v] of o.other ?? []) if (!subs.has(code)) subs.set(code, v);
  const parts: Buffer[] = [];
  for (const [code, v] of subs) {
    if (code <= 0 || code >= 255) throw new DhcpEncodeError('bad-option', `PXE sub-option code ${code} is not 1-254`);
    if (v.length > 255) throw new DhcpEncodeError('bad-option', `PXE sub-option ${code} is ${v.length} bytes, more than 255`);
    parts.push(Buffer.from([code, v.length]), v);
  }
  parts.push(Buffer.from([255]));
  return Buffer.concat(parts);
}
