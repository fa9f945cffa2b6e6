// The bytes a relay holds: the received chunks themselves (views of socket buffers,
// never copied), each with its stream offset, from `start` to `end`. Old chunks are
// dropped once the ring holds more than its capacity and every blocking reader has
// passed them; what is dropped can only come back from the spool.

export class ChunkRing {
  private chunks: Buffer[] = [];
  private offsets: number[] = [];
  private head = 0;
  start = 0;
  end = 0;

  constructor(readonly capacity: number) {
    if (!(capacity > 0)) throw new RangeError('ring capacity must be positive');
  }

  /** Begin at `offset` (a node that joins late or resumes holds nothing before it). Only while empty. */
  resetTo(offset: number): void {
    if (this.end !== this.start) throw new Error('resetTo on a ring that holds data');
    this.start = this.end = offset;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.offsets.push(this.end);
    this.end += chunk.length;
  }

  get held(): number {
    return this.end - this.start;
  }

  /** Up to `max` bytes from `offset` as one view (within one chunk); null when `offset` is not held. */
  slice(offset: number, max: number): Buffer | null {
    if (offset < this.start || offset >= this.end) return null;
    const i = this.find(offset);
    const chunk = this.chunks[i] as Buffer;
    const from = offset - (this.offsets[i] as number);
    return chunk.subarray(from, Math.min(chunk.length, from + max));
  }

  /** Drop whole chunks below `releasedTo` while more than capacity is held. */
  trim(releasedTo: number): void {
    while (this.head < this.chunks.length) {
      const chunk = this.chunks[this.head] as Buffer;
      const chunkEnd = (this.offsets[this.head] as number) + chunk.length;
      if (chunkEnd > releasedTo || this.end - chunkEnd < this.capacity) break;
      this.head++;
      this.start = chunkEnd;
    }
    if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.offsets = this.offsets.slice(this.head);
      this.head = 0;
    }
  }

  private find(offset: number): number {
    let lo = this.head;
    let hi = this.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.offsets[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
