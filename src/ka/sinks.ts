// Readers' destinations: a child's data link (DATA frames on a socket) and the local
// consumer's stdin. Both write the ring's views as they are; a sink asks to wait
// when more than `limit` bytes sit in its user-space queue (the kernel's socket or
// pipe buffer is behind that), and tells the relay how far the kernel has taken its
// bytes (released), since until then the views in its queue must not be reused.
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { dataFrameHeader, encodeFrame } from './frames.js';
import type { Sink } from './relay.js';

/**
 * A child link's user-space queue: the kernel's send buffer (up to 4 MiB) already keeps
 * the link busy while the relay refills it, and every byte queued beyond it is latency
 * added at each hop (4 MiB: 36 ms at 1 Gbit/s, paid again by every node down the chain).
 */
const SOCKET_LIMIT = 512 * 1024;
/** The consumer's: a pipe's kernel buffer holds only 64 KiB, so the queue in front of it is deeper. */
const PIPE_LIMIT = 4 * 1024 * 1024;
/**
 * Bytes a sink waits for before a write (the relay flushes smaller batches after 2 ms
 * and at the end): a node reads its parent in pieces of about 64 KiB, and a write per
 * piece to the child and to the consumer cost a system call and a trip through the
 * stream machinery each; a child also reads each frame's header in two more calls.
 */
export const BATCH_BYTES = 256 * 1024;
const LINGER_MS = 5000;

/** Offset up to which a stream's queued writes have reached the kernel, and a callback as they do. */
class WriteTracker {
  /** -1: nothing written yet, so nothing held */
  writtenTo = -1;
  private cb: (() => void) | null = null;
  readonly done = () => this.cb?.();
  released(stream: Writable): number {
    if (this.writtenTo < 0) return Number.MAX_SAFE_INTEGER;
    if (stream.destroyed) return this.writtenTo;
    // writableLength counts what is queued or being written (for a socket, frame headers too: this errs on the safe side)
    return this.writtenTo - stream.writableLength;
  }
  onRelease(cb: () => void) {
    this.cb = cb;
  }
}

export class SocketSink implements Sink {
  private readonly tracker = new WriteTracker();
  constructor(private readonly socket: Socket, private readonly limit = SOCKET_LIMIT, readonly batchBytes = BATCH_BYTES) {}
  write(offset: number, data: Buffer): boolean {
    if (this.socket.destroyed) return true;
    this.socket.write(dataFrameHeader(offset, data.length));
    this.socket.write(data, this.tracker.done);
    this.tracker.writtenTo = offset + data.length;
    return this.socket.writableLength < this.limit;
  }
  released(): number {
    return this.tracker.released(this.socket);
  }
  onRelease(cb: () => void): void {
    this.tracker.onRelease(cb);
  }
  onDrain(cb: () => void): void {
    if (this.socket.writableLength < this.limit) queueMicrotask(cb);
    else this.socket.once('drain', cb);
  }
  private ended = false;
  end(total: number, digest: Buffer): void {
    if (this.socket.destroyed) return;
    this.ended = true;
    this.socket.write(encodeFrame({ type: 'END', total, digest }));
    this.socket.end();
  }
  destroy(): void {
    if (this.socket.destroyed) return;
    // after END, let the last bytes and the END reach the child (a node leaving at the
    // end of the session must not cut its child short); a child that reads nothing more gets 5 s
    if (this.ended) {
      const t = setTimeout(() => this.socket.destroy(), LINGER_MS);
      this.socket.once('close', () => clearTimeout(t));
      return;
    }
    this.socket.destroy();
  }
  cork(): void {
    this.socket.cork();
  }
  uncork(): void {
    this.socket.uncork();
  }
}

/** The local consumer's stdin. end() closes it, so the command sees EOF. */
export class StdinSink implements Sink {
  private readonly tracker = new WriteTracker();
  constructor(private readonly stdin: Writable, private readonly limit = PIPE_LIMIT, readonly batchBytes = BATCH_BYTES) {}
  write(offset: number, data: Buffer): boolean {
    if (this.stdin.destroyed) return true;
    this.stdin.write(data, this.tracker.done);
    this.tracker.writtenTo = offset + data.length;
    return this.stdin.writableLength < this.limit;
  }
  released(): number {
    return this.tracker.released(this.stdin);
  }
  onRelease(cb: () => void): void {
    this.tracker.onRelease(cb);
  }
  onDrain(cb: () => void): void {
    if (this.stdin.writableLength < this.limit) queueMicrotask(cb);
    else this.stdin.once('drain', cb);
  }
  end(): void {
    if (!this.stdin.destroyed) this.stdin.end();
  }
  destroy(): void {
    this.stdin.destroy();
  }
}
