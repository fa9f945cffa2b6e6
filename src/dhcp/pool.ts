// The free addresses of one dynamic range, with O(1) take-any, take-this-one and
// give-back, so a 65,000-address pool costs the same per DISCOVER as a 10-address one.
// Never-used addresses go out first; addresses that were leased before come back in
// the order they were freed, so a returning client's old address stays free longest.

export const ipToInt = (ip: string): number => {
  const p = ip.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
};
export const intToIp = (n: number): string => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

const NOT_FREE = 0;
const FRESH = 1;
const RECYCLED = 2;

export class AddressPool {
  readonly first: number;
  readonly last: number;
  /** per offset: NOT_FREE, FRESH or RECYCLED */
  private readonly where: Uint8Array;
  /** dense set of fresh offsets, with each one's index for O(1) removal */
  private readonly fresh: Int32Array;
  private readonly freshIndex: Int32Array;
  private freshCount = 0;
  /** FIFO of recycled offsets; stale entries (taken since) are skipped lazily */
  private recycled: number[] = [];
  private recycledHead = 0;
  private recycledCount = 0;
  private readonly excluded: Set<number>;

  /** `exclude`: addresses inside the range that are never handed out dynamically (reservations, our own) */
  constructor(first: number, last: number, exclude: Iterable<number> = []) {
    if (last < first) throw new Error(`pool range ends (${intToIp(last)}) before it starts (${intToIp(first)})`);
    this.first = first;
    this.last = last;
    const n = last - first + 1;
    this.where = new Uint8Array(n);
    this.fresh = new Int32Array(n);
    this.freshIndex = new Int32Array(n).fill(-1);
    this.excluded = new Set([...exclude].filter((a) => a >= first && a <= last));
    // Filled from the top so that takeAny (which pops the end) hands out the lowest first.
    for (let off = n - 1; off >= 0; off--) {
      if (this.excluded.has(first + off)) continue;
      this.where[off] = FRESH;
      this.freshIndex[off] = this.freshCount;
      this.fresh[this.freshCount++] = off;
    }
  }

  get size(): number {
    return this.last - this.first + 1 - this.excluded.size;
  }

  get free(): number {
    return this.freshCount + this.recycledCount;
  }

  /** inside the range and handed out dynamically */
  contains(addr: number): boolean {
    return addr >= this.first && addr <= this.last && !this.excluded.has(addr);
  }

  isFree(addr: number): boolean {
    return this.contains(addr) && this.where[addr - this.first] !== NOT_FREE;
  }

  /** Take this address out of the free set; false when it is not free. */
  take(addr: number): boolean {
    if (!this.contains(addr)) return false;
    const off = addr - this.first;
    const w = this.where[off];
    if (w === FRESH) this.removeFresh(off);
    else if (w === RECYCLED) this.recycledCount--;
    else return false;
    this.where[off] = NOT_FREE;
    return true;
  }

  /** Any free address (never-used first, then the longest-free), or undefined when exhausted. */
  takeAny(): number | undefined {
    if (this.freshCount > 0) {
      const off = this.fresh[this.freshCount - 1]!;
      this.removeFresh(off);
      this.where[off] = NOT_FREE;
      return this.first + off;
    }
    while (this.recycledHead < this.recycled.length) {
      const off = this.recycled[this.recycledHead++]!;
      if (this.where[off] === RECYCLED) {
        this.where[off] = NOT_FREE;
        this.recycledCount--;
        this.compact();
        return this.first + off;
      }
    }
    this.compact();
    return undefined;
  }

  /** Return an address that was in use. */
  release(addr: number): void {
    if (!this.contains(addr)) return;
    const off = addr - this.first;
    if (this.where[off] !== NOT_FREE) return;
    this.where[off] = RECYCLED;
    this.recycled.push(off);
    this.recycledCount++;
  }

  private removeFresh(off: number): void {
    const i = this.freshIndex[off]!;
    const lastOff = this.fresh[--this.freshCount]!;
    this.fresh[i] = lastOff;
    this.freshIndex[lastOff] = i;
    this.freshIndex[off] = -1;
  }

  /** Drop consumed and stale queue entries once they outnumber the live ones. */
  private compact(): void {
    if (this.recycledHead > 1024 && this.recycledHead * 2 > this.recycled.length) {
      const seen = new Set<number>();
      this.recycled = this.recycled.slice(this.recycledHead).filter((off) => this.where[off] === RECYCLED && !seen.has(off) && Boolean(seen.add(off)));
      this.recycledHead = 0;
      this.recycledCount = this.recycled.length;
    }
  }
}
