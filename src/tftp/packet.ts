// TFTP wire codec (RFC 1350, option extension RFC 2347). Pure: bytes in, typed values
// out. decodePacket never throws; a bad datagram yields { ok: false, reason }.

export const Opcode = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

export const ErrorCode = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const;
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Options in request order; names lower-cased (RFC 2347: case-insensitive), values as sent. */
export type OptionList = ReadonlyArray<readonly [name: string, value: string]>;

export interface RequestPacket {
  op: 'RRQ' | 'WRQ';
  filename: string;
  /** lower-cased: netascii, octet or mail */
  mode: string;
  options: OptionList;
}
export interface DataPacket { op: 'DATA'; block: number; data: Buffer }
export interface AckPacket { op: 'ACK'; block: number }
export interface ErrorPacket { op: 'ERROR'; code: number; message: string }
export interface OackPacket { op: 'OACK'; options: OptionList }

export type TftpPacket = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket;

export type DecodeResult = { ok: true; packet: TftpPacket } | { ok: false; reason: string };

/** Largest datagram a TFTP peer can legally send: DATA with blksize 65464. */
export const MAX_PACKET = 4 + 65464;

function fail(reason: string): DecodeResult {
  return { ok: false, reason };
}

/** Split NUL-terminated strings from `start`; null when the last one is not terminated. */
function splitStrings(buf: Buffer, start: number): string[] | null {
  const out: string[] = [];
  let pos = start;
  while (pos < buf.length) {
    const end = buf.indexOf(0, pos);
    if (end < 0) return null;
    // latin1 keeps every byte as one char, so a NUL or odd byte can be checked later.
    out.push(buf.toString('latin1', pos, end));
    pos = end + 1;
  }
  return out;
}

function decodeRequest(op: 'RRQ' | 'WRQ', buf: Buffer): DecodeResult {
  const parts = splitStrings(buf, 2);
  if (!parts) return fail('request string not NUL-terminated');
  if (parts.length < 2) return fail('request without filename and mode');
  const [filename, mode] = parts as [string, string, ...string[]];
  if (filename.length === 0) return fail('empty filename');
  const m = mode.toLowerCase();
  if (m !== 'netascii' && m !== 'octet' && m !== 'mail') return fail(`unknown mode ${JSON.stringify(mode.slice(0, 20))}`);
  const rest = parts.slice(2);
  // Some clients pad with a trailing empty string; an odd count is otherwise malformed.
  if (rest.length % 2 === 1) {
    if (rest[rest.length - 1] !== '') return fail('option without value');
    rest.pop();
  }
  const options: [string, string][] = [];
  for (let i = 0; i < rest.length; i += 2) {
    const name = (rest[i] as string).toLowerCase();
    if (name.length === 0) return fail('empty option name');
    options.push([name, rest[i + 1] as string]);
  }
  return { ok: true, packet: { op, filename, mode: m, options } };
}

export function decodePacket(buf: Buffer): DecodeResult {
  if (buf.length < 2) return fail('shorter than an opcode');
  if (buf.length > MAX_PACKET) return fail('longer than any TFTP packet');
  const opcode = buf.readUInt16BE(0);
  switch (opcode) {
    case Opcode.RRQ:
      return decodeRequest('RRQ', buf);
    case Opcode.WRQ:
      return decodeRequest('WRQ', buf);
    case Opcode.DATA:
      if (buf.length < 4) return fail('DATA without block number');
      return { ok: true, packet: { op: 'DATA', block: buf.readUInt16BE(2), data: buf.subarray(4) } };
    case Opcode.ACK:
      if (buf.length < 4) return fail('ACK without block number');
      // Trailing bytes after an ACK are tolerated (some stacks pad to a minimum frame).
      return { ok: true, packet: { op: 'ACK', block: buf.readUInt16BE(2) } };
    case Opcode.ERROR: {
      if (buf.length < 4) return fail('ERROR without code');
      const end = buf.indexOf(0, 4);
      const message = buf.toString('latin1', 4, end < 0 ? buf.length : end);
      return { ok: true, packet: { op: 'ERROR', code: buf.readUInt16BE(2), message } };
    }
    case Opcode.OACK: {
      const parts = splitStrings(buf, 2);
      if (!parts || parts.length % 2 === 1) return fail('malformed OACK');
      const options: [string, string][] = [];
      for (let i = 0; i < parts.length; i += 2) options.push([(parts[i] as string).toLowerCase(), parts[i + 1] as string]);
      return { ok: true, packet: { op: 'OACK', options } };
    }
    default:
      return fail(`unknown opcode ${opcode}`);
  }
}

function strings(op: number, list: string[]): Buffer {
  const bodies = list.map((s) => Buffer.from(s, 'latin1'));
  const len = 2 + bodies.reduce((n, b) => n + b.length + 1, 0);
  const out = Buffer.alloc(len);
  out.writeUInt16BE(op, 0);
  let pos = 2;
  for (const b of bodies) {
    b.copy(out, pos);
    pos += b.length + 1; // the NUL is already there (alloc zero-fills)
  }
  return out;
}

export function encodePacket(p: TftpPacket): Buffer {
  switch (p.op) {
    case 'RRQ':
    case 'WRQ':
      return strings(Opcode[p.op], [p.filename, p.mode, ...p.options.flat()]);
    case 'OACK':
      return strings(Opcode.OACK, p.options.flat());
    case 'DATA': {
      const out = Buffer.allocUnsafe(4 + p.data.length);
      out.writeUInt16BE(Opcode.DATA, 0);
      out.writeUInt16BE(p.block & 0xffff, 2);
      p.data.copy(out, 4);
      return out;
    }
    case 'ACK': {
      const out = Buffer.allocUnsafe(4);
      out.writeUInt16BE(Opcode.ACK, 0);
      out.writeUInt16BE(p.block & 0xffff, 2);
      return out;
    }
    case 'ERROR': {
      const msg = Buffer.from(p.message, 'latin1');
      const out = Buffer.alloc(5 + msg.length);
      out.writeUInt16BE(Opcode.ERROR, 0);
      out.writeUInt16BE(p.code & 0xffff, 2);
      msg.copy(out, 4);
      return out;
    }
  }
}

/** The 4-byte header of a DATA packet, written into `into` (hot path: no allocation). */
export function writeDataHeader(into: Buffer, block: number): void {
  into[0] = 0;
  into[1] = Opcode.DATA;
  into[2] = (block >>> 8) & 0xff;
  into[3] = block & 0xff;
}

export function errorPacket(code: ErrorCodeValue, message: string): Buffer {
  return encodePacket({ op: 'ERROR', code, message });
}
