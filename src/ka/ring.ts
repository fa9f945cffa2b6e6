// The bytes a relay holds: one buffer allocated once, written in a circle. Stream
// offset o lives at o mod capacity. Socket and file reads land in it directly
// (reserve, then commit what arrived); readers take views of it, never copies. A
// region is written again only when the relay says nobody needs it any more
// (`holdFrom`: the lowest offset a reader or a sink's queued write still needs), so
// the steady state allocates nothing.

export class ByteRing {
  readonly buf: Buffer;
  /** first offset this ring was started at (a node that joins late holds nothing before it) */
  private base = 0;
  end = 0;
  /** end of the region last handed out for writing: its memory may be overwritten at any moment */
  private reservedTo = 0;

  constructor(readonly capacity: number) {
    if (!(capacity > 0) || !Number.isInteger(capacity)) throw new RangeError('ring capacity must be a positive integer');
    this.buf = Buffer.allocUnsafe(capacity);
  }

  /** Begin at `offset`. Only while empty. */
  resetTo(offset: number): void {
    if (this.end !== this.base) throw new Error('resetTo on a ring that holds data');
    this.base = this.end = this.reservedTo = offset;
  }

  /** Oldest offset whose bytes are still intact. */
  get start(): number {
    return Math.max(this.base, this.reservedTo - this.capacity);
  }

  get held(): number {
    return this.end - this.start;
  }

  /** Bytes that may be written at the end without touching anything from `holdFrom` on. */
  space(holdFrom: number): number {
    return Math.max(0, Math.max(holdFrom, this.start) + this.capacity - this.end);
  }

  /** Up to `max` bytes from `offset` as one view (it stops at the wrap); null when `offset` is not held. */
  slice(offset: number, max: number): Buffer | null {
    if (offset < this.start || offset >= this.end) return null;
    const pos = offset % this.capacity;
    const n = Math.min(max, this.end - offset, this.capacity - pos);
    return this.buf.subarray(pos, pos + n);
  }

  /**
   * A writable view at the end, up to `max` bytes, stopping at the wrap and before
   * `holdFrom`'s bytes; empty when there is no room. It stays reserved (its old
   * contents count as gone) until the next reserve.
   */
  reserve(max: number, holdFrom: number): Buffer {
    const pos = this.end % this.capacity;
    const n = Math.max(0, Math.min(max, this.capacity - pos, this.space(holdFrom)));
    this.reservedTo = Math.max(this.reservedTo, this.end + n);
    return this.buf.subarray(pos, pos + n);
  }

  /** `n` bytes of the last reservation now hold the stream's next bytes. */
  commit(n: number): void {
    this.end += n;
    if (this.end > this.reservedTo) throw new Error('commit past the reserved region');
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
