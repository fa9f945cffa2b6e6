// The local consumer fed through a real pipe with blocking writes on libuv's thread pool,
// instead of the Unix socket child_process gives a child's stdin. Through that socket the
// event loop woke for every few dozen KiB the consumer read (epoll, a JS callback, a
// writev); a blocking write(2) of a whole batch sleeps in the kernel while the consumer
// reads and wakes once. Under emulation (the lab's TCG nodes) that was seconds of a
// 212 MB receive. One writev is in flight at a time; the ring's views stay held until the
// kernel took them (released()).
import { closeSync, constants, mkdtempSync, openSync, rmSync, writev } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Sink } from './relay.js';

const DEFAULT_LIMIT = 4 * 1024 * 1024;
/** Bytes handed to one writev at most */
const MAX_WRITE = 4 * 1024 * 1024;

export class FdSink implements Sink {
  private readonly queue: Buffer[] = [];
  /** bytes queued and not yet taken by the kernel (the one in flight included) */
  private pending = 0;
  /** offset just past the last byte the kernel took; -1 before any write */
  private takenTo = -1;
  private inFlight = false;
  private closed = false;
  private ending = false;
  private releaseCb: (() => void) | null = null;
  private drainCbs: (() => void)[] = [];
  readonly batchBytes = 1024 * 1024;

  /** `fd`: the write end, blocking (its writes run on the thread pool); closed by end() and destroy() */
  constructor(private readonly fd: number, private readonly onError: (e: Error) => void, private readonly limit = DEFAULT_LIMIT) {}

  write(offset: number, data: Buffer): boolean {
    if (this.closed || this.ending) return true;
    if (this.takenTo < 0) this.takenTo = offset;
    this.queue.push(data);
    this.pending += data.length;
    this.kick();
    return this.pending < this.limit;
  }

  released(): number {
    return this.takenTo < 0 ? Number.MAX_SAFE_INTEGER : this.takenTo;
  }

  onRelease(cb: () => void): void {
    this.releaseCb = cb;
  }

  onDrain(cb: () => void): void {
    if (this.pending < this.limit) queueMicrotask(cb);
    else this.drainCbs.push(cb);
  }

  end(): void {
    this.ending = true;
    this.kick();
  }

  destroy(): void {
    this.ending = true;
    this.queue.length = 0;
    // a write in flight still uses the fd: it is closed when that write returns
    if (!this.inFlight) this.close();
  }

  private kick(): void {
    if (this.inFlight || this.closed) return;
    if (this.queue.length === 0) {
      if (this.ending) this.close();
      return;
    }
    const batch: Buffer[] = [];
    let bytes = 0;
    while (this.queue.length > 0 && bytes < MAX_WRITE) {
      const b = this.queue.shift()!;
      batch.push(b);
      bytes += b.length;
    }
    this.inFlight = true;
    writev(this.fd, batch, (err, n) => {
      this.inFlight = false;
      if (err) {
        this.queue.length = 0;
        this.close();
        this.onError(err);
        return;
      }
      // a blocking pipe takes all of it unless a signal cut the write short: the rest goes first next time
      let left = n;
      const rest: Buffer[] = [];
      for (const b of batch) {
        if (left >= b.length) left -= b.length;
        else {
          rest.push(b.subarray(left));
          left = 0;
        }
      }
      this.queue.unshift(...rest);
      this.pending -= n;
      this.takenTo += n;
      this.releaseCb?.();
      if (this.pending < this.limit && this.drainCbs.length) {
        const cbs = this.drainCbs.splice(0);
        for (const cb of cbs) cb();
      }
      this.kick();
    });
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      closeSync(this.fd);
    } catch {
      /* already gone */
    }
  }
}

/**
 * A pipe made from a FIFO: both ends blocking, the FIFO's name gone before this returns.
 * The non-blocking read open lets the write end open without a reader waiting; the blocking
 * read end then opens at once, as a writer exists. Undefined where mkfifo is missing.
 */
export function blockingPipe(): { read: number; write: number } | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'kaboot-ka-pipe-'));
  const fifo = join(dir, 'p');
  try {
    execFileSync('mkfifo', ['-m', '600', fifo], { stdio: 'ignore' });
    const probe = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const write = openSync(fifo, constants.O_WRONLY);
    const read = openSync(fifo, constants.O_RDONLY);
    closeSync(probe);
    return { read, write };
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
