// A socket speaking KA frames: the handshakes read it one frame at a time (next()),
// the bulk path takes every event as it is decoded (setHandler). Bad bytes end the
// connection with a reason; nothing thrown here escapes a socket handler.
import type { Socket } from 'node:net';
import { encodeFrame, FrameReader, type Frame, type FrameError, type ReadEvent } from './frames.js';

export class ConnectionClosed extends Error {
  constructor(readonly reason: string, readonly frameError?: FrameError) {
    super(reason);
  }
}

export class FramedConnection {
  private readonly reader: FrameReader;
  private queue: ReadEvent[] = [];
  private waiter: { resolve: (f: Frame) => void; reject: (e: Error) => void; timer: NodeJS.Timeout | undefined } | null = null;
  private handler: ((ev: ReadEvent) => void) | null = null;
  private closeHandlers: ((reason: string) => void)[] = [];
  closedReason: string | null = null;
  readonly remoteAddress: string;

  constructor(readonly socket: Socket, opts: { allow?: (t: number) => boolean; maxPayload?: number } = {}) {
    this.reader = new FrameReader(opts);
    this.remoteAddress = (socket.remoteAddress ?? '?').replace(/^::ffff:/, '');
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.close(`socket error: ${e.message}`));
    socket.on('close', () => this.close('peer closed the connection'));
    socket.on('end', () => {
      // half-close from the peer: we have nothing more to say either once our writes drain
      if (this.handler) this.socket.end();
    });
  }

  private onData(chunk: Buffer) {
    if (this.closedReason) return;
    const events = this.reader.push(chunk);
    for (const ev of events) {
      if (this.closedReason) return;
      if (this.handler) this.handler(ev);
      else this.enqueue(ev);
    }
  }

  private enqueue(ev: ReadEvent) {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      if (w.timer) clearTimeout(w.timer);
      if (ev.kind === 'frame') w.resolve(ev.frame);
      else if (ev.kind === 'error') w.reject(new ConnectionClosed(`malformed frame: ${ev.error.code} (${ev.error.detail})`, ev.error));
      else w.reject(new ConnectionClosed('DATA during a handshake'));
      return;
    }
    this.queue.push(ev);
  }

  /** The next whole frame; rejects on a malformed one, on close, or after `timeoutMs`. */
  next(timeoutMs: number): Promise<Frame> {
    const ev = this.queue.shift();
    if (ev) {
      if (ev.kind === 'frame') return Promise.resolve(ev.frame);
      if (ev.kind === 'error') return Promise.reject(new ConnectionClosed(`malformed frame: ${ev.error.code} (${ev.error.detail})`, ev.error));
      return Promise.reject(new ConnectionClosed('DATA during a handshake'));
    }
    if (this.closedReason) return Promise.reject(new ConnectionClosed(this.closedReason));
    return new Promise((resolve, reject) => {
      const timer = timeoutMs > 0 ? setTimeout(() => {
        this.waiter = null;
        reject(new ConnectionClosed(`no answer in ${timeoutMs} ms`));
      }, timeoutMs) : undefined;
      this.waiter = { resolve, reject, timer };
    });
  }

  /** From now on every decoded event goes to `fn` as it arrives (queued ones first). */
  setHandler(fn: (ev: ReadEvent) => void): void {
    this.handler = fn;
    for (const ev of this.queue.splice(0)) {
      if (this.closedReason) return;
      fn(ev);
    }
  }

  onClose(fn: (reason: string) => void): void {
    if (this.closedReason) queueMicrotask(() => fn(this.closedReason as string));
    else this.closeHandlers.push(fn);
  }

  send(f: Frame): void {
    if (!this.closedReason && !this.socket.destroyed) this.socket.write(encodeFrame(f));
  }

  close(reason: string): void {
    if (this.closedReason) return;
    this.closedReason = reason;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      if (w.timer) clearTimeout(w.timer);
      w.reject(new ConnectionClosed(reason));
    }
    this.socket.destroy();
    for (const fn of this.closeHandlers.splice(0)) fn(reason);
  }
}
