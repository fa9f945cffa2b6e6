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

export type TransferOutcome = 'done' | 'timeout' | 'client-error' | 'read-error' | 'aborted';

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

  private constructor(private readonly opts: TransferOptions, socket: Socket) {
    this.socket = socket;
    this.clientAddress = opts.client.address;
    this.clientPort = opts.client.port;
    const { blksize, windowsize, oack } = opts.params;
    this.window = new SendWindow(opts.source.size, blksize, windowsize);
    this.oack = oack.length > 0 ? encodePacket({ op: 'OACK', options: oack }) : null;
    this.phase = this.oack ? 'oack' : 'data';
  }

  /** Open the transfer's socket and send the OACK or the first window. */
  static start(opts: TransferOptions): Promise<ReadTransfer> {
    return new Promise((resolve, reject) => {
      const socket = createSocket({ type: 'udp4' });
      const onBindError = (err: Error) => {
        socket.close();
        reject(err);
      };
      socket.once('error', onBindError);
      socket.bind({ address: opts.localAddress, port: 0, exclusive: true }, () => {
        socket.off('error', onBindError);
        const t = new ReadTransfer(opts, socket);
        const { blksize, windowsize } = opts.params;
        // A window of big blocks must fit the socket's send buffer, or sends queue up.
        try {
          const want = (blksize + 32) * windowsize * 2;
          if (socket.getSendBufferSize() < want) socket.setSendBufferSize(want);
        } catch { /* the kernel caps it; libuv queues what does not fit */ }
        t.begin();
        resolve(t);
      });
    });
  }

  /** End now (server shutting down). */
  abort(): void {
    this.end('aborted');
  }

  private begin(): void {
    this.socket.on('message', this.onMessage);
    this.socket.on('error', (err) => this.opts.logger.debug({ err, client: this.clientLabel() }, 'tftp transfer socket error'));
    if (this.oack) this.send(this.oack);
    else this.sendWindow();
    this.arm(retransmitDelayMs(this.opts.params.timeout, 0));
  }

  private readonly onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    if (this.phase === 'ended') return;
    if (rinfo.port !== this.clientPort || rinfo.address !== this.clientAddress) {
      this.opts.counters.wrongTid++;
      this.socket.send(errorPacket(ErrorCode.UNKNOWN_TID, 'unknown transfer ID'), rinfo.port, rinfo.address);
      return;
    }
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
    this.socket.send([header, data], this.clientPort, this.clientAddress);
  }

  private send(packet: Buffer): void {
    this.opts.counters.packetsSent++;
    this.socket.send(packet, this.clientPort, this.clientAddress);
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
    setImmediate(() => this.socket.close());
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
