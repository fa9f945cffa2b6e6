// Readers' destinations: a child's data link (DATA frames on a socket) and the local
// consumer's stdin. Both write the ring's views as they are; a sink asks to wait
// when more than `limit` bytes sit in its user-space queue (the kernel's socket or
// pipe buffer is behind that).
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { dataFrameHeader, encodeFrame } from './frames.js';
import type { Sink } from './relay.js';

const DEFAULT_LIMIT = 4 * 1024 * 1024;

export class SocketSink implements Sink {
  constructor(private readonly socket: Socket, private readonly limit = DEFAULT_LIMIT) {}
  write(offset: number, data: Buffer): boolean {
    if (this.socket.destroyed) return true;
    this.socket.write(dataFrameHeader(offset, data.length));
    this.socket.write(data);
    return this.socket.writableLength < this.limit;
  }
  onDrain(cb: () => void): void {
    if (this.socket.writableLength < this.limit) queueMicrotask(cb);
    else this.socket.once('drain', cb);
  }
  end(total: number, digest: Buffer): void {
    if (this.socket.destroyed) return;
    this.socket.write(encodeFrame({ type: 'END', total, digest }));
    this.socket.end();
  }
  destroy(): void {
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
  constructor(private readonly stdin: Writable, private readonly limit = DEFAULT_LIMIT) {}
  write(_offset: number, data: Buffer): boolean {
    if (this.stdin.destroyed) return true;
    this.stdin.write(data);
    return this.stdin.writableLength < this.limit;
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
