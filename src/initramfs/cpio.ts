// The "newc" cpio format that initramfs images are made of (070701/070702), read as a
// stream of chunks: entry names, modes and sizes, and the data of the few entries a
// caller asks to keep. Several archives may follow each other (an initramfs is often an
// uncompressed early archive, then a compressed main one); zero padding between them is
// skipped. Pure: no I/O, never throws on bad input, it reports the first fault instead.

export interface CpioEntry {
  name: string;
  /** st_mode: type and permission bits */
  mode: number;
  size: number;
  /** the entry's bytes, when the caller's keep() asked for them */
  data?: Buffer;
}

const HEADER_LEN = 110;
const MAGIC_NEWC = '070701';
const MAGIC_CRC = '070702';
const TRAILER = 'TRAILER!!!';

/** Names longer than this are not initramfs content but garbage: stop there. */
const MAX_NAME = 4096;

const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;

const pad4 = (n: number) => (4 - (n % 4)) % 4;

type Phase =
  | { at: 'between' }
  | { at: 'header' }
  | { at: 'name'; mode: number; size: number; nameLen: number }
  | { at: 'data'; entry: CpioEntry; left: number; keep: Buffer[] | undefined }
  | { at: 'skip'; left: number; then: Phase };

export class CpioReader {
  /** entries seen so far, in order */
  readonly entries: CpioEntry[] = [];
  /** archives that ended with their trailer */
  archives = 0;
  /** why reading stopped early, if it did */
  fault: string | undefined;
  /** where bytes that are no cpio archive begin after a whole one (a compressed archive, in an initramfs) */
  otherDataAt: number | undefined;
  private phase: Phase = { at: 'between' };
  private pending: Buffer = Buffer.alloc(0);
  private offset = 0;

  /** keep(name, size): whether to collect an entry's data */
  constructor(private readonly keep: (name: string, size: number, mode: number) => boolean = () => false) {}

  /** Whether the stream so far ended cleanly: at least one archive, nothing half read. */
  get complete(): boolean {
    return this.fault === undefined && this.archives > 0 && this.phase.at === 'between' && (this.pending.length === 0 || this.otherDataAt !== undefined);
  }

  push(chunk: Buffer): void {
    if (this.fault !== undefined || this.otherDataAt !== undefined) return;
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    while (buf.length > 0 && this.fault === undefined && this.otherDataAt === undefined) {
      const used = this.step(buf);
      if (used < 0) {
        this.pending = Buffer.from(buf);
        return;
      }
      this.offset += used;
      buf = buf.subarray(used);
    }
  }

  /** Bytes of `buf` consumed, or -1 when more are needed first. */
  private step(buf: Buffer): number {
    const p = this.phase;
    switch (p.at) {
      case 'between': {
        let i = 0;
        while (i < buf.length && buf[i] === 0) i++;
        if (i > 0) return i;
        if (buf.length < 6) return -1;
        const magic = buf.toString('latin1', 0, 6);
        if (this.archives > 0 && magic !== MAGIC_NEWC && magic !== MAGIC_CRC) {
          this.otherDataAt = this.offset;
          return 0;
        }
        this.phase = { at: 'header' };
        return 0;
      }
      case 'header': {
        if (buf.length < 6) return -1;
        const magic = buf.toString('latin1', 0, 6);
        if (magic !== MAGIC_NEWC && magic !== MAGIC_CRC) return this.fail(`no cpio header at byte ${this.offset} (magic ${JSON.stringify(magic)})`);
        if (buf.length < HEADER_LEN) return -1;
        const field = (i: number) => {
          const text = buf.toString('latin1', 6 + i * 8, 14 + i * 8);
          return /^[0-9a-fA-F]{8}$/.test(text) ? parseInt(text, 16) : NaN;
        };
        const mode = field(1);
        const size = field(6);
        const nameLen = field(11);
        if (![mode, size, nameLen].every(Number.isFinite)) return this.fail(`bad cpio header at byte ${this.offset}`);
        if (nameLen < 1 || nameLen > MAX_NAME) return this.fail(`cpio name of ${nameLen} bytes at byte ${this.offset}`);
        this.phase = { at: 'name', mode, size, nameLen };
        return HEADER_LEN;
      }
      case 'name': {
        const want = p.nameLen + pad4(HEADER_LEN + p.nameLen);
        if (buf.length < want) return -1;
        const name = buf.toString('utf8', 0, p.nameLen - 1);
        if (name === TRAILER) {
          this.archives++;
          this.phase = { at: 'skip', left: p.size + pad4(p.size), then: { at: 'between' } };
          return want;
        }
        const entry: CpioEntry = { name: name.replace(/^\.?\//, ''), mode: p.mode, size: p.size };
        this.entries.push(entry);
        const keep = p.size > 0 && this.keep(entry.name, p.size, p.mode) ? [] : undefined;
        this.phase = { at: 'data', entry, left: p.size, keep };
        return want;
      }
      case 'data': {
        if (p.left === 0) {
          if (p.keep) p.entry.data = Buffer.concat(p.keep);
          this.phase = { at: 'skip', left: pad4(p.entry.size), then: { at: 'header' } };
          return 0;
        }
        const n = Math.min(p.left, buf.length);
        if (p.keep) p.keep.push(Buffer.from(buf.subarray(0, n)));
        p.left -= n;
        return n;
      }
      case 'skip': {
        if (p.left === 0) {
          this.phase = p.then;
          return 0;
        }
        const n = Math.min(p.left, buf.length);
        p.left -= n;
        return n;
      }
    }
  }

  private fail(why: string): number {
    this.fault = why;
    return 0;
  }
}

export const isRegular = (e: CpioEntry) => (e.mode & S_IFMT) === S_IFREG;
