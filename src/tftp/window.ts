// The sender's side of one read transfer as plain arithmetic, no sockets, no clock.
//
// Blocks are counted from 1 without limit; on the wire a block number is the count
// modulo 65536, so block 65536 goes out as 0 (the rollover tftp-hpa, iPXE, curl and
// atftp expect). The window is [base, base + windowsize - 1]; `next` is the first block
// not yet sent in it.
//
// ACK rules:
// - an ACK of the window's last sent block, or of any block inside it (RFC 7440: the
//   client saw a gap), moves base past it; sending resumes right after it;
// - an ACK of base - 1 (the block before the window) is a duplicate: it changes
//   nothing and sends nothing. Answering duplicates with a resend is what makes the
//   Sorcerer's Apprentice's traffic double; lost data is resent on our own timeout.
// - anything else (a block never sent, a much older one) is ignored too.

export type AckOutcome = 'advanced' | 'done' | 'duplicate' | 'ignored';

export class SendWindow {
  /** the last block; a file of n * blksize bytes ends with an empty block */
  readonly lastBlock: number;
  /** first block not yet acknowledged */
  base = 1;
  /** first block of the window not yet sent */
  next = 1;

  constructor(
    readonly size: number,
    readonly blksize: number,
    readonly windowsize: number,
  ) {
    this.lastBlock = Math.floor(size / blksize) + 1;
  }

  /** Blocks to send now, [from, to] inclusive, marked as sent; null when the window is full. */
  take(): [number, number] | null {
    const end = Math.min(this.base + this.windowsize - 1, this.lastBlock);
    if (this.next > end) return null;
    const from = this.next;
    this.next = end + 1;
    return [from, end];
  }

  /** Map a 16-bit ACK to a block count at or after base - 1. */
  ackedBlock(wireBlock: number): number {
    return this.base - 1 + ((wireBlock - (this.base - 1)) & 0xffff);
  }

  onAck(wireBlock: number): AckOutcome {
    const acked = this.ackedBlock(wireBlock);
    if (acked === this.base - 1) return 'duplicate';
    if (acked >= this.next) return 'ignored';
    this.base = acked + 1;
    this.next = this.base; // a partial ACK restarts the window right after it
    return acked === this.lastBlock ? 'done' : 'advanced';
  }

  /** A timeout: everything not acknowledged goes again. */
  rewind(): void {
    this.next = this.base;
  }

  get done(): boolean {
    return this.base > this.lastBlock;
  }

  /** File offset and length of a block. */
  blockRange(block: number): [offset: number, length: number] {
    const offset = (block - 1) * this.blksize;
    return [offset, Math.max(0, Math.min(this.blksize, this.size - offset))];
  }
}

export function wireBlock(block: number): number {
  return block & 0xffff;
}

/** Delay before retransmission number `attempt` (0 = first send): doubling, at most 8× the base. */
export function retransmitDelayMs(timeoutSeconds: number, attempt: number): number {
  return timeoutSeconds * 1000 * Math.min(8, 2 ** Math.min(attempt, 3));
}
