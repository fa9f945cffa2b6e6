// One node's share of the stream: what arrives from upstream is read into the ring's
// own memory (reserveIn/commitIn) or copied there (ingest), hashed as it lands, and
// each reader (the local consumer, each child link, the spool writer at the source)
// takes views of the ring at its own pace. Blocking readers hold the ring: a region is
// reused only when every blocking reader and every write still queued in a sink is done
// with it, and when they lag by nearly a ring the relay pauses its upstream. Detached
// readers get copies and never hold it; a reader behind the ring's start reads the gap
// from the spool (GapReader) until it is back within the ring.
import { createHash, type Hash } from 'node:crypto';
import { ByteRing } from './ring.js';

/**
 * Where a reader's bytes go. write() returns false when the sink wants no more until
 * onDrain's callback. `data` is a view of the ring: a sink that keeps it past write()
 * (a socket's or a pipe's queue, the spool's pending writes) must say how far it is
 * done with through released(), and call onRelease's callback when that moves.
 */
export interface Sink {
  write(offset: number, data: Buffer): boolean;
  onDrain(cb: () => void): void;
  end(total: number, digest: Buffer): void;
  /** the sink failed or was dropped; the relay stops feeding it */
  destroy(reason: string): void;
  /** for a sink that is done with its bytes later than write(): offset up to which the ring's views may be reused */
  released?(): number;
  /** called (often) when released() may have moved */
  onRelease?(cb: () => void): void;
  /** groups several writes into one system call */
  cork?(): void;
  uncork?(): void;
  /**
   * Write only once this many bytes are ready (or at the stream's end, or after the
   * relay's batchMs): one system call per few reads instead of one per read.
   */
  readonly batchBytes?: number;
}

/** Bytes the ring no longer holds, from the spool. Resolves null when they cannot be had. */
export interface GapReader {
  read(offset: number, max: number): Promise<Buffer | null>;
  close(): void;
}

export type ReaderMode = 'blocking' | 'detached';

/**
 * A SHA-256 computed outside the event loop: a sink fed like any reader (the bytes go
 * to `openssl dgst` on a pipe, which hashes with the CPU's SHA instructions and on
 * another core), and the digest once the sink has ended.
 */
export interface ExternalHasher {
  sink: Sink;
  digest: Promise<Buffer>;
}

export interface ReaderStats {
  key: string;
  mode: ReaderMode;
  cursor: number;
  /** totals */
  bytes: number;
  gapBytes: number;
  blockedMs: number;
}

class Reader {
  bytes = 0;
  gapBytes = 0;
  blockedMs = 0;
  winBytes = 0;
  winBlockedMs = 0;
  blockedSince = 0;
  waiting = false;
  gapBusy = false;
  gap: GapReader | null = null;
  ended = false;
  dead = false;
  /** the spool and the hasher end at the last byte; links and the consumer wait for the digest to send END */
  endWithoutDigest = false;
  /** end of the last view of the ring (not a copy) handed to the sink */
  viewsTo = 0;
  /** null while the reader waits for its child to connect: it holds its place in the ring but takes nothing */
  constructor(readonly key: string, public sink: Sink | null, public cursor: number, public mode: ReaderMode) {}
  releasedTo(): number {
    return this.sink?.released ? Math.min(this.cursor, this.sink.released()) : this.cursor;
  }
}

export interface RelayOptions {
  ringBytes: number;
  /** largest write handed to a sink at once */
  maxWrite?: number;
  /** largest single read into the ring (default 1 MiB, at most a quarter of the ring) */
  readMax?: number;
  /**
   * Pause upstream once blocking readers lag by this much (default: the ring less room
   * for reads in flight). A source that can always be read again later (a file) needs
   * no more than a few MiB ahead of its readers; reading further only touches memory.
   */
  readAhead?: number;
  gapReader?: () => GapReader;
  /** longest a sink with batchBytes waits for its batch to fill (default 2 ms) */
  batchMs?: number;
  /** where the SHA-256 is computed: in this process (default), or by an external hasher fed as a reader */
  hasher?: () => ExternalHasher;
  now?: () => number;
}

export interface RelayEvents {
  pause?: () => void;
  resume?: () => void;
  /** a reader was dropped (sink failure, gap unavailable) */
  readerFailed?: (key: string, reason: string) => void;
  /** a reader has been sent the whole stream and the END */
  readerDone?: (key: string) => void;
  /** the stream is complete here: all bytes in and the END checked */
  complete?: (r: { total: number; digestOk: boolean; digest: Buffer }) => void;
}

export class Relay {
  readonly ring: ByteRing;
  /** bytes handed to ingest() that did not fit in the ring yet, in order */
  private backlog: Buffer[] = [];
  private backlogBytes = 0;
  readonly readMax: number;
  /** blocking readers may lag this far behind the end before upstream is paused; the rest is room for reads in flight */
  private readonly pauseAt: number;
  private readonly onSinkRelease = () => {
    if (this.paused || this.backlogBytes > 0) this.pumpAll();
  };
  private readonly hash: Hash | null;
  private readonly external: ExternalHasher | null;
  private digestPromise: Promise<Buffer> | null = null;
  private allIn = false;
  private readonly readers = new Map<string, Reader>();
  private readonly maxWrite: number;
  private readonly now: () => number;
  total: number | null = null;
  digest: Buffer | null = null;
  ownDigest: Buffer | null = null;
  paused = false;
  /** bytes readers took from the spool (gaps) */
  gapBytesTotal = 0;
  private pausedSince = 0;
  private pausedMsTotal = 0;
  private winPausedMs = 0;
  private winBytesIn = 0;
  private completed = false;
  /** flushes the batches of sinks that wait for more bytes */
  private flushTimer: NodeJS.Timeout | null = null;
  private flushing = false;

  constructor(private readonly opts: RelayOptions, private readonly events: RelayEvents = {}) {
    this.ring = new ByteRing(opts.ringBytes);
    this.readMax = Math.max(1, Math.min(opts.readMax ?? 1024 * 1024, Math.floor(opts.ringBytes / 4)));
    this.pauseAt = Math.max(this.readMax, Math.min(opts.ringBytes - 2 * this.readMax, opts.readAhead ?? Infinity));
    this.maxWrite = opts.maxWrite ?? 1024 * 1024;
    this.now = opts.now ?? Date.now;
    this.external = opts.hasher ? opts.hasher() : null;
    this.hash = this.external ? null : createHash('sha256');
    if (this.external) {
      const r = new Reader('hash', this.external.sink, 0, 'blocking');
      r.endWithoutDigest = true;
      this.readers.set('hash', r);
      this.external.sink.onRelease?.(this.onSinkRelease);
    }
  }

  /** Offset of the next byte upstream must deliver (bytes still waiting to enter the ring included). */
  get end(): number {
    return this.ring.end + this.backlogBytes;
  }

  /** Bytes from upstream at `offset` (must be the current end), copied into the ring. Returns false when the caller should stop reading. */
  ingest(offset: number, data: Buffer): boolean {
    if (offset !== this.end) throw new Error(`ingest at ${offset}, relay end is ${this.end}`);
    if (this.total !== null && offset + data.length > this.total) throw new Error('bytes past the announced end');
    if (data.length === 0) return !this.paused;
    this.winBytesIn += data.length;
    if (this.backlogBytes === 0) {
      const n = this.copyIn(data);
      if (n < data.length) this.queueBacklog(data.subarray(n));
    } else {
      this.queueBacklog(data);
    }
    this.pumpAll();
    return !this.paused;
  }

  /**
   * A view of the ring to read the next upstream bytes into (a socket's read buffer),
   * up to `max`; empty when there is no room (then ingest() a buffer of your own).
   */
  reserveIn(max: number): Buffer {
    if (this.backlogBytes > 0) return this.ring.buf.subarray(0, 0);
    if (this.total !== null) max = Math.min(max, this.total - this.ring.end);
    return this.ring.reserve(Math.min(max, this.readMax), this.holdFrom());
  }

  /** `n` bytes arrived in the view reserveIn gave. Returns false when the caller should stop reading. */
  commitIn(n: number): boolean {
    if (n <= 0) return !this.paused;
    if (this.total !== null && this.ring.end + n > this.total) throw new Error('bytes past the announced end');
    const landed = this.ring.commit(n);
    this.hash?.update(landed);
    this.winBytesIn += n;
    if (this.total !== null && this.ring.end === this.total) queueMicrotask(() => this.maybeAllIn());
    this.pumpAll();
    return !this.paused;
  }

  private copyIn(data: Buffer): number {
    let done = 0;
    while (done < data.length) {
      const view = this.ring.reserve(data.length - done, this.holdFrom());
      if (view.length === 0) break;
      data.copy(view, 0, done, done + view.length);
      this.hash?.update(view);
      this.ring.commit(view.length);
      done += view.length;
    }
    if (done > 0 && this.total !== null && this.ring.end === this.total) queueMicrotask(() => this.maybeAllIn());
    return done;
  }

  private queueBacklog(data: Buffer) {
    // the caller may reuse its buffer: keep a copy
    this.backlog.push(Buffer.from(data));
    this.backlogBytes += data.length;
  }

  private drainBacklog(): number {
    let moved = 0;
    while (this.backlog.length > 0) {
      const head = this.backlog[0] as Buffer;
      const n = this.copyIn(head);
      moved += n;
      this.backlogBytes -= n;
      if (n < head.length) {
        this.backlog[0] = head.subarray(n);
        break;
      }
      this.backlog.shift();
    }
    return moved;
  }

  /** The stream's end as announced by upstream (or known at the source). */
  finish(total: number, digest: Buffer): void {
    if (this.total !== null) return;
    this.total = total;
    this.digest = digest;
    this.maybeAllIn();
    this.pumpAll();
  }

  /** The source knows the total when its input ends; the digest is its own, once computed. */
  async finishAsSource(): Promise<{ total: number; digest: Buffer }> {
    const total = this.ring.end;
    this.total = total;
    this.maybeAllIn();
    this.pumpAll();
    const digest = await this.ownDigestPromise();
    this.digest = digest;
    this.pumpAll();
    return { total, digest };
  }

  private ownDigestPromise(): Promise<Buffer> {
    if (!this.digestPromise) {
      this.digestPromise = this.external ? this.external.digest : Promise.resolve((this.hash as Hash).digest());
    }
    return this.digestPromise;
  }

  private maybeAllIn() {
    if (this.allIn || this.total === null || this.ring.end !== this.total || this.backlogBytes > 0) return;
    this.allIn = true;
    this.ownDigestPromise().then(
      (own) => {
        this.ownDigest = own;
        this.completed = true;
        const expected = this.digest ?? own;
        this.events.complete?.({ total: this.total as number, digestOk: own.equals(expected), digest: own });
        this.pumpAll();
      },
      (e: unknown) => {
        this.completed = true;
        this.ownDigest = Buffer.alloc(0);
        this.events.readerFailed?.('hash', `hashing failed: ${e instanceof Error ? e.message : String(e)}`);
        this.events.complete?.({ total: this.total as number, digestOk: false, digest: Buffer.alloc(32) });
      },
    );
  }

  get isComplete(): boolean {
    return this.completed;
  }

  /** `endWithoutDigest`: the reader ends at the last byte (the spool), not when the digest is known. */
  addReader(key: string, sink: Sink, cursor: number, mode: ReaderMode, endWithoutDigest = false): void {
    this.removeReader(key, 'replaced');
    const r = new Reader(key, sink, cursor, mode);
    r.endWithoutDigest = endWithoutDigest;
    this.readers.set(key, r);
    sink.onRelease?.(this.onSinkRelease);
    this.pumpAll();
  }

  /** A child not yet connected keeps its place (a blocking one holds the ring from `cursor`); attachSink starts it. */
  addPendingReader(key: string, cursor: number, mode: ReaderMode): void {
    this.removeReader(key, 'replaced');
    this.readers.set(key, new Reader(key, null, cursor, mode));
    // it may hold the ring from now on: the pause state must know
    this.pumpAll();
  }

  /** Start a pending reader at the offset its child asked for. False when no such reader waits (dropped meanwhile). */
  attachSink(key: string, sink: Sink, cursor: number): boolean {
    const r = this.readers.get(key);
    if (!r || r.sink) return false;
    r.sink = sink;
    r.cursor = cursor;
    sink.onRelease?.(this.onSinkRelease);
    this.pumpAll();
    return true;
  }

  hasReader(key: string): boolean {
    return this.readers.has(key);
  }

  removeReader(key: string, reason: string): void {
    const r = this.readers.get(key);
    if (!r) return;
    this.readers.delete(key);
    r.dead = true;
    r.gap?.close();
    r.sink?.destroy(reason);
    this.pumpAll();
  }

  setMode(key: string, mode: ReaderMode): void {
    const r = this.readers.get(key);
    if (r) r.mode = mode;
    this.pumpAll();
  }

  readerStats(): ReaderStats[] {
    return [...this.readers.values()].map((r) => ({ key: r.key, mode: r.mode, cursor: r.cursor, bytes: r.bytes, gapBytes: r.gapBytes, blockedMs: r.blockedMs }));
  }

  /** Per-reader bytes and blocked time since the last call, plus the relay's own. */
  takeWindow(): { bytesIn: number; pausedMs: number; readers: Map<string, { bytes: number; blockedMs: number }> } {
    const t = this.now();
    const readers = new Map<string, { bytes: number; blockedMs: number }>();
    for (const r of this.readers.values()) {
      if (r.waiting) {
        r.winBlockedMs += t - r.blockedSince;
        r.blockedMs += t - r.blockedSince;
        r.blockedSince = t;
      }
      readers.set(r.key, { bytes: r.winBytes, blockedMs: r.winBlockedMs });
      r.winBytes = 0;
      r.winBlockedMs = 0;
    }
    if (this.paused) {
      this.winPausedMs += t - this.pausedSince;
      this.pausedMsTotal += t - this.pausedSince;
      this.pausedSince = t;
    }
    const w = { bytesIn: this.winBytesIn, pausedMs: this.winPausedMs, readers };
    this.winBytesIn = 0;
    this.winPausedMs = 0;
    return w;
  }

  /** Unconsumed bytes held for blocking readers, as a share of what they may hold before upstream is paused. */
  fill(): number {
    return Math.min(1, (this.end - this.holdFrom()) / Math.max(1, this.pauseAt));
  }

  /** Lowest offset whose bytes someone still needs: blocking readers, and any sink with views of the ring still queued. */
  private holdFrom(): number {
    let min = this.ring.end;
    for (const r of this.readers.values()) {
      const rel = r.releasedTo();
      if (r.mode === 'blocking') {
        // an ended reader still holds what its sink has not released (the spool's pending writes)
        if (!(r.ended && rel >= r.cursor)) min = Math.min(min, rel);
      } else if (rel < r.viewsTo) {
        min = Math.min(min, rel);
      }
    }
    return min;
  }

  pumpAll(): void {
    for (;;) {
      for (const r of this.readers.values()) this.pump(r);
      if (this.backlogBytes === 0 || this.drainBacklog() === 0) break;
    }
    const over = this.backlogBytes > 0 || this.ring.end - this.holdFrom() > this.pauseAt;
    if (over && !this.paused) {
      this.paused = true;
      this.pausedSince = this.now();
      this.events.pause?.();
    } else if (!over && this.paused) {
      this.paused = false;
      const d = this.now() - this.pausedSince;
      this.winPausedMs += d;
      this.pausedMsTotal += d;
      this.events.resume?.();
    }
  }

  private pump(r: Reader): void {
    const sink = r.sink;
    if (!sink || r.waiting || r.dead || r.gapBusy || r.ended) return;
    if (sink.batchBytes && !this.flushing && r.cursor >= this.ring.start) {
      const ready = this.ring.end - r.cursor;
      if (ready > 0 && ready < sink.batchBytes && this.total !== this.ring.end) {
        this.armFlush();
        return;
      }
    }
    sink.cork?.();
    try {
      while (r.cursor < this.ring.end) {
        if (r.cursor < this.ring.start) {
          this.readGap(r);
          return;
        }
        if (r.gap) {
          r.gap.close();
          r.gap = null;
        }
        const slice = this.ring.slice(r.cursor, this.maxWrite) as Buffer;
        // a detached reader must not hold the ring: it gets a copy
        const view = r.mode === 'detached' ? Buffer.from(slice) : slice;
        const at = r.cursor;
        r.cursor += view.length;
        if (view === slice) r.viewsTo = r.cursor;
        r.bytes += view.length;
        r.winBytes += view.length;
        if (!sink.write(at, view)) {
          this.wait(r, sink);
          return;
        }
      }
      if (this.total !== null && r.cursor === this.total && (r.endWithoutDigest || this.digest)) {
        r.ended = true;
        sink.end(this.total, this.digest ?? Buffer.alloc(32));
        this.events.readerDone?.(r.key);
      }
    } finally {
      sink.uncork?.();
    }
  }

  private armFlush() {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.flushing = true;
      try {
        this.pumpAll();
      } finally {
        this.flushing = false;
      }
    }, this.opts.batchMs ?? 2);
  }

  private wait(r: Reader, sink: Sink) {
    r.waiting = true;
    r.blockedSince = this.now();
    sink.onDrain(() => {
      if (r.dead) return;
      const d = this.now() - r.blockedSince;
      r.blockedMs += d;
      r.winBlockedMs += d;
      r.waiting = false;
      this.pumpAll();
    });
  }

  private readGap(r: Reader) {
    if (!this.opts.gapReader) {
      this.failReader(r, `offset ${r.cursor} is no longer held (ring starts at ${this.ring.start}) and there is no spool`);
      return;
    }
    r.gap ??= this.opts.gapReader();
    r.gapBusy = true;
    const max = Math.min(this.maxWrite, this.ring.start - r.cursor);
    r.gap.read(r.cursor, max).then(
      (buf) => this.gapArrived(r, buf),
      (e: unknown) => this.gapArrived(r, null, String(e)),
    );
  }

  private gapArrived(r: Reader, buf: Buffer | null, why?: string) {
    r.gapBusy = false;
    if (r.dead) return;
    if (!buf || buf.length === 0) {
      this.failReader(r, `spool could not supply offset ${r.cursor}${why ? `: ${why}` : ''}`);
      return;
    }
    const at = r.cursor;
    r.cursor += buf.length;
    r.bytes += buf.length;
    r.gapBytes += buf.length;
    this.gapBytesTotal += buf.length;
    r.winBytes += buf.length;
    const sink = r.sink as Sink;
    if (!sink.write(at, buf)) this.wait(r, sink);
    this.pumpAll();
  }

  private failReader(r: Reader, reason: string) {
    if (r.dead) return;
    this.readers.delete(r.key);
    r.dead = true;
    r.gap?.close();
    r.sink?.destroy(reason);
    this.events.readerFailed?.(r.key, reason);
    this.pumpAll();
  }

  close(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    for (const r of [...this.readers.values()]) {
      r.dead = true;
      r.gap?.close();
      r.sink?.destroy('relay closed');
    }
    this.readers.clear();
  }

  get pausedMs(): number {
    return this.pausedMsTotal + (this.paused ? this.now() - this.pausedSince : 0);
  }
}
