// The node side of a session (kaboot ka-client, the node agent): find the
// coordinator, prove the secret, start the local consumer, then relay: take the
// stream from whichever parent the coordinator names, feed the consumer and any
// children, check the SHA-256 at the end and report.
import { connect } from 'node:net';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { FramedConnection } from './connection.js';
import { isControlType, type FrameOf } from './frames.js';
import { nonce, proof, proofMatches, secretKey } from './auth.js';
import { discover, DEFAULT_DISCOVERY_PORT } from './discovery.js';
import { DataServer, RemoteSpoolReader, connectLink } from './links.js';
import { Relay } from './relay.js';
import { SocketSink, StdinSink } from './sinks.js';
import { hasherFor, type HashChoice } from './hasher.js';
import { runShell, type ShellProcess } from './shell.js';

export const DEFAULT_CONTROL_PORT = 30765;
export const DEFAULT_DATA_PORT = 30764;
export const DEFAULT_RING_BYTES = 64 * 1024 * 1024;

export interface JoinOptions {
  session: string;
  secret: string | Buffer;
  /** host:port of the coordinator; without it, UDP discovery by session name */
  coordinator?: { host: string; port: number };
  discoveryPort?: number;
  discoveryTries?: number;
  /** shell command fed with the stream on stdin; without it the bytes are only checked and relayed */
  command?: string;
  /** wait for the coordinator's release before returning (ka-d-client -w) */
  waitRelease?: boolean;
  /** ask the coordinator to start now with the nodes it has (ka-d-client -g) */
  goNow?: boolean;
  /** port children connect to; 0 picks one */
  dataPort?: number;
  bindHost?: string;
  ringBytes?: number;
  name?: string;
  statsIntervalMs?: number;
  /** where this node's SHA-256 is computed (default auto: in this process, over the ring; openssl: `openssl dgst` on a pipe) */
  hash?: HashChoice;
  logger: Logger;
}

export interface NodeResult {
  nodeId: number | null;
  name: string;
  ok: boolean;
  bytes: number;
  /** bytes per second from the first byte to the last */
  rate: number;
  digestOk: boolean;
  digest: string | null;
  /** the consumer's exit code; null when it died by a signal or never ran */
  exitCode: number | null;
  durationMs: number;
  error: string | null;
  /** bytes that reached this node's children through it from the spool */
  childGapBytes: number;
  /** CPU time this process used from joining to the end (user + system), ms */
  cpuMs: number;
}

const CONTROL_MS = 15_000;

export async function joinSession(opts: JoinOptions): Promise<NodeResult> {
  const log = opts.logger;
  const name = opts.name ?? hostname();
  const key = secretKey(opts.secret);
  const ringBytes = opts.ringBytes ?? DEFAULT_RING_BYTES;

  const result: NodeResult = { nodeId: null, name, ok: false, bytes: 0, rate: 0, digestOk: false, digest: null, exitCode: null, durationMs: 0, error: null, childGapBytes: 0, cpuMs: 0 };
  const cpu0 = process.cpuUsage();
  const started = Date.now();
  let firstByteAt = 0;
  let lastByteAt = 0;

  let relay: Relay | null = null;
  let consumer: ShellProcess | null = null;
  let dataServer: DataServer | null = null;
  const statsTimer: { t?: NodeJS.Timeout } = {};

  let control: FramedConnection | null = null;
  const cleanup = async () => {
    if (statsTimer.t) clearInterval(statsTimer.t);
    relay?.close();
    await dataServer?.close();
    control?.close('session over');
  };

  try {
    const where = opts.coordinator ?? (await discover({ session: opts.session, port: opts.discoveryPort ?? DEFAULT_DISCOVERY_PORT, tries: opts.discoveryTries, logger: log }));
    // control connection and the mutual proof of the secret
    const socket = connect({ host: where.host, port: where.port, noDelay: true });
    const ctl = new FramedConnection(socket, { allow: isControlType });
    control = ctl;
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      ctl.onClose((r) => reject(new Error(`cannot reach the coordinator at ${where.host}:${where.port}: ${r}`)));
    });

    // the data server first: its port goes in HELLO
    let onAccepted: (a: Parameters<ConstructorParameters<typeof DataServer>[1]>[0]) => void = () => {};
    dataServer = new DataServer(log, (a) => onAccepted(a));
    const dataPort = await dataServer.listen(opts.dataPort ?? DEFAULT_DATA_PORT, opts.bindHost);

    const own = nonce();
    ctl.send({ type: 'HELLO', nonce: own, session: opts.session, nodeName: name.slice(0, 200), dataPort, wait: !!opts.waitRelease, goNow: !!opts.goNow });
    const ch = await ctl.next(CONTROL_MS);
    if (ch.type === 'REFUSE') throw new Error(`coordinator refused: ${ch.reason}`);
    if (ch.type !== 'CHALLENGE') throw new Error(`expected CHALLENGE, got ${ch.type}`);
    // our proof goes first, so a coordinator with the real secret can log a node with a wrong one
    ctl.send({ type: 'AUTH', proof: proof(key, 'node', opts.session, own, ch.nonce) });
    const welcome = await ctl.next(CONTROL_MS);
    if (!proofMatches(proof(key, 'coordinator', opts.session, ch.nonce, own), ch.proof)) {
      const said = welcome.type === 'REFUSE' ? `; it refused ours: ${welcome.reason}` : '';
      throw new Error(`the coordinator could not prove the session secret (impostor, or another secret)${said}`);
    }
    if (welcome.type === 'REFUSE') throw new Error(`coordinator refused: ${welcome.reason}`);
    if (welcome.type !== 'WELCOME') throw new Error(`expected WELCOME, got ${welcome.type}`);
    const nodeId = welcome.nodeId;
    result.nodeId = nodeId;
    log.info({ nodeId, coordinator: `${where.host}:${where.port}`, dataPort, session: opts.session }, 'ka: joined the session');

    // the consumer runs from now on, reading the stream on its stdin
    if (opts.command) {
      consumer = runShell(opts.command, ['pipe', 'inherit', 'inherit']);
      consumer.child.stdin?.on('error', (e) => log.warn({ err: e.message }, 'ka: consumer stdin closed early'));
    }

    const spoolReader = () => new RemoteSpoolReader({ host: where.host, port: welcome.dataPort, linkId: welcome.spoolLinkId, token: welcome.spoolToken, logger: log });
    let upstream: FramedConnection | null = null;
    let upstreamGen = 0;
    const childReaders = new Set<string>();
    let released = false;
    let resultSent = false;
    let consumerDone: Promise<void> = Promise.resolve();

    const done = new Promise<void>((resolveDone, rejectDone) => {
      const r = new Relay(
        { ringBytes, gapReader: spoolReader, hasher: hasherFor(opts.hash) },
        {
          pause: () => upstream?.socket.pause(),
          resume: () => upstream?.socket.resume(),
          readerFailed: (k, reason) => {
            log.warn({ reader: k, reason }, 'ka: reader dropped');
            if (k.startsWith('child:')) childReaders.delete(k);
          },
          readerDone: (k) => {
            if (k.startsWith('child:')) childReaders.delete(k);
            maybeLeave();
          },
          complete: ({ total, digestOk, digest }) => {
            lastByteAt = Date.now();
            result.bytes = total;
            result.digestOk = digestOk;
            result.digest = digest.toString('hex');
            log.info({ total, digestOk, ringInUse: r.ring.inUse }, digestOk ? 'ka: stream complete, SHA-256 matches' : 'ka: stream complete, SHA-256 MISMATCH');
            consumerDone.then(() => {
              result.durationMs = Date.now() - started;
              result.rate = lastByteAt > firstByteAt ? (total * 1000) / (lastByteAt - firstByteAt) : 0;
              result.ok = result.digestOk && (opts.command ? result.exitCode === 0 : true);
              ctl.send({ type: 'RESULT', bytes: total, digestOk: result.digestOk, exitCode: opts.command ? (result.exitCode ?? -1) : 0, durationMs: result.durationMs, digest });
              resultSent = true;
              maybeLeave();
            }, rejectDone);
          },
        },
      );
      relay = r;

      if (consumer?.child.stdin) {
        r.addReader('consumer', new StdinSink(consumer.child.stdin), 0, 'blocking');
        const c = consumer.exited;
        consumerDone = c.then((res) => {
          result.exitCode = typeof res.exitCode === 'number' ? res.exitCode : null;
          if (res.exitCode !== 0) log.warn({ exitCode: res.exitCode, signal: res.signal, err: res.error }, 'ka: consumer failed');
          else log.info('ka: consumer finished');
        });
        // a consumer that exits early stops holding the ring; the node still relays
        c.then(() => r.removeReader('consumer', 'consumer exited'));
      }

      const maybeLeave = () => {
        if (!resultSent) return;
        if (opts.waitRelease && !released) return;
        if (!opts.waitRelease && childReaders.size > 0) return;
        resolveDone();
      };

      onAccepted = ({ link, conn, offset }) => {
        const k = `child:${link.childId}:${link.linkId}`;
        if (!r.attachSink(k, new SocketSink(conn.socket), offset)) {
          conn.close('link no longer expected');
          return;
        }
        log.info({ child: link.childId, offset, from: offset >= r.ring.start ? 'ring' : 'spool' }, 'ka: child connected');
        conn.onClose((why) => {
          if (r.hasReader(k)) {
            log.info({ child: link.childId, why }, 'ka: child link closed');
            childReaders.delete(k);
            r.removeReader(k, why);
            maybeLeave();
          }
        });
      };

      const attach = async (f: FrameOf<'ATTACH'>) => {
        const gen = ++upstreamGen;
        upstream?.close('re-attached');
        upstream = null;
        const from = r.end;
        let conn: FramedConnection;
        try {
          conn = await connectLink({ host: f.host, port: f.port, linkId: f.linkId, token: f.token, offset: from });
        } catch (e) {
          log.warn({ parent: f.parentId, err: e instanceof Error ? e.message : String(e) }, 'ka: cannot open the data link to the parent');
          if (gen === upstreamGen) ctl.send({ type: 'LINK_LOST', linkId: f.linkId, offset: r.end });
          return;
        }
        if (gen !== upstreamGen) {
          conn.close('superseded');
          return;
        }
        upstream = conn;
        log.info({ parent: f.parentId, at: `${f.host}:${f.port}`, offset: from, mode: f.mode }, 'ka: data link to parent open');
        ctl.send({ type: 'LINKED', linkId: f.linkId, offset: from });
        if (r.paused) conn.socket.pause();
        // DATA is read straight into the ring; the offset of each frame is checked first
        conn.setDataTarget({
          begin: (offset, length) => {
            if (offset !== r.end || (r.total !== null && offset + length > r.total)) {
              conn.close(`parent sent offset ${offset}, expected ${r.end}`);
              return false;
            }
            if (firstByteAt === 0) firstByteAt = Date.now();
            return true;
          },
          reserve: (max) => r.reserveIn(max),
          commit: (n) => r.commitIn(n),
          spill: (offset, data) => r.ingest(offset, data),
        });
        conn.setHandler((ev) => {
          if (ev.kind === 'data') {
            if (ev.offset !== r.end || (r.total !== null && ev.offset + ev.data.length > r.total)) {
              conn.close(`parent sent offset ${ev.offset}, expected ${r.end}`);
              return;
            }
            if (firstByteAt === 0) firstByteAt = Date.now();
            if (!r.ingest(ev.offset, ev.data)) conn.socket.pause();
          } else if (ev.kind === 'error') {
            conn.close(`malformed frame from parent: ${ev.error.code} (${ev.error.detail})`);
          } else if (ev.frame.type === 'END') {
            if (ev.frame.total < r.end) {
              conn.close(`END at ${ev.frame.total} but ${r.end} bytes already received`);
              return;
            }
            r.finish(ev.frame.total, ev.frame.digest);
          } else {
            conn.close(`unexpected ${ev.frame.type} on a data link`);
          }
        });
        conn.onClose((why) => {
          if (gen !== upstreamGen) return;
          upstream = null;
          if (r.isComplete) return;
          log.warn({ parent: f.parentId, why, offset: r.end }, 'ka: lost the parent');
          ctl.send({ type: 'LINK_LOST', linkId: f.linkId, offset: r.end });
        });
      };

      ctl.setHandler((ev) => {
        if (ev.kind !== 'frame') {
          rejectDone(new Error(ev.kind === 'error' ? `malformed control frame: ${ev.error.code}` : 'DATA on the control channel'));
          return;
        }
        const f = ev.frame;
        switch (f.type) {
          case 'ATTACH':
            void attach(f);
            break;
          case 'EXPECT_CHILD': {
            const k = `child:${f.childId}:${f.linkId}`;
            childReaders.add(k);
            r.addPendingReader(k, f.offset, f.mode);
            dataServer?.expect({ linkId: f.linkId, token: f.token, mode: f.mode, childId: f.childId, kind: 'child' });
            break;
          }
          case 'DROP_CHILD':
            for (const k of [...childReaders]) {
              if (k.startsWith(`child:${f.childId}:`)) {
                childReaders.delete(k);
                r.removeReader(k, 'dropped by the coordinator');
              }
            }
            maybeLeave();
            break;
          case 'RELEASE':
            released = true;
            log.info('ka: released by the coordinator');
            maybeLeave();
            if (!resultSent) rejectDone(new Error('released before the stream was complete'));
            break;
          case 'ABORT':
            rejectDone(new Error(`session aborted: ${f.reason}`));
            break;
          default:
            rejectDone(new Error(`unexpected ${f.type} from the coordinator`));
        }
      });
      ctl.onClose((why) => {
        if (resultSent) resolveDone();
        else rejectDone(new Error(`lost the coordinator: ${why}`));
      });

      statsTimer.t = setInterval(() => {
        const w = r.takeWindow();
        const cons = w.readers.get('consumer');
        ctl.send({
          type: 'STATS',
          position: r.end,
          ringStart: r.ring.start,
          fillPermille: Math.round(r.fill() * 1000),
          windowMs: opts.statsIntervalMs ?? 1000,
          bytesIn: w.bytesIn,
          consumerBytes: cons?.bytes ?? 0,
          consumerBlockedMs: Math.round(cons?.blockedMs ?? 0),
          pausedMs: Math.round(w.pausedMs),
          children: [...w.readers.entries()]
            .filter(([k]) => k.startsWith('child:'))
            .map(([k, v]) => ({ childId: Number(k.split(':')[1]), bytes: v.bytes, blockedMs: Math.round(v.blockedMs) })),
        });
      }, opts.statsIntervalMs ?? 1000);
    });

    await done;
    result.childGapBytes = relay ? (relay as Relay).gapBytesTotal : 0;
  } catch (e) {
    result.error = e instanceof Error ? e.message : String(e);
    result.ok = false;
    log.error({ err: result.error }, 'ka: node failed');
    if (consumer) {
      const c = consumer as ShellProcess;
      c.child.stdin?.destroy();
      const res = await Promise.race([c.exited, new Promise<null>((r) => setTimeout(() => r(null), 2000))]);
      if (res === null) c.child.kill('SIGKILL');
      else result.exitCode = typeof res.exitCode === 'number' ? res.exitCode : null;
    }
  } finally {
    result.durationMs = Date.now() - started;
    const cpu = process.cpuUsage(cpu0);
    result.cpuMs = Math.round((cpu.user + cpu.system) / 1000);
    await cleanup();
  }
  return result;
}

