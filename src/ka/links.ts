// Data links: a parent accepts only the children the coordinator told it to expect
// (link id + token); each side proves the token before a byte of the stream moves.
// Also the remote spool reader: a node fetching a gap from the coordinator's spool
// over a link of its own.
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { FrameType, isControlType, type LinkMode } from './frames.js';
import { FramedConnection, ConnectionClosed } from './connection.js';
import { nonce, proof, proofMatches } from './auth.js';
import type { GapReader } from './relay.js';

export interface ExpectedLink {
  linkId: number;
  token: Buffer;
  mode: LinkMode;
  /** the child node's id (for spool links: the node fetching) */
  childId: number;
  kind: 'child' | 'spool';
}

export interface AcceptedLink {
  link: ExpectedLink;
  conn: FramedConnection;
  offset: number;
}

const HANDSHAKE_MS = 10_000;
const LATE_EXPECT_MS = 500;
const handshakeTypes = (t: number) => t === FrameType.LINK_HELLO || t === FrameType.LINK_AUTH;

export interface DataServerStats {
  accepted: number;
  refused: number;
  malformed: number;
}

export class DataServer {
  private readonly server: Server;
  private readonly expected = new Map<number, ExpectedLink>();
  readonly stats: DataServerStats = { accepted: 0, refused: 0, malformed: 0 };
  private readonly conns = new Set<Socket>();

  constructor(private readonly logger: Logger, private readonly onLink: (a: AcceptedLink) => void) {
    this.server = createServer({ noDelay: true }, (socket) => this.handle(socket));
    this.server.on('error', (e) => this.logger.error({ err: e.message }, 'ka data server error'));
  }

  listen(port: number, host?: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ port, host }, () => {
        this.server.off('error', reject);
        const a = this.server.address();
        resolve(typeof a === 'object' && a ? a.port : port);
      });
    });
  }

  expect(link: ExpectedLink): void {
    this.expected.set(link.linkId, link);
    this.maxLinkId = Math.max(this.maxLinkId, link.linkId);
    for (const w of this.waiters.splice(0)) w();
  }

  private maxLinkId = 0;
  private waiters: (() => void)[] = [];

  /**
   * The coordinator sends EXPECT_CHILD to the parent just before ATTACH to the child,
   * on another connection: a child can arrive a moment before its parent knows of it.
   * Plausible ids (the coordinator counts up) get a short wait before a refusal.
   */
  private async lookup(linkId: number): Promise<ExpectedLink | undefined> {
    const end = Date.now() + LATE_EXPECT_MS;
    while (!this.expected.has(linkId) && linkId <= this.maxLinkId + 1000 && Date.now() < end) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, end - Date.now());
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.expected.get(linkId);
  }

  forget(linkId: number): void {
    this.expected.delete(linkId);
  }

  private handle(socket: Socket) {
    this.conns.add(socket);
    socket.on('close', () => this.conns.delete(socket));
    socket.setNoDelay(true);
    const conn = new FramedConnection(socket, { allow: handshakeTypes });
    this.handshake(conn).catch((e: unknown) => {
      const malformed = e instanceof ConnectionClosed && e.frameError !== undefined;
      if (malformed) this.stats.malformed++;
      else this.stats.refused++;
      this.logger.warn({ peer: conn.remoteAddress, reason: e instanceof Error ? e.message : String(e) }, 'ka data link refused');
      conn.close(e instanceof Error ? e.message : String(e));
    });
  }

  private async handshake(conn: FramedConnection) {
    const hello = await conn.next(HANDSHAKE_MS);
    if (hello.type !== 'LINK_HELLO') throw new ConnectionClosed(`expected LINK_HELLO, got ${hello.type}`);
    const link = await this.lookup(hello.linkId);
    if (!link) {
      conn.send({ type: 'LINK_REFUSE', code: 1, reason: 'unknown link' });
      throw new ConnectionClosed(`unknown link ${hello.linkId}`);
    }
    const own = nonce();
    const ctx = `link ${link.linkId}`;
    conn.send({ type: 'LINK_CHALLENGE', nonce: own, proof: proof(link.token, 'parent', ctx, own, hello.nonce) });
    const auth = await conn.next(HANDSHAKE_MS);
    if (auth.type !== 'LINK_AUTH') throw new ConnectionClosed(`expected LINK_AUTH, got ${auth.type}`);
    if (!proofMatches(proof(link.token, 'child', ctx, hello.nonce, own), auth.proof)) {
      conn.send({ type: 'LINK_REFUSE', code: 2, reason: 'bad proof' });
      throw new ConnectionClosed(`wrong token for link ${link.linkId}`);
    }
    // a child link is used once; a spool link may be opened again for another gap
    if (link.kind === 'child') this.expected.delete(link.linkId);
    this.stats.accepted++;
    // after the handshake a child has nothing to say: any byte from it ends the link
    conn.setHandler((ev) => {
      if (ev.kind === 'error') this.stats.malformed++;
      conn.close(ev.kind === 'error' ? `malformed frame from child: ${ev.error.code}` : 'child sent data on a data link');
    });
    this.onLink({ link, conn, offset: auth.offset });
  }

  async close(): Promise<void> {
    for (const s of this.conns) {
      // a link that has sent its END may still be flushing it to the child: give it a moment
      if (s.writableEnded && !s.destroyed) {
        const t = setTimeout(() => s.destroy(), 5000);
        s.once('close', () => clearTimeout(t));
      } else {
        s.destroy();
      }
    }
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** Connect to a parent (or the coordinator's spool) and prove the link token; resolves once the parent has proved it too. */
export async function connectLink(opts: { host: string; port: number; linkId: number; token: Buffer; offset: number; timeoutMs?: number }): Promise<FramedConnection> {
  // reads go through the socket's onread: the relay can take DATA into its ring (setDataTarget)
  const conn = FramedConnection.connect({ host: opts.host, port: opts.port }, { allow: (t) => !isControlType(t) && t !== FrameType.LINK_HELLO && t !== FrameType.LINK_AUTH });
  const socket = conn.socket;
  const timeout = opts.timeoutMs ?? HANDSHAKE_MS;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      reject(new ConnectionClosed(`connect to ${opts.host}:${opts.port} timed out`));
      socket.destroy();
    }, timeout);
    socket.once('connect', () => {
      clearTimeout(t);
      resolve();
    });
    conn.onClose((r) => {
      clearTimeout(t);
      reject(new ConnectionClosed(r));
    });
  });
  const own = nonce();
  const ctx = `link ${opts.linkId}`;
  conn.send({ type: 'LINK_HELLO', linkId: opts.linkId, nonce: own });
  const ch = await conn.next(timeout);
  if (ch.type === 'LINK_REFUSE') throw new ConnectionClosed(`parent refused the link: ${ch.reason}`);
  if (ch.type !== 'LINK_CHALLENGE') throw new ConnectionClosed(`expected LINK_CHALLENGE, got ${ch.type}`);
  if (!proofMatches(proof(opts.token, 'parent', ctx, ch.nonce, own), ch.proof)) {
    conn.close('parent failed to prove the link token');
    throw new ConnectionClosed('parent failed to prove the link token');
  }
  conn.send({ type: 'LINK_AUTH', proof: proof(opts.token, 'child', ctx, own, ch.nonce), offset: opts.offset });
  return conn;
}

/** Reads gaps from the coordinator's spool over a spool link; one connection streams forward from where it was opened. */
export class RemoteSpoolReader implements GapReader {
  private conn: FramedConnection | null = null;
  private opening: Promise<void> | null = null;
  private queue: Buffer[] = [];
  private queued = 0;
  /** stream offset of queue[0]'s first byte */
  private queueAt = 0;
  private waiting: (() => void) | null = null;
  private closed = false;
  private failure: string | null = null;

  constructor(private readonly opts: { host: string; port: number; linkId: number; token: Buffer; logger: Logger }) {}

  async read(offset: number, max: number): Promise<Buffer | null> {
    if (this.closed) return null;
    if (!this.conn || this.queueAt !== offset || this.failure) await this.open(offset);
    while (this.queued === 0 && !this.failure && !this.closed) await new Promise<void>((r) => (this.waiting = r));
    if (this.queued === 0) return null;
    const head = this.queue[0] as Buffer;
    const n = Math.min(max, head.length);
    const out = head.subarray(0, n);
    if (n === head.length) this.queue.shift();
    else this.queue[0] = head.subarray(n);
    this.queued -= n;
    this.queueAt += n;
    if (this.queued < 8 * 1024 * 1024) this.conn?.socket.resume();
    return out;
  }

  private async open(offset: number) {
    this.conn?.close('reopened at another offset');
    this.queue = [];
    this.queued = 0;
    this.queueAt = offset;
    this.failure = null;
    let expectAt = offset;
    const conn = await connectLink({ ...this.opts, offset });
    this.conn = conn;
    conn.setHandler((ev) => {
      if (ev.kind === 'data') {
        if (ev.offset !== expectAt) return this.fail(conn, `spool sent offset ${ev.offset}, expected ${expectAt}`);
        expectAt += ev.data.length;
        this.queue.push(ev.data);
        this.queued += ev.data.length;
        if (this.queued >= 8 * 1024 * 1024) conn.socket.pause();
        this.wake();
      } else if (ev.kind === 'error') {
        this.fail(conn, `malformed frame from the spool: ${ev.error.code}`);
      } else if (ev.frame.type === 'END') {
        // the spool streamed to the end of the stream; nothing more comes on this link
      } else {
        this.fail(conn, `unexpected ${ev.frame.type} from the spool`);
      }
    });
    conn.onClose((reason) => {
      if (this.conn === conn && this.queued === 0) {
        this.failure = reason;
        this.conn = null;
        this.wake();
      }
    });
  }

  private fail(conn: FramedConnection, reason: string) {
    this.opts.logger.warn({ reason }, 'ka spool link failed');
    this.failure = reason;
    conn.close(reason);
    this.wake();
  }

  private wake() {
    const w = this.waiting;
    this.waiting = null;
    w?.();
  }

  close(): void {
    this.closed = true;
    this.conn?.close('gap filled');
    this.conn = null;
    this.wake();
  }
}
