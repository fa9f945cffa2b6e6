// Reading KA frames from a socket straight into the relay's ring: the socket's
// `onread` asks this reader for the buffer of each read. Frame headers (and small
// frames) are read into a scratch buffer, exactly as many bytes as the header or the
// frame still needs, so a read never crosses into the next frame; DATA payloads are
// read into the view the data target (the relay) reserves, so nothing is allocated
// per read. Without a target (the handshake, a spool link) DATA payloads go to fresh
// buffers, as 'data' events. Validation is FrameReader's: the same header checks,
// the same errors, nothing more after the first.
import { decodeBody, decodeHeader, FrameType, HEADER_LEN, MAX_CONTROL_PAYLOAD, type FrameError, type ReadEvent } from './frames.js';

export interface DataTarget {
  /** a DATA frame's header: bytes at `offset` follow. False refuses them (the reader stops). */
  begin(offset: number, length: number): boolean;
  /** where to read up to `max` payload bytes; an empty view when there is no room */
  reserve(max: number): Buffer;
  /** `n` bytes arrived in the last reserved view; false: stop reading for now */
  commit(n: number): boolean;
  /** `data` arrived in a buffer of its own (there was no room); false: stop reading for now */
  spill(offset: number, data: Buffer): boolean;
}

/** Largest payload read at once when it does not go into a ring. */
const SPILL_READ = 256 * 1024;

export class DirectFrameReader {
  private readonly scratch = Buffer.allocUnsafe(HEADER_LEN + MAX_CONTROL_PAYLOAD);
  /** bytes of the current header or small frame in scratch, and how many it needs */
  private have = 0;
  private need = HEADER_LEN;
  private frameType = -1;
  private frameLength = 0;
  /** inside a DATA payload: bytes still to come and the offset of the next one */
  private dataLeft = 0;
  private dataOffset = 0;
  /** what the last buffer handed out was */
  private into: 'scratch' | 'target' | 'spill' = 'scratch';
  private broken = false;
  target: DataTarget | null = null;

  constructor(
    private readonly emit: (ev: ReadEvent) => void,
    private readonly opts: { maxPayload?: number; allow?: (typeCode: number) => boolean } = {},
  ) {}

  get failed(): boolean {
    return this.broken;
  }

  /** The buffer for the socket's next read. */
  nextBuffer(): Buffer {
    if (this.dataLeft > 0) {
      if (this.target) {
        const view = this.target.reserve(this.dataLeft);
        if (view.length > 0) {
          this.into = 'target';
          return view;
        }
      }
      this.into = 'spill';
      return Buffer.allocUnsafe(Math.min(this.dataLeft, SPILL_READ));
    }
    this.into = 'scratch';
    return this.scratch.subarray(this.have, this.need);
  }

  /** `n` bytes were read into `buf` (the last nextBuffer()). Returns false to pause the socket. */
  onRead(n: number, buf: Buffer): boolean {
    if (this.broken || n <= 0) return true;
    if (this.into === 'target' || this.into === 'spill') {
      const at = this.dataOffset;
      this.dataLeft -= n;
      this.dataOffset += n;
      if (this.into === 'target') return (this.target as DataTarget).commit(n);
      const data = buf.subarray(0, n);
      if (this.target) return this.target.spill(at, data);
      this.emit({ kind: 'data', offset: at, data });
      return true;
    }
    this.have += n;
    if (this.have < this.need) return true;
    if (this.frameType < 0) return this.headerDone();
    return this.frameDone();
  }

  private headerDone(): boolean {
    const h = decodeHeader(this.scratch.subarray(0, HEADER_LEN), this.opts.maxPayload);
    if (!h.ok) return this.fail(h.error);
    const { type, length } = h.header;
    if (this.opts.allow && !this.opts.allow(type)) return this.fail({ code: 'unknown-type', detail: `type ${type} not allowed here` });
    if (type === FrameType.DATA && length <= 8) return this.fail({ code: 'bad-length', detail: `DATA payload ${length}` });
    this.frameType = type;
    this.frameLength = length;
    // for DATA, only the 8-byte offset goes to scratch
    this.need = HEADER_LEN + (type === FrameType.DATA ? 8 : length);
    if (this.have >= this.need) return this.frameDone();
    return true;
  }

  private frameDone(): boolean {
    const type = this.frameType;
    const length = this.frameLength;
    this.have = 0;
    this.need = HEADER_LEN;
    this.frameType = -1;
    if (type === FrameType.DATA) {
      const off = this.scratch.readBigUInt64BE(HEADER_LEN);
      if (off > BigInt(Number.MAX_SAFE_INTEGER)) return this.fail({ code: 'offset-too-large', detail: `offset ${off}` });
      this.dataOffset = Number(off);
      this.dataLeft = length - 8;
      if (this.target && !this.target.begin(this.dataOffset, this.dataLeft)) {
        this.broken = true;
        return false;
      }
      return true;
    }
    // a copy: the frame's fields are views of it, and scratch is read into again
    const body = decodeBody(type, Buffer.from(this.scratch.subarray(HEADER_LEN, HEADER_LEN + length)));
    if (!body.ok) return this.fail(body.error);
    this.emit({ kind: 'frame', frame: body.frame });
    return true;
  }

  private fail(error: FrameError): boolean {
    this.broken = true;
    this.emit({ kind: 'error', error });
    return false;
  }
}
