// DHCPv4 message codec: bytes <-> DhcpPacket (RFC 2131 §2, RFC 2132, RFC 3396).
// Pure: no sockets, no policy. decodePacket never throws, whatever the bytes.
//
// Wire layout (RFC 2131 figure 1):
//   0 op | 1 htype | 2 hlen | 3 hops | 4 xid(4) | 8 secs(2) | 10 flags(2)
//   12 ciaddr | 16 yiaddr | 20 siaddr | 24 giaddr | 28 chaddr(16) | 44 sname(64)
//   108 file(128) | 236 magic cookie 99.130.83.99 | 240 options ...
import { BOOTREPLY, BOOTREQUEST, Opt, type DhcpPacket, type OptionMap } from './packet.js';
import { DhcpEncodeError, type DhcpDecodeError, type DhcpDecodeErrorCode } from './errors.js';
import { joinTlvs, readIpv4, walkTlvs, writeIpv4, type Tlv } from './wire.js';

export const MAGIC_COOKIE = Buffer.from([99, 130, 83, 99]);
/** fixed header (236) plus the magic cookie */
export const HEADER_SIZE = 240;
/** RFC 951: a BOOTP message is at least 300 bytes; some relays and ROMs drop shorter ones */
export const BOOTP_MIN_SIZE = 300;
/** RFC 2131 §2: every client accepts a 576-byte IP datagram (312 bytes of options) */
export const DEFAULT_MAX_MESSAGE_SIZE = 576;
/** IPv4 (20) and UDP (8) headers: option 57 counts the whole IP datagram, as isc-dhcpd reads it */
export const IP_UDP_OVERHEAD = 28;

const SNAME_OFF = 44;
const SNAME_LEN = 64;
const FILE_OFF = 108;
const FILE_LEN = 128;
const OVERLOAD_FILE = 1;
const OVERLOAD_SNAME = 2;

export type DecodeResult = { ok: true; packet: DhcpPacket } | { ok: false; error: DhcpDecodeError };

const fail = (code: DhcpDecodeErrorCode, message: string, offset?: number): DecodeResult => ({
  ok: false,
  error: offset === undefined ? { code, message } : { code, message, offset },
});

/**
 * Decode one DHCP message. Options are gathered from the options field, then, as option
 * 52 says, from file and then sname (RFC 2131 §4.1, RFC 3396 §5); repeated codes are
 * concatenated in that order (RFC 3396). Pad is skipped, End closes an area, bytes after
 * End are ignored, a missing End is tolerated. Option 52 is consumed here and not kept in
 * the map; sname/file are '' when they carried options. Never throws.
 */
export function decodePacket(input: Uint8Array): DecodeResult {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (buf.length < HEADER_SIZE) return fail('short', `${buf.length} bytes, a DHCP message has at least ${HEADER_SIZE}`);
  const op = buf[0]!;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) return fail('bad-op', `op ${op} is neither 1 (request) nor 2 (reply)`, 0);
  const hlen = buf[2]!;
  if (hlen > 16) return fail('bad-hlen', `hlen ${hlen} is larger than the 16-byte chaddr field`, 2);
  if (!buf.subarray(236, 240).equals(MAGIC_COOKIE)) {
    return fail('bad-magic', `magic cookie is ${buf.toString('hex', 236, 240)}, not 63825363`, 236);
  }

  const main = walkTlvs(buf, HEADER_SIZE, buf.length);
  if (!main.ok) return fail('option-overrun', main.message, main.offset);
  let items: Tlv[] = main.items;

  let overload = 0;
  let has52 = false;
  for (const t of items) if (t.code === Opt.Overload) has52 = true;
  if (has52) {
    const overloadTlvs = items.filter((t) => t.code === Opt.Overload);
    const first = overloadTlvs[0]!;
    const len = overloadTlvs.reduce((n, t) => n + (t.end - t.start), 0);
    overload = len === 1 ? buf[first.start]! : 0;
    if (overload < 1 || overload > 3) {
      return fail('bad-overload', `option 52 must be one byte of 1, 2 or 3 (got ${buf.toString('hex', first.start, first.end) || 'nothing'}${overloadTlvs.length > 1 ? ', repeated' : ''})`, first.start - 2);
    }
    items = items.filter((t) => t.code !== Opt.Overload);
    // RFC 2131 §4.1 / RFC 3396 §5: options field first, then file, then sname.
    for (const [bit, off, len, name] of [
      [OVERLOAD_FILE, FILE_OFF, FILE_LEN, 'file'],
      [OVERLOAD_SNAME, SNAME_OFF, SNAME_LEN, 'sname'],
    ] as const) {
      if (!(overload & bit)) continue;
      const area = walkTlvs(buf, off, off + len);
      if (!area.ok) return fail('option-overrun', `in the overloaded ${name} field: ${area.message}`, area.offset);
      const loop = area.items.find((t) => t.code === Opt.Overload);
      if (loop) return fail('overload-loop', `option 52 inside the overloaded ${name} field`, loop.start - 2);
      items = items.concat(area.items);
    }
  }

  const options: OptionMap = joinTlvs(buf, items);
  return {
    ok: true,
    packet: {
      op,
      htype: buf[1]!,
      hlen,
      hops: buf[3]!,
      xid: buf.readUInt32BE(4),
      secs: buf.readUInt16BE(8),
      flags: buf.readUInt16BE(10),
      ciaddr: readIpv4(buf, 12),
      yiaddr: readIpv4(buf, 16),
      siaddr: readIpv4(buf, 20),
      giaddr: readIpv4(buf, 24),
      chaddr: Buffer.from(buf.subarray(28, 44)),
      sname: overload & OVERLOAD_SNAME ? '' : cString(buf, SNAME_OFF, SNAME_LEN),
      file: overload & OVERLOAD_FILE ? '' : cString(buf, FILE_OFF, FILE_LEN),
      options,
    },
  };
}

/** sname and file are byte strings: one character per byte, up to the first NUL. */
function cString(buf: Buffer, off: number, len: number): string {
  const nul = buf.indexOf(0, off);
  const end = nul === -1 || nul > off + len ? off + len : nul;
  return buf.toString('latin1', off, end);
}

/** latin1 (byte-exact round trip of what was decoded) unless a character needs UTF-8. */
function fieldBytes(s: string, max: number, what: string): Buffer {
  // eslint-disable-next-line no-control-regex
  const b = Buffer.from(s, /^[\u0000-\u00ff]*$/.test(s) ? 'latin1' : 'utf8');
  if (b.length > max) throw new DhcpEncodeError('bad-field', `${what} is ${b.length} bytes, the field holds ${max}`);
  return b;
}

export interface EncodeOptions {
  /**
   * Largest IP datagram the receiver takes (option 57's meaning; see maxReplySize).
   * Default 576. Options that do not fit go to file and sname (option 52) when those are empty.
   */
  maxSize?: number;
}

function checkUint(n: number, bits: 8 | 16 | 32, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** bits) throw new DhcpEncodeError('bad-field', `${what} ${n} is not a ${bits}-bit unsigned integer`);
  return n;
}

interface Area {
  name: 'options' | 'file' | 'sname';
  /** bytes available for options, End excluded */
  cap: number;
  parts: Buffer[];
  used: number;
}

/**
 * Encode a DHCP message. Option 53 goes first, 54 second, then the map's order (use
 * orderReplyOptions to put it in the client's order). An option longer than 255 bytes is
 * split into repeated codes (RFC 3396). When the options do not fit in maxSize, the rest
 * go to file and then sname (those that are '' in the packet), with option 52 saying so.
 * The message is padded to 300 bytes. Option 52 in the map is ignored (the encoder owns it).
 * Throws DhcpEncodeError on fields that cannot be encoded or options that do not fit.
 */
export function encodePacket(p: DhcpPacket, opts: EncodeOptions = {}): Buffer {
  const maxSize = opts.maxSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  const ordered = orderedOptions(p.options);
  let needed = 0;
  for (const [, v] of ordered) needed += tlvLength(v.length);
  const room = maxSize - IP_UDP_OVERHEAD - HEADER_SIZE;

  if (needed + 1 <= room) {
    // The common case: everything fits in the options field; write it in one buffer.
    const out = Buffer.alloc(Math.max(BOOTP_MIN_SIZE, HEADER_SIZE + needed + 1));
    writeHeader(out, p);
    let at = HEADER_SIZE;
    for (const [code, v] of ordered) at = writeOption(out, at, code, v);
    out[at] = Opt.End;
    return out;
  }

  const head = Buffer.alloc(HEADER_SIZE);
  writeHeader(head, p);
  const areas: Area[] = [{ name: 'options', cap: room - 3 - 1, parts: [], used: 0 }];
  if (p.file === '') areas.push({ name: 'file', cap: FILE_LEN - 1, parts: [], used: 0 });
  if (p.sname === '') areas.push({ name: 'sname', cap: SNAME_LEN - 1, parts: [], used: 0 });
  if (areas[0]!.cap < 0) throw tooBig(maxSize, needed);
  place(ordered, areas, () => tooBig(maxSize, needed));
  let overload = 0;
  for (const a of areas.slice(1)) {
    if (a.used === 0) continue;
    const [bit, off, len] = a.name === 'file' ? [OVERLOAD_FILE, FILE_OFF, FILE_LEN] : [OVERLOAD_SNAME, SNAME_OFF, SNAME_LEN];
    overload |= bit;
    head.fill(0, off, off + len);
    Buffer.concat([...a.parts, Buffer.from([Opt.End])]).copy(head, off);
  }
  const main = areas[0]!.parts;
  // Option 52 right after 53, which stays first.
  const at = main.length > 0 && main[0]![0] === Opt.MessageType ? 1 : 0;
  main.splice(at, 0, Buffer.from([Opt.Overload, 1, overload]));
  const out = Buffer.concat([head, ...main, Buffer.from([Opt.End])]);
  return out.length >= BOOTP_MIN_SIZE ? out : Buffer.concat([out, Buffer.alloc(BOOTP_MIN_SIZE - out.length)]);
}

/** Validate the fixed fields and write them, sname and file, and the magic cookie. */
function writeHeader(out: Buffer, p: DhcpPacket): void {
  if (p.op !== BOOTREQUEST && p.op !== BOOTREPLY) throw new DhcpEncodeError('bad-field', `op ${String(p.op)} is neither 1 nor 2`);
  out[0] = p.op;
  out[1] = checkUint(p.htype, 8, 'htype');
  out[2] = checkUint(p.hlen, 8, 'hlen');
  if (p.hlen > 16) throw new DhcpEncodeError('bad-field', `hlen ${p.hlen} is larger than 16`);
  out[3] = checkUint(p.hops, 8, 'hops');
  out.writeUInt32BE(checkUint(p.xid, 32, 'xid'), 4);
  out.writeUInt16BE(checkUint(p.secs, 16, 'secs'), 8);
  out.writeUInt16BE(checkUint(p.flags, 16, 'flags'), 10);
  writeIpv4(out, 12, p.ciaddr, 'ciaddr');
  writeIpv4(out, 16, p.yiaddr, 'yiaddr');
  writeIpv4(out, 20, p.siaddr, 'siaddr');
  writeIpv4(out, 24, p.giaddr, 'giaddr');
  if (p.chaddr.length > 16) throw new DhcpEncodeError('bad-field', `chaddr is ${p.chaddr.length} bytes, the field holds 16`);
  p.chaddr.copy(out, 28);
  if (p.sname !== '') fieldBytes(p.sname, SNAME_LEN, 'sname').copy(out, SNAME_OFF);
  if (p.file !== '') fieldBytes(p.file, FILE_LEN, 'file').copy(out, FILE_OFF);
  MAGIC_COOKIE.copy(out, 236);
}

/** Bytes an option takes on the wire, split into 255-byte pieces (RFC 3396). */
function tlvLength(valueLength: number): number {
  return valueLength === 0 ? 2 : valueLength + 2 * Math.ceil(valueLength / 255);
}

/** Write one option at `at`, split into 255-byte pieces; returns the offset after it. */
function writeOption(out: Buffer, at: number, code: number, v: Buffer): number {
  if (v.length === 0) {
    out[at] = code;
    out[at + 1] = 0;
    return at + 2;
  }
  for (let off = 0; off < v.length; off += 255) {
    const n = Math.min(255, v.length - off);
    out[at] = code;
    out[at + 1] = n;
    v.copy(out, at + 2, off, off + n);
    at += 2 + n;
  }
  return at;
}

function tooBig(maxSize: number, bytes: number) {
  return new DhcpEncodeError('too-big', `${bytes} bytes of options do not fit a ${maxSize}-byte message, even overloaded into file and sname`);
}

/** 53, then 54, then the rest in map order; Pad, End and 52 dropped. */
function orderedOptions(map: OptionMap): [number, Buffer][] {
  const out: [number, Buffer][] = [];
  for (const first of [Opt.MessageType, Opt.ServerId]) {
    const v = map.get(first);
    if (v !== undefined) out.push([first, v]);
  }
  for (const [code, v] of map) {
    if (code === Opt.MessageType || code === Opt.ServerId || code === Opt.Overload || code === Opt.Pad || code === Opt.End) continue;
    if (!Number.isInteger(code) || code < 0 || code > 255) throw new DhcpEncodeError('bad-option', `option code ${code} is not 1-254`);
    out.push([code, v]);
  }
  return out;
}

/**
 * Fill the areas in order. An option of at most 255 bytes is kept whole when the current
 * or the next area can hold it (old PXE ROMs know nothing of RFC 3396); otherwise, and for
 * longer options, it is split across areas as RFC 3396 allows.
 */
function place(options: [number, Buffer][], areas: Area[], tooBigError: () => Error): void {
  let a = 0;
  const free = () => areas[a]!.cap - areas[a]!.used;
  const put = (code: number, chunk: Buffer) => {
    const area = areas[a]!;
    area.parts.push(Buffer.concat([Buffer.from([code, chunk.length]), chunk]));
    area.used += 2 + chunk.length;
  };
  for (const [code, value] of options) {
    const whole = 2 + value.length;
    if (value.length <= 255) {
      if (whole <= free()) {
        put(code, value);
        continue;
      }
      const next = areas[a + 1];
      if (next && whole <= next.cap) {
        a++;
        put(code, value);
        continue;
      }
    }
    let off = 0;
    do {
      while (free() < (value.length === 0 ? 2 : 3)) {
        if (++a >= areas.length) throw tooBigError();
      }
      const n = Math.min(255, value.length - off, free() - 2);
      put(code, value.subarray(off, off + n));
      off += n;
    } while (off < value.length);
  }
}

/**
 * The maxSize to encode a reply with: the client's option 57 (at least 576, RFC 2132 §9.10),
 * capped by the link's MTU.
 */
export function maxReplySize(request: Pick<DhcpPacket, 'options'>, mtu = 1500): number {
  const v = request.options.get(Opt.MaxMessageSize);
  const asked = v?.length === 2 ? v.readUInt16BE(0) : DEFAULT_MAX_MESSAGE_SIZE;
  return Math.min(Math.max(asked, DEFAULT_MAX_MESSAGE_SIZE), Math.max(mtu, DEFAULT_MAX_MESSAGE_SIZE));
}
