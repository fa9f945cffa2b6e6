// Small byte-level helpers shared by the DHCP codecs: IPv4 text <-> bytes and the
// tag-length-value walk used by the options field and by encapsulated options (43, 175).
import { DhcpEncodeError } from './errors.js';

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIpv4(s: string): boolean {
  return IPV4_RE.test(s);
}

/** Write dotted-quad `ip` at `off`; throws DhcpEncodeError on text that is not an IPv4 address. */
export function writeIpv4(buf: Buffer, off: number, ip: string, what: string): void {
  if (!IPV4_RE.test(ip)) throw new DhcpEncodeError('bad-field', `${what}: "${ip}" is not an IPv4 address (e.g. 192.168.10.1)`);
  const parts = ip.split('.');
  for (let i = 0; i < 4; i++) buf[off + i] = Number(parts[i]);
}

export function readIpv4(buf: Uint8Array, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

export interface Tlv {
  code: number;
  /** offset of the value in the buffer walked */
  start: number;
  end: number;
}

export type TlvWalk = { ok: true; items: Tlv[] } | { ok: false; offset: number; message: string };

/**
 * Walk DHCP-style TLVs in buf[from, to): 0 is a one-byte Pad, 255 ends the walk,
 * anything else is code, length, value. A missing length byte or a value running
 * past `to` fails with the offset of the bad option.
 */
export function walkTlvs(buf: Uint8Array, from: number, to: number): TlvWalk {
  const items: Tlv[] = [];
  let i = from;
  while (i < to) {
    const code = buf[i]!;
    if (code === 0) {
      i++;
      continue;
    }
    if (code === 255) break;
    if (i + 1 >= to) return { ok: false, offset: i, message: `option ${code} at offset ${i} has no length byte` };
    const len = buf[i + 1]!;
    const start = i + 2;
    const end = start + len;
    if (end > to) {
      return { ok: false, offset: i, message: `option ${code} at offset ${i} claims ${len} bytes but only ${to - start} remain` };
    }
    items.push({ code, start, end });
    i = end;
  }
  return { ok: true, items };
}

/** Join TLVs by code, in order of first appearance, concatenating repeats (RFC 3396). */
export function joinTlvs(buf: Uint8Array, items: Tlv[], into: Map<number, Buffer> = new Map()): Map<number, Buffer> {
  const parts = new Map<number, Buffer[]>();
  for (const [code, value] of into) parts.set(code, [value]);
  for (const t of items) {
    const chunk = Buffer.from(buf.subarray(t.start, t.end));
    const list = parts.get(t.code);
    if (list) list.push(chunk);
    else parts.set(t.code, [chunk]);
  }
  into.clear();
  for (const [code, list] of parts) into.set(code, list.length === 1 ? list[0]! : Buffer.concat(list));
  return into;
}

/**
 * Encode a map of sub-options as TLVs (values longer than 255 split into repeated
 * codes, RFC 3396), optionally followed by End.
 */
export function encodeTlvs(map: Map<number, Buffer>, withEnd: boolean): Buffer {
  const out: Buffer[] = [];
  for (const [code, value] of map) {
    if (code === 0 || code === 255 || !Number.isInteger(code) || code < 0 || code > 255) {
      throw new DhcpEncodeError('bad-option', `option code ${code} cannot carry a value (0 and 255 are Pad and End)`);
    }
    out.push(...splitOption(code, value));
  }
  if (withEnd) out.push(Buffer.from([255]));
  return Buffer.concat(out);
}

/** One option as one or more TLVs of at most 255 value bytes each (RFC 3396). */
export function splitOption(code: number, value: Buffer): Buffer[] {
  if (value.length === 0) return [Buffer.from([code, 0])];
  const out: Buffer[] = [];
  for (let off = 0; off < value.length; off += 255) {
    const chunk = value.subarray(off, Math.min(off + 255, value.length));
    out.push(Buffer.from([code, chunk.length]), chunk);
  }
  return out;
}
