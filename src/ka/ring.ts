// The bytes a relay holds: one buffer allocated once, reused in a circle. Socket and
// file reads land in it directly (reserve, then commit what arrived); readers take
// views of it, never copies. A region is written again only when the relay says nobody
// needs it any more (`holdFrom`: the lowest offset a reader or a sink's queued write
// still needs), so the steady state allocates nothing.
//
// The buffer is used from its start and only as far as needed: new bytes overwrite
// the oldest ones once the ring has used `minLap` bytes of memory and those bytes are
// free; it reaches into memory it never used only when the oldest bytes are still
// held. Readers that keep up therefore cycle through a few MiB and the rest of the
// buffer is never touched: on this project's VMs the first touch of a page costs about
// 20 µs (all of a 64 MiB ring: 0.3 CPU s per node and per session), and a small working
// set stays in the caches. The price: less history when nobody lags (a re-attached
// child further back than that reads the gap from the spool).
//
// What is held is a list of runs, oldest first: each run is consecutive stream bytes
// at consecutive positions of the buffer; new bytes take the place of the oldest run's
// first bytes, or of memory never used.

const MIN_LAP = 4 * 1024 * 1024;

interface Run {
  /** stream offset of the run's first byte */
  off: number;
  /** its position in the buffer */
  pos: number;
  len: number;
}

export class ByteRing {
  readonly buf: Buffer;
  /** first offset this ring was started at (a node that joins late holds nothing before it) */
  private base = 0;
  end = 0;
  private readonly runs: Run[] = [];
  /** memory from here on has never been used */
  private frontier = 0;
  /** memory taken by the last reserve and not yet committed: the next bytes go there */
  private resvPos = 0;
  private resvLen = 0;
  private readonly minLap: number;

  constructor(readonly capacity: number, minLap = MIN_LAP) {
    if (!(capacity > 0) || !Number.isInteger(capacity)) throw new RangeError('ring capacity must be a positive integer');
    this.buf = Buffer.allocUnsafe(capacity);
    this.minLap = Math.min(capacity, Math.max(1, Math.floor(minLap)));
  }

  /** Begin at `offset`. Only while empty. */
  resetTo(offset: number): void {
    if (this.end !== this.base) throw new Error('resetTo on a ring that holds data');
    this.base = this.end = offset;
  }

  /** Bytes of the buffer used so far (the rest has never been written). */
  get inUse(): number {
    return this.frontier;
  }

  /** Oldest offset whose bytes are still intact. */
  get start(): number {
    return this.runs.length > 0 ? (this.runs[0] as Run).off : this.end;
  }

  get held(): number {
    return this.end - this.start;
  }

  /** Bytes that may be written at the end without touching anything from `holdFrom` on (with the whole buffer in use). */
  space(holdFrom: number): number {
    return Math.max(0, Math.max(holdFrom, this.start) + this.capacity - this.end);
  }

  /** Up to `max` bytes from `offset` as one view (it stops at the end of a run); null when `offset` is not held. */
  slice(offset: number, max: number): Buffer | null {
    if (offset < this.start || offset >= this.end) return null;
    // binary search for the last run starting at or before offset
    let lo = 0;
    let hi = this.runs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.runs[mid] as Run).off <= offset) lo = mid;
      else hi = mid - 1;
    }
    const r = this.runs[lo] as Run;
    const pos = r.pos + (offset - r.off);
    return this.buf.subarray(pos, pos + Math.min(max, r.off + r.len - offset));
  }

  /**
   * A writable view at the end, up to `max` bytes, never over `holdFrom`'s bytes or
   * anything newer; empty when there is no room. Its memory's old contents count as
   * gone from now on.
   */
  reserve(max: number, holdFrom: number): Buffer {
    if (this.resvLen === 0 && max > 0) this.take(max, Math.max(holdFrom, this.start));
    const n = Math.min(max, this.resvLen);
    return this.buf.subarray(this.resvPos, this.resvPos + n);
  }

  /** Finds memory for the next bytes: the oldest run's free first bytes, or memory never used. */
  private take(max: number, h: number) {
    const oldest = this.runs[0];
    const free = oldest ? Math.max(0, Math.min(oldest.len, h - oldest.off)) : 0;
    // short of room because bytes there are still held (not because the run ends): use more memory
    const held = !oldest || (free < max && free < oldest.len);
    const fresh = this.capacity - this.frontier;
    if (fresh > 0 && (this.frontier < this.minLap || held)) {
      // in steps of minLap: a run per small step would cut readers' views short
      const n = Math.min(fresh, Math.max(max, this.frontier < this.minLap ? this.minLap - this.frontier : this.minLap));
      this.resvPos = this.frontier;
      this.resvLen = n;
      this.frontier += n;
      return;
    }
    if (!oldest || free === 0) return;
    // no more than asked: what is not taken is still history
    const n = Math.min(max, free);
    this.resvPos = oldest.pos;
    this.resvLen = n;
    oldest.off += n;
    oldest.pos += n;
    oldest.len -= n;
    if (oldest.len === 0) this.runs.shift();
  }

  /** `n` bytes of the last reservation now hold the stream's next bytes; returns them. */
  commit(n: number): Buffer {
    if (n > this.resvLen) throw new Error('commit past the reserved region');
    if (n === 0) return this.buf.subarray(0, 0);
    const last = this.runs[this.runs.length - 1];
    if (last && last.pos + last.len === this.resvPos) last.len += n;
    else this.runs.push({ off: this.end, pos: this.resvPos, len: n });
    const view = this.buf.subarray(this.resvPos, this.resvPos + n);
    this.end += n;
    this.resvPos += n;
    this.resvLen -= n;
    return view;
  }

  /** Copy as much of `data` as fits (respecting `holdFrom`) to the end; returns the bytes taken. */
  write(data: Buffer, holdFrom: number): number {
    let done = 0;
    while (done < data.length) {
      const view = this.reserve(data.length - done, holdFrom);
      if (view.length === 0) break;
      data.copy(view, 0, done, done + view.length);
      this.commit(view.length);
      done += view.length;
    }
    return done;
  }
}
