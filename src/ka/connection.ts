// A socket speaking KA frames: the handshakes read it one frame at a time (next()),
// the bulk path takes every event as it is decoded (setHandler). Bad bytes end the
// connection with a reason; nothing thrown here escapes a socket handler. A connection
// opened with FramedConnection.connect reads through DirectFrameReader (the socket's
// onread), so DATA can go straight into a relay's ring (setDataTarget).
import { connect, type Socket } from 'node:net';
import { encodeFrame, FrameReader, type Frame, type FrameError, type ReadEvent } from './frames.js';
import { DirectFrameReader, type DataTarget } from './direct-read.js';

type ReaderOpts = { allow?: (t: number) => boolean; maxPayload?: number };

export class ConnectionClosed extends Error {
  constructor(readonly reason: string, readonly frameError?: FrameError) {
    super(reason);
  }
}

export class FramedConnection {
  private readonly reader: FrameReader | null;
  private queue: ReadEvent[] = [];
  private waiter: { resolve: (f: Frame) => void; reject: (e: Error) => void; timer: NodeJS.Timeout | undefined } | null = null;
  private handler: ((ev: ReadEvent) => void) | null = null;
  private closeHandlers: ((reason: string) => void)[] = [];
  closedReason: string | null = null;
  readonly remoteAddress: string;

  constructor(readonly socket: Socket, opts: ReaderOpts = {}, private readonly direct: DirectFrameReader | null = null) {
    this.reader = direct ? null : new FrameReader(opts);
    this.remoteAddress = (socket.remoteAddress ?? '?').replace(/^::ffff:/, '');
    if (!direct) socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.close(`socket error: ${e.message}`));
    socket.on('close', () => this.close('peer closed the connection'));
    socket.on('end', () => {
      // half-close from the peer: we have nothing more to say either once our writes drain
      if (this.handler) this.socket.end();
    });
  }

  /** A client connection whose reads go through a DirectFrameReader. */
  static connect(to: { host: string; port: number }, opts: ReaderOpts = {}): FramedConnection {
    let conn: FramedConnection | null = null;
    const direct = new DirectFrameReader((ev) => conn?.deliver(ev), opts);
    const socket = connect({
      host: to.host,
      port: to.port,
      noDelay: true,
      onread: { buffer: () => direct.nextBuffer(), callback: (n: number, buf: Uint8Array) => direct.onRead(n, buf as Buffer) },
    });
    conn = new FramedConnection(socket, opts, direct);
    return conn;
  }

  /** DATA payloads from now on go into `target` (a direct connection only). */
  setDataTarget(target: DataTarget): void {
    if (!this.direct) throw new Error('setDataTarget on a connection not opened with FramedConnection.connect');
    this.direct.target = target;
  }

  private onData(chunk: Buffer) {
    if (this.closedReason || !this.reader) return;
    for (const ev of this.reader.push(chunk)) this.deliver(ev);
  }

  private deliver(ev: ReadEvent) {
    if (this.closedReason) return;
    if (this.handler) this.handler(ev);
    else this.enqueue(ev);
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
