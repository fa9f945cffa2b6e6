// KA wire codec (docs/ka-protocol.md). Pure: bytes in, typed messages out. Every
// message is one frame: an 8-byte header (magic, version, type, flags, u32 payload
// length, big-endian) and a payload whose layout the type fixes. decodeFrame and the
// incremental FrameReader never throw on bad bytes: they return { ok: false, error }.

export const MAGIC = 0x4b; // 'K'
export const VERSION = 1;
export const HEADER_LEN = 8;
/** Largest control payload; a control frame announcing more is refused before it is read. */
export const MAX_CONTROL_PAYLOAD = 64 * 1024;
/** Largest DATA payload (offset + bytes). */
export const MAX_DATA_PAYLOAD = 8 + 4 * 1024 * 1024;
export const NONCE_LEN = 32;
export const PROOF_LEN = 32;
export const TOKEN_LEN = 32;
export const DIGEST_LEN = 32;
const MAX_STRING = 255;

export const FrameType = {
  // control channel, node ↔ coordinator
  HELLO: 1,
  CHALLENGE: 2,
  AUTH: 3,
  WELCOME: 4,
  REFUSE: 5,
  GO_NOW: 6,
  ATTACH: 7,
  EXPECT_CHILD: 8,
  DROP_CHILD: 9,
  STATS: 10,
  LINK_LOST: 11,
  RESULT: 12,
  RELEASE: 13,
  ABORT: 14,
  LINKED: 15,
  // data channel, child → parent then parent → child
  LINK_HELLO: 32,
  LINK_CHALLENGE: 33,
  LINK_AUTH: 34,
  DATA: 35,
  END: 36,
  LINK_REFUSE: 37,
} as const;
export type FrameTypeName = keyof typeof FrameType;

/** How a reader holds its parent: blocking readers hold the parent's ring (backpressure); detached ones never do and fall back to the spool. */
export type LinkMode = 'blocking' | 'detached';

export interface ChildStats { childId: number; bytes: number; blockedMs: number }

export type Frame =
  | { type: 'HELLO'; nonce: Buffer; session: string; nodeName: string; dataPort: number; wait: boolean; goNow: boolean }
  | { type: 'CHALLENGE'; nonce: Buffer; proof: Buffer }
  | { type: 'AUTH'; proof: Buffer }
  | { type: 'WELCOME'; nodeId: number; running: boolean; dataPort: number; spoolLinkId: number; spoolToken: Buffer }
  | { type: 'REFUSE'; code: number; reason: string }
  | { type: 'GO_NOW' }
  | { type: 'ATTACH'; linkId: number; token: Buffer; mode: LinkMode; host: string; port: number; parentId: number }
  | { type: 'EXPECT_CHILD'; linkId: number; childId: number; token: Buffer; mode: LinkMode; offset: number }
  | { type: 'DROP_CHILD'; childId: number }
  | {
      type: 'STATS';
      position: number;
      ringStart: number;
      /** unconsumed bytes held for blocking readers, per mille of the ring */
      fillPermille: number;
      windowMs: number;
      bytesIn: number;
      consumerBytes: number;
      consumerBlockedMs: number;
      /** time in the window this node stopped reading its parent because its own ring was full */
      pausedMs: number;
      children: ChildStats[];
    }
  | { type: 'LINK_LOST'; linkId: number; offset: number }
  | { type: 'RESULT'; bytes: number; digestOk: boolean; exitCode: number; durationMs: number; digest: Buffer }
  | { type: 'RELEASE' }
  | { type: 'ABORT'; reason: string }
  | { type: 'LINKED'; linkId: number; offset: number }
  | { type: 'LINK_HELLO'; linkId: number; nonce: Buffer }
  | { type: 'LINK_CHALLENGE'; nonce: Buffer; proof: Buffer }
  | { type: 'LINK_AUTH'; proof: Buffer; offset: number }
  | { type: 'DATA'; offset: number; data: Buffer }
  | { type: 'END'; total: number; digest: Buffer }
  | { type: 'LINK_REFUSE'; code: number; reason: string };

export type FrameOf<T extends Frame['type']> = Extract<Frame, { type: T }>;

export type FrameErrorCode =
  | 'bad-magic'
  | 'bad-version'
  | 'unknown-type'
  | 'bad-flags'
  | 'too-long'
  | 'bad-length'
  | 'bad-string'
  | 'bad-value'
  | 'offset-too-large';
export interface FrameError { code: FrameErrorCode; detail: string }
export type DecodeResult = { ok: true; frame: Frame } | { ok: false; error: FrameError };

const typeNames = new Map<number, FrameTypeName>(Object.entries(FrameType).map(([k, v]) => [v, k as FrameTypeName]));

export function isControlType(t: number): boolean {
  return t >= 1 && t <= 15;
}

function err(code: FrameErrorCode, detail: string): { ok: false; error: FrameError } {
  return { ok: false, error: { code, detail } };
}

export interface FrameHeader { type: number; flags: number; length: number }

/** Check an 8-byte header. `maxPayload` bounds what the caller is willing to buffer. */
export function decodeHeader(buf: Buffer, maxPayload = MAX_DATA_PAYLOAD): { ok: true; header: FrameHeader } | { ok: false; error: FrameError } {
  if (buf.length < HEADER_LEN) return err('bad-length', `header needs ${HEADER_LEN} bytes, got ${buf.length}`);
  if (buf[0] !== MAGIC) return err('bad-magic', `magic 0x${(buf[0] ?? 0).toString(16)}`);
  if (buf[1] !== VERSION) return err('bad-version', `version ${buf[1]}`);
  const type = buf[2] as number;
  if (!typeNames.has(type)) return err('unknown-type', `type ${type}`);
  const flags = buf[3] as number;
  if (flags !== 0) return err('bad-flags', `flags 0x${flags.toString(16)}`);
  const length = buf.readUInt32BE(4);
  const limit = type === FrameType.DATA ? Math.min(maxPayload, MAX_DATA_PAYLOAD) : Math.min(maxPayload, MAX_CONTROL_PAYLOAD);
  if (length > limit) return err('too-long', `${typeNames.get(type)} payload ${length} > ${limit}`);
  return { ok: true, header: { type, flags, length } };
}

/** A cursor over a payload; every read checks bounds and records the first failure. */
class PayloadReader {
  pos = 0;
  failed: FrameError | null = null;
  constructor(private readonly buf: Buffer) {}
  private need(n: number, what: string): boolean {
    if (this.failed) return false;
    if (this.pos + n > this.buf.length) {
      this.failed = { code: 'bad-length', detail: `${what}: payload ends at ${this.buf.length}, needs ${this.pos + n}` };
      return false;
    }
    return true;
  }
  u8(what: string): number {
    if (!this.need(1, what)) return 0;
    return this.buf[this.pos++] as number;
  }
  u16(what: string): number {
    if (!this.need(2, what)) return 0;
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    if (!this.need(4, what)) return 0;
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  i32(what: string): number {
    if (!this.need(4, what)) return 0;
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(what: string): number {
    if (!this.need(8, what)) return 0;
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      this.failed = { code: 'offset-too-large', detail: `${what} ${v} exceeds 2^53-1` };
      return 0;
    }
    return Number(v);
  }
  bytes(n: number, what: string): Buffer {
    if (!this.need(n, what)) return Buffer.alloc(0);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  bool(what: string): boolean {
    const v = this.u8(what);
    if (v > 1 && !this.failed) this.failed = { code: 'bad-value', detail: `${what} ${v} is not 0 or 1` };
    return v === 1;
  }
  str(what: string): string {
    const n = this.u8(`${what} length`);
    const b = this.bytes(n, what);
    if (this.failed) return '';
    const s = b.toString('utf8');
    if (!Buffer.from(s, 'utf8').equals(b) || /[\0-\x1f\x7f]/.test(s)) {
      this.failed = { code: 'bad-string', detail: `${what} is not clean UTF-8 text` };
      return '';
    }
    return s;
  }
  rest(): Buffer {
    const b = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return b;
  }
  done(): FrameError | null {
    if (this.failed) return this.failed;
    if (this.pos !== this.buf.length) return { code: 'bad-length', detail: `${this.buf.length - this.pos} trailing bytes` };
    return null;
  }
}

function mode(r: PayloadReader, what: string): LinkMode {
  const v = r.u8(what);
  if (v > 1 && !r.failed) r.failed = { code: 'bad-value', detail: `${what} ${v}` };
  return v === 1 ? 'detached' : 'blocking';
}

function decodePayload(type: FrameTypeName, r: PayloadReader): Frame {
  switch (type) {
    case 'HELLO': {
      const nonce = r.bytes(NONCE_LEN, 'nonce');
      const session = r.str('session');
      const nodeName = r.str('node name');
      const dataPort = r.u16('data port');
      const flags = r.u8('flags');
      if (flags > 3 && !r.failed) r.failed = { code: 'bad-value', detail: `hello flags ${flags}` };
      if (session.length === 0 && !r.failed) r.failed = { code: 'bad-value', detail: 'empty session name' };
      return { type, nonce, session, nodeName, dataPort, wait: (flags & 1) !== 0, goNow: (flags & 2) !== 0 };
    }
    case 'CHALLENGE':
      return { type, nonce: r.bytes(NONCE_LEN, 'nonce'), proof: r.bytes(PROOF_LEN, 'proof') };
    case 'AUTH':
      return { type, proof: r.bytes(PROOF_LEN, 'proof') };
    case 'WELCOME':
      return { type, nodeId: r.u32('node id'), running: r.bool('running'), dataPort: r.u16('data port'), spoolLinkId: r.u32('spool link id'), spoolToken: r.bytes(TOKEN_LEN, 'spool token') };
    case 'REFUSE':
      return { type, code: r.u16('code'), reason: r.str('reason') };
    case 'GO_NOW':
      return { type };
    case 'ATTACH':
      return { type, linkId: r.u32('link id'), token: r.bytes(TOKEN_LEN, 'token'), mode: mode(r, 'mode'), host: r.str('host'), port: r.u16('port'), parentId: r.u32('parent id') };
    case 'EXPECT_CHILD':
      return { type, linkId: r.u32('link id'), childId: r.u32('child id'), token: r.bytes(TOKEN_LEN, 'token'), mode: mode(r, 'mode'), offset: r.u64('offset') };
    case 'DROP_CHILD':
      return { type, childId: r.u32('child id') };
    case 'STATS': {
      const position = r.u64('position');
      const ringStart = r.u64('ring start');
      const fillPermille = r.u16('fill');
      if (fillPermille > 1000 && !r.failed) r.failed = { code: 'bad-value', detail: `fill ${fillPermille}‰` };
      const windowMs = r.u32('window');
      const bytesIn = r.u64('bytes in');
      const consumerBytes = r.u64('consumer bytes');
      const consumerBlockedMs = r.u32('consumer blocked');
      const pausedMs = r.u32('paused');
      const count = r.u16('child count');
      const children: ChildStats[] = [];
      for (let i = 0; i < count && !r.failed; i++) {
        children.push({ childId: r.u32('child id'), bytes: r.u64('child bytes'), blockedMs: r.u32('child blocked') });
      }
      if (ringStart > position && !r.failed) r.failed = { code: 'bad-value', detail: 'ring start past position' };
      return { type, position, ringStart, fillPermille, windowMs, bytesIn, consumerBytes, consumerBlockedMs, pausedMs, children };
    }
    case 'LINK_LOST':
      return { type, linkId: r.u32('link id'), offset: r.u64('offset') };
    case 'RESULT':
      return { type, bytes: r.u64('bytes'), digestOk: r.bool('digest ok'), exitCode: r.i32('exit code'), durationMs: r.u32('duration'), digest: r.bytes(DIGEST_LEN, 'digest') };
    case 'RELEASE':
      return { type };
    case 'ABORT':
      return { type, reason: r.str('reason') };
    case 'LINKED':
      return { type, linkId: r.u32('link id'), offset: r.u64('offset') };
    case 'LINK_HELLO':
      return { type, linkId: r.u32('link id'), nonce: r.bytes(NONCE_LEN, 'nonce') };
    case 'LINK_CHALLENGE':
      return { type, nonce: r.bytes(NONCE_LEN, 'nonce'), proof: r.bytes(PROOF_LEN, 'proof') };
    case 'LINK_AUTH':
      return { type, proof: r.bytes(PROOF_LEN, 'proof'), offset: r.u64('offset') };
    case 'DATA': {
      const offset = r.u64('offset');
      const data = r.rest();
      if (data.length === 0 && !r.failed) r.failed = { code: 'bad-length', detail: 'empty DATA' };
      return { type, offset, data };
    }
    case 'END':
      return { type, total: r.u64('total'), digest: r.bytes(DIGEST_LEN, 'digest') };
    case 'LINK_REFUSE':
      return { type, code: r.u16('code'), reason: r.str('reason') };
  }
}

/** Decode one payload whose header has been checked. DATA payloads are returned as views, not copies. */
export function decodeBody(typeCode: number, payload: Buffer): DecodeResult {
  const name = typeNames.get(typeCode);
  if (!name) return err('unknown-type', `type ${typeCode}`);
  const r = new PayloadReader(payload);
  const frame = decodePayload(name, r);
  const e = r.done();
  return e ? { ok: false, error: e } : { ok: true, frame };
}

/** Decode exactly one whole frame (header and payload). */
export function decodeFrame(buf: Buffer): DecodeResult {
  const h = decodeHeader(buf);
  if (!h.ok) return h;
  if (buf.length !== HEADER_LEN + h.header.length) return err('bad-length', `frame says ${HEADER_LEN + h.header.length} bytes, got ${buf.length}`);
  return decodeBody(h.header.type, buf.subarray(HEADER_LEN));
}

// ---- encoding ----

class PayloadWriter {
  private parts: Buffer[] = [];
  u8(v: number) { this.parts.push(Buffer.from([v & 0xff])); return this; }
  u16(v: number) { const b = Buffer.allocUnsafe(2); b.writeUInt16BE(v); this.parts.push(b); return this; }
  u32(v: number) { const b = Buffer.allocUnsafe(4); b.writeUInt32BE(v >>> 0); this.parts.push(b); return this; }
  i32(v: number) { const b = Buffer.allocUnsafe(4); b.writeInt32BE(v | 0); this.parts.push(b); return this; }
  u64(v: number) { const b = Buffer.allocUnsafe(8); b.writeBigUInt64BE(BigInt(v)); this.parts.push(b); return this; }
  bytes(b: Buffer, len?: number) {
    if (len !== undefined && b.length !== len) throw new RangeError(`field must be ${len} bytes, got ${b.length}`);
    this.parts.push(b);
    return this;
  }
  str(s: string) {
    const b = Buffer.from(s, 'utf8');
    if (b.length > MAX_STRING) throw new RangeError(`string longer than ${MAX_STRING} bytes`);
    return this.u8(b.length).bytes(b);
  }
  build(): Buffer { return Buffer.concat(this.parts); }
}

export function frameHeader(typeCode: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_LEN);
  h[0] = MAGIC;
  h[1] = VERSION;
  h[2] = typeCode;
  h[3] = 0;
  h.writeUInt32BE(length, 4);
  return h;
}

/** Header of a DATA frame carrying `length` bytes at `offset`: 16 bytes to write before the bytes themselves (no copy of the data). */
export function dataFrameHeader(offset: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_LEN + 8);
  h[0] = MAGIC;
  h[1] = VERSION;
  h[2] = FrameType.DATA;
  h[3] = 0;
  h.writeUInt32BE(8 + length, 4);
  h.writeBigUInt64BE(BigInt(offset), 8);
  return h;
}

function payloadOf(f: Frame): Buffer {
  const w = new PayloadWriter();
  const modeByte = (m: LinkMode) => (m === 'detached' ? 1 : 0);
  switch (f.type) {
    case 'HELLO':
      return w.bytes(f.nonce, NONCE_LEN).str(f.session).str(f.nodeName).u16(f.dataPort).u8((f.wait ? 1 : 0) | (f.goNow ? 2 : 0)).build();
    case 'CHALLENGE':
      return w.bytes(f.nonce, NONCE_LEN).bytes(f.proof, PROOF_LEN).build();
    case 'AUTH':
      return w.bytes(f.proof, PROOF_LEN).build();
    case 'WELCOME':
      return w.u32(f.nodeId).u8(f.running ? 1 : 0).u16(f.dataPort).u32(f.spoolLinkId).bytes(f.spoolToken, TOKEN_LEN).build();
    case 'REFUSE':
    case 'LINK_REFUSE':
      return w.u16(f.code).str(f.reason).build();
    case 'GO_NOW':
    case 'RELEASE':
      return Buffer.alloc(0);
    case 'ATTACH':
      return w.u32(f.linkId).bytes(f.token, TOKEN_LEN).u8(modeByte(f.mode)).str(f.host).u16(f.port).u32(f.parentId).build();
    case 'EXPECT_CHILD':
      return w.u32(f.linkId).u32(f.childId).bytes(f.token, TOKEN_LEN).u8(modeByte(f.mode)).u64(f.offset).build();
    case 'DROP_CHILD':
      return w.u32(f.childId).build();
    case 'STATS': {
      w.u64(f.position).u64(f.ringStart).u16(f.fillPermille).u32(f.windowMs).u64(f.bytesIn).u64(f.consumerBytes).u32(f.consumerBlockedMs).u32(f.pausedMs).u16(f.children.length);
      for (const c of f.children) w.u32(c.childId).u64(c.bytes).u32(c.blockedMs);
      return w.build();
    }
    case 'LINK_LOST':
    case 'LINKED':
      return w.u32(f.linkId).u64(f.offset).build();
    case 'RESULT':
      return w.u64(f.bytes).u8(f.digestOk ? 1 : 0).i32(f.exitCode).u32(f.durationMs).bytes(f.digest, DIGEST_LEN).build();
    case 'ABORT':
      return w.str(f.reason).build();
    case 'LINK_HELLO':
      return w.u32(f.linkId).bytes(f.nonce, NONCE_LEN).build();
    case 'LINK_CHALLENGE':
      return w.bytes(f.nonce, NONCE_LEN).bytes(f.proof, PROOF_LEN).build();
    case 'LINK_AUTH':
      return w.bytes(f.proof, PROOF_LEN).u64(f.offset).build();
    case 'DATA':
      return Buffer.concat([w.u64(f.offset).build(), f.data]);
    case 'END':
      return w.u64(f.total).bytes(f.digest, DIGEST_LEN).build();
  }
}

/** Encode a frame. Throws RangeError only on a programming error (a field of the wrong size). */
export function encodeFrame(f: Frame): Buffer {
  const payload = payloadOf(f);
  return Buffer.concat([frameHeader(FrameType[f.type], payload.length), payload]);
}

// ---- incremental reading from a byte stream ----

export type ReadEvent =
  | { kind: 'frame'; frame: Frame }
  /** a piece of a DATA frame: `data` is a view into the received chunk (no copy) at stream `offset` */
  | { kind: 'data'; offset: number; data: Buffer }
  | { kind: 'error'; error: FrameError };

/**
 * Splits a byte stream into frames. DATA payloads are handed out piece by piece as
 * views of the received chunks, so bulk bytes are never copied; other frames are
 * gathered whole (they are small). After the first error the reader yields nothing more.
 */
export class FrameReader {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** inside a DATA frame: bytes of data still to come and the stream offset of the next one */
  private dataLeft = 0;
  private dataOffset = 0;
  private broken = false;

  constructor(private readonly opts: { maxPayload?: number; allow?: (typeCode: number) => boolean } = {}) {}

  get failed(): boolean { return this.broken; }

  push(chunk: Buffer): ReadEvent[] {
    const out: ReadEvent[] = [];
    if (this.broken) return out;
    let buf = chunk;
    while (buf.length > 0 || this.pendingLen > 0) {
      if (this.dataLeft > 0) {
        if (buf.length === 0) break;
        const n = Math.min(this.dataLeft, buf.length);
        out.push({ kind: 'data', offset: this.dataOffset, data: buf.subarray(0, n) });
        this.dataLeft -= n;
        this.dataOffset += n;
        buf = buf.subarray(n);
        continue;
      }
      // gather a header (and for DATA the 8-byte offset) or a whole small frame
      if (this.pendingLen > 0) {
        this.pending.push(buf);
        this.pendingLen += buf.length;
        buf = Buffer.concat(this.pending, this.pendingLen);
        this.pending = [];
        this.pendingLen = 0;
      }
      if (buf.length < HEADER_LEN) {
        this.stash(buf);
        break;
      }
      const h = decodeHeader(buf, this.opts.maxPayload);
      if (!h.ok) return this.fail(out, h.error);
      const { type, length } = h.header;
      if (this.opts.allow && !this.opts.allow(type)) return this.fail(out, { code: 'unknown-type', detail: `type ${type} not allowed here` });
      if (type === FrameType.DATA) {
        if (length <= 8) return this.fail(out, { code: 'bad-length', detail: `DATA payload ${length}` });
        if (buf.length < HEADER_LEN + 8) {
          this.stash(buf);
          break;
        }
        const off = buf.readBigUInt64BE(HEADER_LEN);
        if (off > BigInt(Number.MAX_SAFE_INTEGER)) return this.fail(out, { code: 'offset-too-large', detail: `offset ${off}` });
        this.dataOffset = Number(off);
        this.dataLeft = length - 8;
        buf = buf.subarray(HEADER_LEN + 8);
        continue;
      }
      if (buf.length < HEADER_LEN + length) {
        this.stash(buf);
        break;
      }
      const body = decodeBody(type, buf.subarray(HEADER_LEN, HEADER_LEN + length));
      if (!body.ok) return this.fail(out, body.error);
      out.push({ kind: 'frame', frame: body.frame });
      buf = buf.subarray(HEADER_LEN + length);
    }
    return out;
  }

  private stash(buf: Buffer) {
    if (buf.length === 0) return;
    // copy: a small remainder must not pin a large socket buffer
    const copy = Buffer.from(buf);
    this.pending.push(copy);
    this.pendingLen += copy.length;
  }

  private fail(out: ReadEvent[], error: FrameError): ReadEvent[] {
    this.broken = true;
    this.pending = [];
    this.pendingLen = 0;
    out.push({ kind: 'error', error });
    return out;
  }
}
