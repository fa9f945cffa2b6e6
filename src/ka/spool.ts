// The coordinator's copy of the whole stream on disk, kept for the life of the
// session: it is a blocking reader of the source's relay (so nothing leaves the ring
// before it is written), and the gap reader behind every ring.
import { open, rm, type FileHandle } from 'node:fs/promises';
import type { GapReader, Sink } from './relay.js';

export class Spool implements Sink {
  private written = 0;
  private queued: { offset: number; data: Buffer }[] = [];
  private queuedBytes = 0;
  private writing = false;
  private drainCbs: (() => void)[] = [];
  private failed: string | null = null;
  private closed = false;
  private ended = false;
  private endWaiters: (() => void)[] = [];
  /** called after each completed write: the relay re-checks what it may drop and whether to resume its source */
  onWritten: (() => void) | null = null;

  private constructor(readonly path: string, private readonly fh: FileHandle, private readonly limit: number) {}

  static async create(path: string, limit = 16 * 1024 * 1024): Promise<Spool> {
    return new Spool(path, await open(path, 'w+', 0o600), limit);
  }

  /** Bytes durably handed to the file so far. */
  get size(): number {
    return this.written;
  }

  get error(): string | null {
    return this.failed;
  }

  write(offset: number, data: Buffer): boolean {
    this.queued.push({ offset, data });
    this.queuedBytes += data.length;
    this.flush();
    return this.queuedBytes < this.limit;
  }

  private flush() {
    if (this.writing || this.closed) return;
    if (this.queued.length === 0) {
      if (this.ended) for (const w of this.endWaiters.splice(0)) w();
      return;
    }
    // the relay hands the spool consecutive ranges: write them all in one writev
    const batch = this.queued.splice(0, 1024);
    const first = batch[0] as { offset: number; data: Buffer };
    const datas = batch.map((b) => b.data);
    const len = datas.reduce((n, d) => n + d.length, 0);
    this.writing = true;
    this.fh.writev(datas, first.offset).then(
      ({ bytesWritten }) => {
        this.writing = false;
        if (bytesWritten !== len) {
          this.failed = `short write at ${first.offset}`;
          return;
        }
        this.written = first.offset + len;
        this.queuedBytes -= len;
        if (this.queuedBytes < this.limit) for (const cb of this.drainCbs.splice(0)) cb();
        this.onWritten?.();
        this.flush();
      },
      (e: unknown) => {
        this.writing = false;
        this.failed = String(e);
      },
    );
  }

  onDrain(cb: () => void): void {
    if (this.queuedBytes < this.limit) queueMicrotask(cb);
    else this.drainCbs.push(cb);
  }

  released(): number {
    return this.written;
  }

  end(): void {
    this.ended = true;
    this.flush();
  }

  /** Resolves once every byte handed over is in the file. */
  whenWritten(): Promise<void> {
    if (this.ended && !this.writing && this.queued.length === 0) return Promise.resolve();
    return new Promise((r) => this.endWaiters.push(r));
  }

  destroy(reason: string): void {
    this.failed ??= reason;
  }

  /** A reader of what is already written. */
  gapReader(): GapReader {
    return {
      read: async (offset, max) => {
        const n = Math.min(max, this.written - offset);
        if (n <= 0 || this.closed) return null;
        const buf = Buffer.allocUnsafe(n);
        const { bytesRead } = await this.fh.read(buf, 0, n, offset);
        return bytesRead > 0 ? buf.subarray(0, bytesRead) : null;
      },
      close: () => {},
    };
  }

  async close(remove: boolean): Promise<void> {
    this.closed = true;
    await this.fh.close().catch(() => {});
    if (remove) await rm(this.path, { force: true });
  }
}

/**
 * When the source is a file, the file itself is the spool: every byte the source
 * relay has read can be read again from it, so nothing is copied. (The file must not
 * change during the session; if it did, the nodes' SHA-256 check would say so.)
 */
export class FileBackedSpool {
  private constructor(readonly path: string, private readonly fh: FileHandle, private readonly readEnd: () => number) {}

  static async open(path: string, readEnd: () => number): Promise<FileBackedSpool> {
    return new FileBackedSpool(path, await open(path, 'r'), readEnd);
  }

  get size(): number {
    return this.readEnd();
  }

  gapReader(): GapReader {
    return {
      read: async (offset, max) => {
        const n = Math.min(max, this.readEnd() - offset);
        if (n <= 0) return null;
        const buf = Buffer.allocUnsafe(n);
        const { bytesRead } = await this.fh.read(buf, 0, n, offset);
        return bytesRead > 0 ? buf.subarray(0, bytesRead) : null;
      },
      close: () => {},
    };
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}
