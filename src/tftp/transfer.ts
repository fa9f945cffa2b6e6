// One read transfer on its own UDP socket (its port is the server's TID, RFC 1350),
// bound to the local address the request came to, so that on a multi-homed host the
// client hears from the address it talked to.
//
// The hot path is the ACK handler: it checks the sender, reads the block number from
// the raw bytes, and sends the next window at once, in the same call, from memory.
// Only a file too large for the cache makes a read wait for the disk.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { Logger } from 'pino';
import { ErrorCode, errorPacket, encodePacket, Opcode, writeDataHeader } from './packet.js';
import type { TransferParams } from './options.js';
import type { FileSource } from './provider.js';
import { retransmitDelayMs, SendWindow } from './window.js';

export type TransferOutcome = 'done' | 'timeout' | 'client-error' | 'client-gone' | 'read-error' | 'aborted';

const UNKNOWN_TID = errorPacket(ErrorCode.UNKNOWN_TID, 'unknown transfer ID');

function bindUdp(address: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    const onError = (err: Error) => {
      socket.close();
      reject(err);
    };
    socket.once('error', onError);
    socket.bind({ address, port }, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

function connectUdp(socket: Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.connect(port, address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

export interface TransferResult {
  outcome: TransferOutcome;
  client: string;
  file: string;
  /** bytes the client acknowledged */
  bytes: number;
  seconds: number;
}

export interface TransferCounters {
  wrongTid: number;
  ignored: number;
  retransmits: number;
  packetsSent: number;
}

export interface TransferOptions {
  localAddress: string;
  client: { address: string; port: number };
  file: string;
  source: FileSource;
  params: TransferParams;
  /** retransmissions before giving up */
  retries: number;
  logger: Logger;
  counters: TransferCounters;
  onEnd: (result: TransferResult) => void;
}

type Phase = 'oack' | 'data' | 'ended';

export class ReadTransfer {
  private readonly socket: Socket;
  private readonly window: SendWindow;
  private readonly clientAddress: string;
  private readonly clientPort: number;
  private readonly oack: Buffer | null;
  private phase: Phase;
  private readonly started = Date.now();
  private lastProgress = Date.now();
  private attempt = 0;
  private timer: NodeJS.Timeout | null = null;
  /** a block waiting for the disk; while set, sending pauses */
  private reading = false;
  private pendingBlock = -1;
  private pendingData: Buffer | null = null;

  private constructor(private readonly opts: TransferOptions, socket: Socket, private readonly guard: Socket) {
    this.socket = socket;
    this.clientAddress = opts.client.address;
    this.clientPort = opts.client.port;
    const { blksize, windowsize, oack } = opts.params;
    this.window = new SendWindow(opts.source.size, blksize, windowsize);
    this.oack = oack.length > 0 ? encodePacket({ op: 'OACK', options: oack }) : null;
    this.phase = this.oack ? 'oack' : 'data';
  }

  /**
   * Open the transfer's port and send the OACK or the first window.
   *
   * Two sockets share the port (SO_REUSEADDR): `socket` is connected to the client, so
   * the kernel gives it only the client's datagrams and a send names no address (no
   * lookup, no route per packet); `guard`, unconnected, gets whatever anyone else sends
   * to the port and answers ERROR 5 (unknown transfer ID).
   */
  static async start(opts: TransferOptions): Promise<ReadTransfer> {
    const guard = await bindUdp(opts.localAddress, 0);
    let socket: Socket | null = null;
    try {
      socket = await bindUdp(opts.localAddress, guard.address().port);
      await connectUdp(socket, opts.client.port, opts.client.address);
    } catch (err) {
      guard.close();
      socket?.close();
      throw err;
    }
    const t = new ReadTransfer(opts, socket, guard);
    const { blksize, windowsize } = opts.params;
    // A window of big blocks must fit the socket's send buffer, or sends queue up.
    try {
      const want = (blksize + 32) * windowsize * 2;
      if (socket.getSendBufferSize() < want) socket.setSendBufferSize(want);
    } catch { /* the kernel caps it; libuv queues what does not fit */ }
    t.begin();
    return t;
  }

  /** End now (server shutting down). */
  abort(): void {
    this.end('aborted');
  }

  private begin(): void {
    this.socket.on('message', this.onMessage);
    this.socket.on('error', (err: NodeJS.ErrnoException) => {
      // On a connected socket, an ICMP port unreachable from the client surfaces here.
      if (err.code === 'ECONNREFUSED') this.end('client-gone');
      else this.opts.logger.debug({ err, client: this.clientLabel() }, 'tftp transfer socket error');
    });
    this.guard.on('message', this.onStranger);
    this.guard.on('error', () => undefined);
    if (this.oack) this.send(this.oack);
    else this.sendWindow();
    this.arm(retransmitDelayMs(this.opts.params.timeout, 0));
  }

  private readonly onStranger = (_msg: Buffer, rinfo: RemoteInfo): void => {
    if (this.phase === 'ended') return;
    this.opts.counters.wrongTid++;
    this.guard.send(UNKNOWN_TID, rinfo.port, rinfo.address);
  };

  // Only the client's datagrams reach the connected socket.
  private readonly onMessage = (msg: Buffer): void => {
    if (this.phase === 'ended') return;
    if (msg.length >= 4 && msg[0] === 0) {
      if (msg[1] === Opcode.ACK) {
        this.onAck(((msg[2] as number) << 8) | (msg[3] as number));
        return;
      }
      if (msg[1] === Opcode.ERROR) {
        this.end('client-error');
        return;
      }
    }
    this.opts.counters.ignored++;
  };

  private onAck(block: number): void {
    if (this.phase === 'oack') {
      if (block !== 0) return;
      this.phase = 'data';
      this.progress();
      this.sendWindow();
      return;
    }
    const outcome = this.window.onAck(block);
    if (outcome === 'advanced') {
      this.progress();
      this.sendWindow();
    } else if (outcome === 'done') {
      this.end('done');
    }
  }

  private progress(): void {
    this.attempt = 0;
    this.lastProgress = Date.now();
  }

  private sendWindow(): void {
    if (this.reading || this.phase !== 'data') return;
    const w = this.window;
    for (let range = w.take(); range; range = w.take()) {
      for (let b = range[0]; b <= range[1]; b++) {
        let data: Buffer | Promise<Buffer>;
        if (b === this.pendingBlock && this.pendingData) {
          data = this.pendingData;
        } else {
          const [offset, length] = w.blockRange(b);
          data = this.opts.source.read(offset, length);
        }
        if (!Buffer.isBuffer(data)) {
          w.next = b; // blocks from b on are not sent yet
          this.waitForDisk(b, data);
          return;
        }
        this.sendBlock(b, data);
      }
    }
  }

  private waitForDisk(block: number, pending: Promise<Buffer>): void {
    this.reading = true;
    pending.then(
      (data) => {
        this.reading = false;
        this.pendingBlock = block;
        this.pendingData = data;
        this.sendWindow();
      },
      (err: unknown) => {
        if (this.phase === 'ended') return;
        this.opts.logger.warn({ err, file: this.opts.file }, 'tftp read error');
        this.send(errorPacket(ErrorCode.NOT_DEFINED, 'read error'));
        this.end('read-error');
      },
    );
  }

  private sendBlock(block: number, data: Buffer): void {
    const header = Buffer.allocUnsafe(4);
    writeDataHeader(header, block & 0xffff);
    this.opts.counters.packetsSent++;
    this.socket.send([header, data]);
  }

  private send(packet: Buffer): void {
    this.opts.counters.packetsSent++;
    this.socket.send(packet);
  }

  private arm(delayMs: number): void {
    this.timer = setTimeout(this.onTimer, delayMs);
  }

  // One timer per transfer: progress only stamps the time, and the timer, when it
  // fires early, re-arms for what is left. No timer work per block.
  private readonly onTimer = (): void => {
    this.timer = null;
    if (this.phase === 'ended') return;
    const delay = retransmitDelayMs(this.opts.params.timeout, this.attempt);
    const left = this.lastProgress + delay - Date.now();
    if (left > 0) {
      this.arm(left);
      return;
    }
    if (this.attempt >= this.opts.retries) {
      this.send(errorPacket(ErrorCode.NOT_DEFINED, 'timed out'));
      this.end('timeout');
      return;
    }
    this.attempt++;
    this.lastProgress = Date.now();
    this.opts.counters.retransmits++;
    if (this.phase === 'oack' && this.oack) {
      this.send(this.oack);
    } else {
      this.window.rewind();
      this.sendWindow();
    }
    this.arm(retransmitDelayMs(this.opts.params.timeout, this.attempt));
  };

  private clientLabel(): string {
    return `${this.clientAddress}:${this.clientPort}`;
  }

  private end(outcome: TransferOutcome): void {
    if (this.phase === 'ended') return;
    this.phase = 'ended';
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    // A send is queued for the next tick (dgram resolves the address first): close after it.
    setImmediate(() => {
      this.socket.close();
      this.guard.close();
    });
    this.opts.source.close();
    const w = this.window;
    const bytes = Math.min(w.size, (w.base - 1) * w.blksize);
    const seconds = (Date.now() - this.started) / 1000;
    const { blksize, windowsize } = this.opts.params;
    const line = {
      client: this.clientLabel(),
      file: this.opts.file,
      bytes,
      seconds,
      rateMBps: seconds > 0 ? Math.round((bytes / 1e6 / seconds) * 100) / 100 : null,
      blksize,
      windowsize,
      outcome,
    };
    if (outcome === 'done') this.opts.logger.info(line, 'tftp transfer done');
    else this.opts.logger.warn(line, `tftp transfer ${outcome}`);
    this.opts.onEnd({ outcome, client: line.client, file: line.file, bytes, seconds });
  }
}
