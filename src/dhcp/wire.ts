// Small byte-level helpers shared by the DHCP codecs: IPv4 text <-> bytes and the
// tag-length-value walk used by the options field and by encapsulated options (43, 175).
import { DhcpEncodeError } from './errors.js';

/**
 * Parse a dotted quad (no leading zeros, each part 0-255) into buf[off..off+4).
 * False, with buf untouched past what was parsed, when it is not one. No regex: this runs
 * for every address of every reply.
 */
function parseIpv4Into(s: string, buf: Uint8Array, off: number): boolean {
  const n = s.length;
  let i = 0;
  for (let part = 0; part < 4; part++) {
    if (part > 0) {
      if (s.charCodeAt(i) !== 46) return false;
      i++;
    }
    const start = i;
    let v = 0;
    while (i < n && i - start < 4) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
      i++;
    }
    const len = i - start;
    if (len === 0 || len > 3 || v > 255 || (len > 1 && s.charCodeAt(start) === 48)) return false;
    buf[off + part] = v;
  }
  return i === n;
}

const scratch = new Uint8Array(4);

export function isIpv4(s: string): boolean {
  return parseIpv4Into(s, scratch, 0);
}

/** Write dotted-quad `ip` at `off`; throws DhcpEncodeError on text that is not an IPv4 address. */
export function writeIpv4(buf: Uint8Array, off: number, ip: string, what: string): void {
  if (typeof ip !== 'string' || !parseIpv4Into(ip, scratch, 0)) {
    throw new DhcpEncodeError('bad-field', `${what}: "${String(ip)}" is not an IPv4 address (e.g. 192.168.10.1)`);
  }
  buf.set(scratch, off);
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

/**
 * Join TLVs by code, in order of first appearance, concatenating repeats (RFC 3396).
 * The values are copies, not views of `buf`: one copy of the span they come from, so the
 * caller may reuse its buffer.
 */
export function joinTlvs(buf: Uint8Array, items: Tlv[], into: Map<number, Buffer> = new Map()): Map<number, Buffer> {
  if (items.length === 0) return into;
  let lo = Infinity;
  let hi = 0;
  for (const t of items) {
    if (t.start < lo) lo = t.start;
    if (t.end > hi) hi = t.end;
  }
  const copy = Buffer.from(buf.subarray(lo, hi));
  let repeats: Map<number, Buffer[]> | undefined;
  for (const t of items) {
    const chunk = copy.subarray(t.start - lo, t.end - lo);
    const first = into.get(t.code);
    if (first === undefined) {
      into.set(t.code, chunk);
      continue;
    }
    repeats ??= new Map();
    const parts = repeats.get(t.code);
    if (parts) parts.push(chunk);
    else repeats.set(t.code, [first, chunk]);
  }
  if (repeats) for (const [code, parts] of repeats) into.set(code, Buffer.concat(parts));
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
