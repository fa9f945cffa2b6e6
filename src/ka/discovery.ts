// Finding a session by name, as ka-deploy did: the node broadcasts the name over
// UDP, the coordinator running that session answers (unicast, to the asking port)
// with its control port. A coordinator that starts also announces its session once
// (broadcast, to the discovery port + 1), so nodes already waiting join at once
// instead of at their next request. Nothing secret is said here; joining proves the secret.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';

export const DEFAULT_DISCOVERY_PORT = 4957;
/** Where nodes that are looking for a session listen for announcements: the discovery port + 1 (none past 65535). */
export const announcePort = (discoveryPort: number): number | null => (discoveryPort < 65535 ? discoveryPort + 1 : null);
const DISCOVERY_MAGIC = Buffer.from('KAD', 'latin1');
const DISCOVERY_VERSION = 1;

export type DiscoveryMessage =
  | { type: 'request'; session: string; nonce: number }
  | { type: 'reply'; session: string; nonce: number; controlPort: number }
  /** unsolicited, broadcast by a coordinator as it starts; nonce 0 */
  | { type: 'announce'; session: string; nonce: number; controlPort: number };

const TYPE_CODE = { request: 1, reply: 2, announce: 3 } as const;

export type DiscoveryDecode = { ok: true; msg: DiscoveryMessage } | { ok: false; reason: string };

// layout: "KAD" u8 version u8 type(1 request, 2 reply, 3 announce) u32 nonce u8 len session [u16 control port]
export function encodeDiscovery(m: DiscoveryMessage): Buffer {
  const name = Buffer.from(m.session, 'utf8');
  if (name.length === 0 || name.length > 255) throw new RangeError('session name must be 1..255 bytes');
  const b = Buffer.alloc(3 + 1 + 1 + 4 + 1 + name.length + (m.type === 'request' ? 0 : 2));
  DISCOVERY_MAGIC.copy(b, 0);
  b[3] = DISCOVERY_VERSION;
  b[4] = TYPE_CODE[m.type];
  b.writeUInt32BE(m.nonce >>> 0, 5);
  b[9] = name.length;
  name.copy(b, 10);
  if (m.type !== 'request') b.writeUInt16BE(m.controlPort, 10 + name.length);
  return b;
}

export function decodeDiscovery(b: Buffer): DiscoveryDecode {
  if (b.length < 11) return { ok: false, reason: 'short datagram' };
  if (!b.subarray(0, 3).equals(DISCOVERY_MAGIC)) return { ok: false, reason: 'bad magic' };
  if (b[3] !== DISCOVERY_VERSION) return { ok: false, reason: `version ${b[3]}` };
  const type = b[4];
  if (type !== 1 && type !== 2 && type !== 3) return { ok: false, reason: `type ${type}` };
  const nonce = b.readUInt32BE(5);
  const len = b[9] as number;
  const want = 10 + len + (type === 1 ? 0 : 2);
  if (len === 0 || b.length !== want) return { ok: false, reason: `length ${b.length}, expected ${want}` };
  const raw = b.subarray(10, 10 + len);
  const session = raw.toString('utf8');
  if (!Buffer.from(session, 'utf8').equals(raw) || /[\0-\x1f\x7f]/.test(session)) return { ok: false, reason: 'session name is not clean text' };
  if (type === 1) return { ok: true, msg: { type: 'request', session, nonce } };
  return { ok: true, msg: { type: type === 2 ? 'reply' : 'announce', session, nonce, controlPort: b.readUInt16BE(10 + len) } };
}

/** The coordinator's side: answer requests for `session`. */
export class DiscoveryResponder {
  private readonly sock: UdpSocket;
  stats = { requests: 0, answered: 0, malformed: 0 };

  constructor(private readonly opts: { session: string; controlPort: number; logger: Logger }) {
    this.sock = createSocket({ type: 'udp4', reuseAddr: true });
    this.sock.on('error', (e) => this.opts.logger.warn({ err: e.message }, 'ka discovery socket error'));
    this.sock.on('message', (msg, rinfo) => {
      const d = decodeDiscovery(msg);
      if (!d.ok) {
        this.stats.malformed++;
        this.opts.logger.debug({ peer: rinfo.address, reason: d.reason }, 'ka discovery: malformed datagram');
        return;
      }
      if (d.msg.type !== 'request') return;
      this.stats.requests++;
      if (d.msg.session !== this.opts.session) return;
      this.stats.answered++;
      this.opts.logger.info({ peer: rinfo.address, session: d.msg.session }, 'ka discovery: session name matches, replying');
      this.sock.send(encodeDiscovery({ type: 'reply', session: this.opts.session, nonce: d.msg.nonce, controlPort: this.opts.controlPort }), rinfo.port, rinfo.address);
    });
  }

  /** Listens on `port`, then announces the session once to the nodes already looking for it. */
  bind(port = DEFAULT_DISCOVERY_PORT, address?: string, targets: string[] = broadcastAddresses()): Promise<void> {
    return new Promise((resolve, reject) => {
      this.sock.once('error', reject);
      this.sock.bind({ port, address }, () => {
        this.sock.off('error', reject);
        this.sock.setBroadcast(true);
        const to = announcePort(port);
        const announce = encodeDiscovery({ type: 'announce', session: this.opts.session, nonce: 0, controlPort: this.opts.controlPort });
        if (to !== null) for (const addr of targets) this.sock.send(announce, to, addr, () => {});
        resolve();
      });
    });
  }

  close(): void {
    try {
      this.sock.close();
    } catch {
      /* already closed */
    }
  }
}

/** Every IPv4 broadcast address of this host's interfaces, then the limited broadcast. */
export function broadcastAddresses(): string[] {
  const out = new Set<string>();
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family !== 'IPv4' || a.internal) continue;
      const ip = a.address.split('.').map(Number);
      const mask = a.netmask.split('.').map(Number);
      out.add(ip.map((o, i) => (o | (~(mask[i] ?? 0) & 255)) & 255).join('.'));
    }
  }
  out.add('255.255.255.255');
  return [...out];
}

/**
 * Delay before discovery round `round` (0 = after the first datagram): nodes and the
 * coordinator are often started together, and a node's first request can come before
 * the coordinator listens, so the first rounds follow quickly (100, 200, 400, 800 ms),
 * then every `intervalMs`.
 */
export function discoveryDelay(round: number, intervalMs: number): number {
  return Math.min(intervalMs, 100 * 2 ** Math.min(round, 20));
}

/**
 * The node's side: broadcast the name until a coordinator answers, for `tries` ×
 * `intervalMs` in all; meanwhile listen for a coordinator's announcement of the session.
 */
export function discover(opts: { session: string; port?: number; tries?: number; intervalMs?: number; targets?: string[]; logger: Logger }): Promise<{ host: string; port: number }> {
  const port = opts.port ?? DEFAULT_DISCOVERY_PORT;
  const tries = opts.tries ?? 10;
  const nonce = Math.floor(Math.random() * 0xffffffff);
  const request = encodeDiscovery({ type: 'request', session: opts.session, nonce });
  const sock = createSocket('udp4');
  // several nodes (or a coordinator's own test nodes) may share a host: every listener gets a broadcast
  const listener = createSocket({ type: 'udp4', reuseAddr: true });
  return new Promise((resolve, reject) => {
    let sent = 0;
    let waited = 0;
    let done = false;
    const intervalMs = opts.intervalMs ?? 1000;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err: Error | null, v?: { host: string; port: number }) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      for (const s of [sock, listener]) {
        try {
          s.close();
        } catch {
          /* closed, or never bound */
        }
      }
      if (err) reject(err);
      else resolve(v as { host: string; port: number });
    };
    const onMessage = (msg: Buffer, rinfo: { address: string }) => {
      const d = decodeDiscovery(msg);
      if (!d.ok || d.msg.type === 'request' || d.msg.session !== opts.session) return;
      if (d.msg.type === 'reply' && d.msg.nonce !== nonce) return;
      opts.logger.info({ coordinator: `${rinfo.address}:${d.msg.controlPort}`, session: opts.session, by: d.msg.type }, 'ka discovery: found the session');
      finish(null, { host: rinfo.address, port: d.msg.controlPort });
    };
    sock.on('error', (e) => opts.logger.debug({ err: e.message }, 'ka discovery send error'));
    sock.on('message', onMessage);
    listener.on('error', (e) => opts.logger.debug({ err: e.message }, 'ka discovery: not listening for announcements'));
    listener.on('message', onMessage);
    const listenOn = announcePort(port);
    if (listenOn !== null) listener.bind(listenOn);
    const round = () => {
      if (waited >= tries * intervalMs) return finish(new Error(`no coordinator answered for session "${opts.session}" in ${((tries * intervalMs) / 1000).toFixed(1)} s (${sent} requests)`));
      for (const addr of opts.targets ?? broadcastAddresses()) sock.send(request, port, addr, () => {});
      const delay = discoveryDelay(sent++, intervalMs);
      waited += delay;
      timer = setTimeout(round, delay);
    };
    sock.bind(0, () => {
      sock.setBroadcast(true);
      round();
    });
  });
}
