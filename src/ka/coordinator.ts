// The coordinator of a session (kaboot ka-server, and `kaboot serve`): it answers
// discovery, admits nodes that prove the secret, builds the chain or tree, reads the
// source once into its own relay (spool first, then the first hop), watches the
// nodes' stats, repairs around dead nodes, moves slow ones to the tail, places late
// joiners, and collects every node's result.
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { FramedConnection, ConnectionClosed } from './connection.js';
import { isControlType, type Frame, type FrameOf, type ReadEvent } from './frames.js';
import { newToken, nonce, proof, proofMatches, secretKey } from './auth.js';
import { DiscoveryResponder, DEFAULT_DISCOVERY_PORT } from './discovery.js';
import { DataServer, type AcceptedLink } from './links.js';
import { Relay } from './relay.js';
import { SocketSink } from './sinks.js';
import { FileBackedSpool, Spool } from './spool.js';
import { FileSource } from './file-source.js';
import { runShell, type ShellProcess } from './shell.js';
import { defaultLiveness, heard, judge, newLiveness, progressed, silenceLimit, type LivenessPolicy, type LivenessState } from './liveness.js';
import { SOURCE_ID, buildTopology, planLateJoin, planMoveToTail, planRemoval, relayOrder, resumeSource, type Attachment, type Topology } from './topology.js';
import { SlowNodeTracker, defaultSlowPolicy, type NodeWindow, type SlowPolicy } from './slow-policy.js';
import { hasherFor, type HashChoice } from './hasher.js';
import { DEFAULT_CONTROL_PORT, DEFAULT_DATA_PORT, DEFAULT_RING_BYTES } from './node.js';

export type SourceSpec = { command: string } | { file: string } | { stream: Readable };

export interface SessionOptions {
  session: string;
  secret: string | Buffer;
  /** start when this many nodes have joined (ka-d-server -n) */
  expectedNodes: number;
  /** start anyway with the nodes present after this long; 0 or undefined waits for -n or a go-now */
  waitTimeoutMs?: number;
  /** delay between two releases at the end (ka-d-server -d, in ms here) */
  releaseDelayMs?: number;
  /** 1 = chain (default), k = tree of arity k */
  arity?: number;
  source: SourceSpec;
  controlPort?: number;
  dataPort?: number;
  /** null: no UDP discovery (nodes come with -c) */
  discoveryPort?: number | null;
  bindHost?: string;
  spoolDir?: string;
  keepSpool?: boolean;
  ringBytes?: number;
  /** a node silent for this long is dead (the floor: see liveness.ts) */
  deadAfterMs?: number;
  /** a node's silence limit is at least this many times the longest gap seen between its frames (default 3) */
  deadAfterGapFactor?: number;
  /** and at most this (default 60 s) */
  deadAfterMaxMs?: number;
  /** false disables the slow-node policy */
  slowPolicy?: Partial<SlowPolicy> | false;
  statsIntervalMs?: number;
  /** nodes joining after the start become the tail and catch up from the spool (default true) */
  lateJoin?: boolean;
  /** where the source's SHA-256 is computed (default auto: in this process) */
  hash?: HashChoice;
  logger: Logger;
}

export type NodeState = 'waiting' | 'running' | 'finished' | 'failed' | 'departed';

export interface NodeSummary {
  id: number;
  name: string;
  address: string;
  state: NodeState;
  ok: boolean;
  parent: number | null;
  mode: 'blocking' | 'detached';
  bytes: number;
  /** bytes per second, from the session start to this node's result */
  rate: number;
  digestOk: boolean | null;
  exitCode: number | null;
  durationMs: number | null;
  /** ms from the session start to the result */
  finishedAfterMs: number | null;
  error: string | null;
  movedToTail: number;
  relinks: number;
}

export interface SessionEvent {
  atMs: number;
  kind: 'joined' | 'refused' | 'started' | 'attached' | 'linked' | 'link-lost' | 'failed' | 'departed' | 'moved-to-tail' | 'shared-limit' | 'late-join' | 'finished' | 'source-ended' | 'released' | 'dropped-peer';
  node?: number;
  detail?: Record<string, unknown>;
}

export interface SessionResult {
  session: string;
  ok: boolean;
  total: number;
  digest: string | null;
  sourceExitCode: number | null;
  sourceError: string | null;
  /** ms from the start to the source's end */
  transferMs: number;
  /** ms from the source's end to the last result */
  pipelineEmptiedMs: number;
  throughput: number;
  nodes: NodeSummary[];
  refused: number;
  droppedPeers: number;
  /** bytes the source served from its spool (gaps behind its ring) */
  spoolGapBytes: number;
  /** CPU time of the coordinator process during the session (user + system), ms */
  cpuMs: number;
  events: SessionEvent[];
}

export interface NodeLiveStats {
  id: number;
  name: string;
  address: string;
  state: NodeState;
  parent: number | null;
  mode: 'blocking' | 'detached';
  position: number;
  ringStart: number;
  bufferFill: number;
  rate: number;
}

export interface SessionStats {
  session: string;
  state: 'waiting' | 'running' | 'draining' | 'done';
  expectedNodes: number;
  joined: number;
  bytesRead: number;
  spoolBytes: number;
  rate: number;
  sourceBufferFill: number;
  nodes: NodeLiveStats[];
}

export interface Session {
  controlPort: number;
  dataPort: number;
  stats(): SessionStats;
  /** start now with the nodes that have joined */
  goNow(): void;
  result: Promise<SessionResult>;
  /** abort: every node is told, the source is stopped */
  close(reason?: string): Promise<void>;
}

interface NodeRec {
  id: number;
  name: string;
  address: string;
  /** the coordinator's own address as this node reaches it */
  localAddress: string;
  dataPort: number;
  wait: boolean;
  conn: FramedConnection;
  state: NodeState;
  parent: number | null;
  mode: 'blocking' | 'detached';
  linkId: number;
  position: number;
  ringStart: number;
  fill: number;
  rate: number;
  live: LivenessState;
  window: FrameOf<'STATS'> | null;
  spoolLinkId: number;
  result: FrameOf<'RESULT'> | null;
  finishedAt: number | null;
  error: string | null;
  movedToTail: number;
  relinks: number;
  lostStreak: number;
  /** silent past the limit at the last tick; dropped if still silent at the next one */
  suspect: boolean;
}

const HANDSHAKE_MS = 10_000;
/** how far a file source is read ahead of the first hop (the ring then holds about that much, not --ring) */
const FILE_READ_AHEAD = 8 * 1024 * 1024;

function listen(server: Server, port: number, host?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    });
  });
}

export async function startSession(opts: SessionOptions): Promise<Session> {
  const log = opts.logger;
  const key = secretKey(opts.secret);
  const arity = opts.arity ?? 1;
  const statsMs = opts.statsIntervalMs ?? 1000;
  const liveness: LivenessPolicy = {
    deadAfterMs: opts.deadAfterMs ?? 5000,
    gapFactor: opts.deadAfterGapFactor ?? defaultLiveness.gapFactor,
    maxDeadAfterMs: opts.deadAfterMaxMs ?? defaultLiveness.maxDeadAfterMs,
  };
  const t0 = Date.now();
  const cpu0 = process.cpuUsage();
  const cpuNow = () => {
    const c = process.cpuUsage(cpu0);
    return Math.round((c.user + c.system) / 1000);
  };
  const events: SessionEvent[] = [];
  let noisyEvents = 0;
  const event = (kind: SessionEvent['kind'], node?: number, detail?: Record<string, unknown>) => {
    // a flood of bad peers is counted, not kept one by one
    if ((kind === 'dropped-peer' || kind === 'refused') && ++noisyEvents > 100) return;
    events.push({ atMs: Date.now() - t0, kind, node, detail });
  };

  // a file source is its own spool; a command's or a stream's output is written to one
  let relayEnd = () => 0;
  const fileSource = 'file' in opts.source ? opts.source.file : null;
  // without a spoolDir the session makes its own folder, and removes it with the spool
  const ownSpoolDir = fileSource || opts.spoolDir ? undefined : mkdtempSync(join(tmpdir(), 'kaboot-ka-spool-'));
  const spool: Spool | FileBackedSpool = fileSource
    ? await FileBackedSpool.open(fileSource, () => relayEnd())
    : await Spool.create(join(opts.spoolDir ?? ownSpoolDir!, `${opts.session.replace(/[^A-Za-z0-9_.-]/g, '_')}-${process.pid}.spool`));
  const nodes = new Map<number, NodeRec>();
  let nextNodeId = 1;
  let nextLinkId = 1;
  let topology: Topology = buildTopology([], arity);
  let started = false;
  let startedAt = 0;
  let sourceEndedAt = 0;
  let sourceExitCode: number | null = null;
  let sourceError: string | null = null;
  let total = 0;
  let digest: Buffer | null = null;
  let sessionState: SessionStats['state'] = 'waiting';
  let refused = 0;
  let droppedPeers = 0;
  let sourceRate = 0;
  let sourceProc: ShellProcess | null = null;
  let sourceStream: Readable | null = null;
  let fileReader: FileSource | null = null;
  const tracker = opts.slowPolicy === false ? null : new SlowNodeTracker({ ...defaultSlowPolicy, ...(opts.slowPolicy ?? {}) });

  let resolveResult: (r: SessionResult) => void = () => {};
  const result = new Promise<SessionResult>((r) => (resolveResult = r));

  const relay = new Relay(
    {
      ringBytes: opts.ringBytes ?? DEFAULT_RING_BYTES,
      gapReader: () => spool.gapReader(),
      hasher: hasherFor(opts.hash),
      // a file can be read again at any time (it is the spool): reading far ahead of the first hop only touches memory
      readAhead: fileSource !== null ? FILE_READ_AHEAD : undefined,
    },
    {
      pause: () => (fileReader ?? sourceStream)?.pause(),
      resume: () => (fileReader ?? sourceStream)?.resume(),
      readerFailed: (k, reason) => log.warn({ reader: k, reason }, 'ka: source reader dropped'),
    },
  );
  relayEnd = () => relay.end;
  if (spool instanceof Spool) {
    relay.addReader('spool', spool, 0, 'blocking', true);
    spool.onWritten = () => relay.pumpAll();
  }

  const serving = (id: number) => {
    if (id === SOURCE_ID) return true;
    const n = nodes.get(id);
    return !!n && (n.state === 'running' || n.state === 'finished') && !n.conn.closedReason;
  };
  const sourceKey = (childId: number, linkId: number) => `child:${childId}:${linkId}`;

  // ---- data links into the source ----
  let spoolSeq = 0;
  const dataServer = new DataServer(log, (a: AcceptedLink) => {
    const { link, conn, offset } = a;
    if (link.kind === 'spool') {
      const k = `spool:${link.childId}:${++spoolSeq}`;
      relay.addReader(k, new SocketSink(conn.socket), offset, 'detached');
      log.info({ node: link.childId, offset }, 'ka: spool link open (gap from the spool)');
      conn.onClose(() => relay.removeReader(k, 'spool link closed'));
      return;
    }
    const k = sourceKey(link.childId, link.linkId);
    if (!relay.attachSink(k, new SocketSink(conn.socket), offset)) {
      conn.close('link no longer expected');
      return;
    }
    log.info({ child: link.childId, offset, from: resumeSource(offset, relay.ring.start) }, 'ka: child connected to the source');
    conn.onClose((why) => {
      if (relay.hasReader(k)) relay.removeReader(k, why);
    });
  });
  const dataPort = await dataServer.listen(opts.dataPort ?? DEFAULT_DATA_PORT, opts.bindHost);

  // ---- topology changes ----
  const dropChild = (parentId: number | null, childId: number) => {
    if (parentId === null) return;
    if (parentId === SOURCE_ID) {
      for (const r of relay.readerStats()) if (r.key.startsWith(`child:${childId}:`)) relay.removeReader(r.key, 'dropped');
      return;
    }
    const p = nodes.get(parentId);
    if (p && !p.conn.closedReason) p.conn.send({ type: 'DROP_CHILD', childId });
  };

  const apply = (att: Attachment) => {
    const child = nodes.get(att.child);
    if (!child || child.state === 'failed' || child.state === 'departed' || child.conn.closedReason) return;
    const parentRec = att.parent === SOURCE_ID ? null : nodes.get(att.parent);
    if (att.parent !== SOURCE_ID && (!parentRec || !serving(att.parent))) return;
    dropChild(child.parent, child.id);
    if (child.parent !== null) child.relinks++;
    const linkId = nextLinkId++;
    const token = newToken();
    child.parent = att.parent;
    child.mode = att.mode;
    child.linkId = linkId;
    if (parentRec) {
      parentRec.conn.send({ type: 'EXPECT_CHILD', linkId, childId: child.id, token, mode: att.mode, offset: child.position });
    } else {
      dataServer.expect({ linkId, token, mode: att.mode, childId: child.id, kind: 'child' });
      relay.addPendingReader(sourceKey(child.id, linkId), child.position, att.mode);
    }
    child.conn.send({
      type: 'ATTACH',
      linkId,
      token,
      mode: att.mode,
      host: parentRec ? parentRec.address : child.localAddress,
      port: parentRec ? parentRec.dataPort : dataPort,
      parentId: att.parent,
    });
    event('attached', child.id, { parent: att.parent, mode: att.mode, linkId });
    log.info({ node: child.id, parent: att.parent, mode: att.mode }, att.parent === SOURCE_ID ? 'ka: added node, daddy = source' : `ka: added node ${child.id}, daddy = ${att.parent}`);
  };

  const nodeGone = (n: NodeRec, reason: string) => {
    if (n.state === 'failed' || n.state === 'departed') return;
    const failed = n.state !== 'finished';
    const inRelay = n.state !== 'waiting';
    n.state = failed ? 'failed' : 'departed';
    if (failed) n.error = reason;
    event(failed ? 'failed' : 'departed', n.id, { reason });
    if (failed) log.warn({ node: n.id, name: n.name, reason }, 'ka: node failed');
    else log.info({ node: n.id, name: n.name }, 'ka: node left');
    dataServer.forget(n.spoolLinkId);
    if (inRelay && topology.parent.has(n.id)) {
      dropChild(n.parent, n.id);
      const plan = planRemoval(topology, n.id, serving);
      topology = plan.topology;
      for (const a of plan.attach) apply(a);
    }
    tracker?.forget(n.id);
    checkDone();
  };

  // ---- control connections ----
  const controlServer = createServer({ noDelay: true }, (socket) => void admit(socket));
  const controlSockets = new Set<Socket>();

  const admit = async (socket: Socket) => {
    controlSockets.add(socket);
    socket.on('close', () => controlSockets.delete(socket));
    const conn = new FramedConnection(socket, { allow: isControlType });
    try {
      const hello = await conn.next(HANDSHAKE_MS);
      if (hello.type !== 'HELLO') throw new ConnectionClosed(`expected HELLO, got ${hello.type}`);
      if (hello.session !== opts.session) {
        conn.send({ type: 'REFUSE', code: 404, reason: 'no such session here' });
        throw new ConnectionClosed(`asked for session "${hello.session}"`);
      }
      const own = nonce();
      conn.send({ type: 'CHALLENGE', nonce: own, proof: proof(key, 'coordinator', opts.session, own, hello.nonce) });
      const auth = await conn.next(HANDSHAKE_MS);
      if (auth.type !== 'AUTH') throw new ConnectionClosed(`expected AUTH, got ${auth.type}`);
      if (!proofMatches(proof(key, 'node', opts.session, hello.nonce, own), auth.proof)) {
        refused++;
        event('refused', undefined, { peer: conn.remoteAddress, reason: 'wrong secret' });
        log.warn({ peer: conn.remoteAddress, name: hello.nodeName }, 'ka: node refused: wrong secret');
        conn.send({ type: 'REFUSE', code: 401, reason: 'wrong secret' });
        setTimeout(() => conn.close('wrong secret'), 50);
        return;
      }
      if (sessionState === 'done' || (started && opts.lateJoin === false)) {
        conn.send({ type: 'REFUSE', code: 409, reason: started ? 'session already started' : 'session over' });
        setTimeout(() => conn.close('refused'), 50);
        return;
      }
      const id = nextNodeId++;
      const spoolLinkId = nextLinkId++;
      const spoolToken = newToken();
      dataServer.expect({ linkId: spoolLinkId, token: spoolToken, mode: 'detached', childId: id, kind: 'spool' });
      const n: NodeRec = {
        id,
        name: hello.nodeName,
        address: conn.remoteAddress,
        localAddress: (socket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, ''),
        dataPort: hello.dataPort,
        wait: hello.wait,
        conn,
        state: 'waiting',
        parent: null,
        mode: 'blocking',
        linkId: 0,
        position: 0,
        ringStart: 0,
        fill: 0,
        rate: 0,
        live: newLiveness(Date.now()),
        window: null,
        spoolLinkId,
        result: null,
        finishedAt: null,
        error: null,
        movedToTail: 0,
        relinks: 0,
        lostStreak: 0,
        suspect: false,
      };
      nodes.set(id, n);
      conn.send({ type: 'WELCOME', nodeId: id, running: started, dataPort, spoolLinkId, spoolToken });
      event('joined', id, { name: n.name, address: n.address });
      log.info({ node: id, name: n.name, address: n.address, joined: nodes.size, want: opts.expectedNodes }, 'ka: client says hello');
      conn.setHandler((ev) => onFrame(n, ev));
      conn.onClose((why) => {
        if (n.state === 'waiting') {
          n.state = 'departed';
          event('departed', n.id, { reason: why });
          return;
        }
        nodeGone(n, `control connection closed: ${why}`);
      });
      if (started) {
        n.state = 'running';
        const plan = planLateJoin(topology, id, serving);
        topology = plan.topology;
        event('late-join', id);
        log.info({ node: id }, 'ka: late joiner becomes the tail');
        for (const a of plan.attach) apply(a);
      } else if (hello.goNow) {
        log.info({ node: id }, 'ka: node asks to go now');
        go();
      } else if ([...nodes.values()].filter((x) => x.state === 'waiting').length >= opts.expectedNodes) {
        go();
      }
    } catch (e) {
      droppedPeers++;
      const reason = e instanceof Error ? e.message : String(e);
      event('dropped-peer', undefined, { peer: conn.remoteAddress, reason });
      log.warn({ peer: conn.remoteAddress, reason }, 'ka: control peer dropped');
      conn.close(reason);
    }
  };

  const onFrame = (n: NodeRec, ev: ReadEvent) => {
    if (ev.kind !== 'frame') {
      droppedPeers++;
      const reason = ev.kind === 'error' ? `malformed control frame: ${ev.error.code} (${ev.error.detail})` : 'DATA on the control channel';
      event('dropped-peer', n.id, { reason });
      n.conn.close(reason);
      return;
    }
    const f: Frame = ev.frame;
    const now = Date.now();
    heard(n.live, now);
    n.suspect = false;
    switch (f.type) {
      case 'STATS':
        if (f.position > n.position) progressed(n.live, now);
        // the bytes it sent its children are signs of their life, whatever their own silence
        for (const c of f.children) {
          const child = nodes.get(c.childId);
          if (child && c.bytes > 0) progressed(child.live, now);
        }
        n.position = f.position;
        n.ringStart = f.ringStart;
        n.fill = f.fillPermille / 1000;
        n.rate = f.windowMs > 0 ? (f.bytesIn * 1000) / f.windowMs : 0;
        n.window = f;
        if (f.bytesIn > 0) n.lostStreak = 0;
        return;
      case 'LINKED': {
        const parentStart = n.parent === SOURCE_ID ? relay.ring.start : (nodes.get(n.parent ?? -1)?.ringStart ?? 0);
        n.position = f.offset;
        event('linked', n.id, { parent: n.parent, offset: f.offset, from: resumeSource(f.offset, parentStart) });
        return;
      }
      case 'LINK_LOST': {
        if (f.linkId !== n.linkId || n.state !== 'running') return;
        n.position = f.offset;
        n.lostStreak++;
        event('link-lost', n.id, { parent: n.parent, offset: f.offset });
        const linkId = n.linkId;
        // the parent may be dying: give its control connection a moment to say so
        setTimeout(() => {
          if (n.linkId !== linkId || n.state !== 'running' || n.conn.closedReason) return;
          const parent = n.lostStreak > 3 || n.parent === null || !serving(n.parent) ? SOURCE_ID : n.parent;
          if (parent === SOURCE_ID && n.parent !== SOURCE_ID) topology.parent.set(n.id, SOURCE_ID);
          apply({ child: n.id, parent, mode: n.mode });
        }, 300);
        return;
      }
      case 'RESULT':
        if (n.state !== 'running') return;
        n.result = f;
        n.position = f.bytes;
        n.state = 'finished';
        n.finishedAt = Date.now();
        event('finished', n.id, { bytes: f.bytes, digestOk: f.digestOk, exitCode: f.exitCode });
        log.info({ node: n.id, bytes: f.bytes, digestOk: f.digestOk, exitCode: f.exitCode }, 'ka: client has finished transfer');
        checkDone();
        return;
      case 'GO_NOW':
        if (!started) go();
        return;
      default:
        droppedPeers++;
        event('dropped-peer', n.id, { reason: `unexpected ${f.type}` });
        n.conn.close(`unexpected ${f.type} from a node`);
    }
  };

  // ---- start, source, end ----
  const go = () => {
    if (started) return;
    const pool = [...nodes.values()].filter((n) => n.state === 'waiting');
    if (pool.length === 0) return;
    started = true;
    startedAt = Date.now();
    sessionState = 'running';
    topology = buildTopology(relayOrder(pool), arity);
    for (const n of pool) n.state = 'running';
    event('started', undefined, { nodes: pool.length, order: topology.order });
    log.info({ nodes: pool.length, order: topology.order, arity }, "ka: let's go!");
    for (const id of topology.order) apply({ child: id, parent: topology.parent.get(id) ?? SOURCE_ID, mode: 'blocking' });
    startSource();
  };

  const startSource = () => {
    const src = opts.source;
    if ('command' in src) {
      sourceProc = runShell(src.command, ['ignore', 'pipe', 'inherit']);
      sourceStream = sourceProc.child.stdout as Readable;
      sourceProc.exited.then((r) => {
        sourceExitCode = typeof r.exitCode === 'number' ? r.exitCode : null;
        if (r.exitCode !== 0) {
          sourceError = `source command exited with ${r.exitCode ?? r.signal}`;
          log.error({ exitCode: r.exitCode, signal: r.signal }, 'ka: source command failed');
        }
        checkDone();
      });
    } else if ('file' in src) {
      // read into the ring itself
      FileSource.open(src.file, relay, { end: sourceEnded, error: sourceFailed }).then(
        (f) => {
          if (shut) {
            void f.close();
            return;
          }
          fileReader = f;
          if (relay.paused) f.pause();
          f.start();
        },
        (e: unknown) => sourceFailed(e instanceof Error ? e : new Error(String(e))),
      );
      return;
    } else {
      sourceStream = src.stream;
    }
    const s = sourceStream;
    s.on('data', (chunk: Buffer) => {
      if (!relay.ingest(relay.end, chunk)) s.pause();
    });
    s.on('error', sourceFailed);
    s.on('end', sourceEnded);
    if (relay.paused) s.pause();
  };

  const sourceFailed = (e: Error) => {
    sourceError = `source: ${e.message}`;
    log.error({ err: e.message }, 'ka: source read error');
    void close(sourceError);
  };

  const sourceEnded = () => {
    sourceEndedAt = Date.now();
    if (spool instanceof Spool) spool.end();
    relay.finishAsSource().then(
      (fin) => {
        total = fin.total;
        digest = fin.digest;
        event('source-ended', undefined, { total, digest: fin.digest.toString('hex') });
        log.info({ total, digest: fin.digest.toString('hex'), ringInUse: relay.ring.inUse }, 'ka: end of data flow');
        checkDone();
      },
      (e: unknown) => void close(`hashing the source failed: ${e instanceof Error ? e.message : String(e)}`),
    );
  };

  const summaries = (): NodeSummary[] =>
    [...nodes.values()]
      .filter((n) => n.state !== 'departed' || n.result)
      .map((n) => {
        const r = n.result;
        const ok = !!r && r.digestOk && r.exitCode === 0 && (n.state === 'finished' || n.state === 'departed');
        return {
          id: n.id,
          name: n.name,
          address: n.address,
          state: n.state,
          ok,
          parent: n.parent,
          mode: n.mode,
          bytes: r ? r.bytes : n.position,
          rate: r && n.finishedAt && startedAt ? (r.bytes * 1000) / Math.max(1, n.finishedAt - startedAt) : 0,
          digestOk: r ? r.digestOk : null,
          exitCode: r ? r.exitCode : null,
          durationMs: r ? r.durationMs : null,
          finishedAfterMs: n.finishedAt && startedAt ? n.finishedAt - startedAt : null,
          error: n.error,
          movedToTail: n.movedToTail,
          relinks: n.relinks,
        };
      });

  let finishing = false;
  const checkDone = () => {
    if (!started || finishing) return;
    const sourceDone = sourceEndedAt > 0 && digest !== null && (!('command' in opts.source) || sourceExitCode !== null || sourceError !== null);
    if (!sourceDone) return;
    const open = [...nodes.values()].filter((n) => n.state === 'running');
    if (open.length > 0) return;
    finishing = true;
    void finish();
  };

  /** The session's result from what differs between a finished and an aborted session; ok is decided by the caller. */
  const sessionResult = (r: Pick<SessionResult, 'total' | 'digest' | 'sourceError' | 'transferMs' | 'pipelineEmptiedMs' | 'throughput'>): SessionResult => ({
    session: opts.session,
    ok: false,
    sourceExitCode,
    nodes: summaries(),
    refused,
    droppedPeers,
    spoolGapBytes: relay.gapBytesTotal,
    cpuMs: cpuNow(),
    events,
    ...r,
  });

  const finish = async () => {
    sessionState = 'draining';
    const lastAt = Math.max(sourceEndedAt, ...[...nodes.values()].map((n) => n.finishedAt ?? 0));
    // release the nodes that wait for it, one every releaseDelayMs (spreads their next step)
    for (const id of topology.order) {
      const n = nodes.get(id);
      if (!n || !n.wait || n.state !== 'finished' || n.conn.closedReason) continue;
      n.conn.send({ type: 'RELEASE' });
      event('released', n.id);
      if (opts.releaseDelayMs) await new Promise((r) => setTimeout(r, opts.releaseDelayMs));
    }
    const transferMs = (sourceEndedAt || Date.now()) - (startedAt || t0);
    const res = sessionResult({
      total,
      digest: digest ? (digest as Buffer).toString('hex') : null,
      sourceError,
      transferMs,
      pipelineEmptiedMs: Math.max(0, lastAt - sourceEndedAt),
      throughput: transferMs > 0 ? (total * 1000) / transferMs : 0,
    });
    res.ok = res.nodes.length > 0 && res.nodes.every((n) => n.ok) && !sourceError;
    await shutdown(false);
    sessionState = 'done';
    resolveResult(res);
  };

  let shut = false;
  const shutdown = async (abort: boolean) => {
    if (shut) return;
    shut = true;
    clearInterval(tick);
    if (waitTimer) clearTimeout(waitTimer);
    discovery?.close();
    // give nodes a moment to read their RELEASE before the sockets go
    if (!abort) await new Promise((r) => setTimeout(r, 100));
    for (const s of controlSockets) s.destroy();
    await new Promise<void>((r) => controlServer.close(() => r()));
    relay.close();
    await dataServer.close();
    if (sourceProc?.running()) sourceProc.child.kill('SIGTERM');
    await fileReader?.close();
    await (spool instanceof Spool ? spool.close(!opts.keepSpool) : spool.close());
    if (ownSpoolDir && !opts.keepSpool) await rm(ownSpoolDir, { recursive: true, force: true }).catch(() => undefined);
  };

  const close = async (reason = 'aborted') => {
    if (shut) return;
    for (const n of nodes.values()) if (!n.conn.closedReason) n.conn.send({ type: 'ABORT', reason: reason.slice(0, 200) });
    sessionState = 'done';
    finishing = true;
    await shutdown(true);
    resolveResult(sessionResult({
      total: relay.end,
      digest: null,
      sourceError: sourceError ?? reason,
      transferMs: Date.now() - (startedAt || t0),
      pipelineEmptiedMs: 0,
      throughput: 0,
    }));
  };

  // ---- periodic: stats window, dead and slow nodes ----
  let lastTick = Date.now();
  const tick = setInterval(() => {
    const now = Date.now();
    // if this process itself was stalled (a loaded host), the nodes' stats are still
    // unread in the socket buffers: silence is only judged on time this process ran
    const stalled = now - lastTick > 2 * statsMs;
    lastTick = now;
    const w = relay.takeWindow();
    sourceRate = (w.bytesIn * 1000) / statsMs;
    for (const n of nodes.values()) {
      // bytes the source sent a node in this window: it is moving
      if (n.parent === SOURCE_ID && (w.readers.get(sourceKey(n.id, n.linkId))?.bytes ?? 0) > 0) progressed(n.live, now);
      if (stalled) {
        n.live.lastSeen = Math.max(n.live.lastSeen, now - statsMs);
        continue;
      }
      if (n.state !== 'running' && n.state !== 'finished') continue;
      const verdict = judge(liveness, n.live, now);
      if (verdict === 'silent-but-moving' && !n.suspect) {
        log.info({ node: n.id, silentMs: now - n.live.lastSeen }, 'ka: node silent, but its data still moves');
        n.suspect = true;
      }
      if (verdict === 'dead') {
        // judged again at the next tick, after this loop has read what is pending
        if (!n.suspect) {
          n.suspect = true;
          continue;
        }
        const silentMs = now - n.live.lastSeen;
        log.warn({ node: n.id, silentMs, limitMs: silenceLimit(liveness, n.live) }, 'ka: node silent, dropping it');
        n.conn.close(`silent for ${silentMs} ms`);
      }
    }
    if (stalled) return;
    if (!tracker || !started) return;
    const windows: NodeWindow[] = [];
    for (const n of nodes.values()) {
      if (n.state !== 'running' || !n.window || n.parent === null) continue;
      let linkBytes = 0;
      let linkBlockedMs = 0;
      if (n.parent === SOURCE_ID) {
        const r = w.readers.get(sourceKey(n.id, n.linkId));
        if (!r) continue;
        linkBytes = r.bytes;
        linkBlockedMs = r.blockedMs;
      } else {
        const p = nodes.get(n.parent);
        const c = p?.window?.children.find((x) => x.childId === n.id);
        if (!c) continue;
        linkBytes = c.bytes;
        linkBlockedMs = c.blockedMs;
      }
      windows.push({ id: n.id, parent: n.parent, linkBytes, linkBlockedMs, consumerBytes: n.window.consumerBytes, consumerBlockedMs: n.window.consumerBlockedMs, pausedMs: n.window.pausedMs, windowMs: statsMs });
    }
    for (const n of nodes.values()) n.window = null;
    const ceilingBefore = tracker.ceiling;
    const { slow, capacities } = tracker.observe(windows, (id) => nodes.get(id)?.mode === 'blocking' && nodes.get(id)?.state === 'running');
    if (tracker.ceiling !== ceilingBefore) {
      event('shared-limit', undefined, { ceiling: tracker.ceiling });
      log.info({ ceiling: tracker.ceiling }, 'ka: the last move did not speed the chain up: the limit is shared, nodes near it stay in place');
    }
    for (const id of slow) {
      const n = nodes.get(id);
      if (!n) continue;
      const plan = planMoveToTail(topology, id, serving);
      topology = plan.topology;
      n.movedToTail++;
      event('moved-to-tail', id, { capacity: capacities.get(id), capacities: Object.fromEntries(capacities) });
      log.warn({ node: id, capacity: capacities.get(id) }, 'ka: slow node moved to the tail');
      for (const a of plan.attach) apply(a);
    }
  }, statsMs);

  const controlPort = await listen(controlServer, opts.controlPort ?? DEFAULT_CONTROL_PORT, opts.bindHost);
  let discovery: DiscoveryResponder | null = null;
  if (opts.discoveryPort !== null) {
    discovery = new DiscoveryResponder({ session: opts.session, controlPort, logger: log });
    await discovery.bind(opts.discoveryPort ?? DEFAULT_DISCOVERY_PORT);
  }
  let waitTimer: NodeJS.Timeout | undefined;
  if (opts.waitTimeoutMs) {
    waitTimer = setTimeout(() => {
      if (started) return;
      if ([...nodes.values()].some((n) => n.state === 'waiting')) {
        log.info('ka: wait timeout, starting with the nodes present');
        go();
      } else void close('no node joined before the timeout');
    }, opts.waitTimeoutMs);
  }
  log.info({ session: opts.session, controlPort, dataPort, want: opts.expectedNodes, spool: spool.path }, `ka: I want ${opts.expectedNodes} clients`);

  return {
    controlPort,
    dataPort,
    result,
    goNow: () => go(),
    close,
    stats: (): SessionStats => ({
      session: opts.session,
      state: sessionState,
      expectedNodes: opts.expectedNodes,
      joined: nodes.size,
      bytesRead: relay.end,
      spoolBytes: spool.size,
      rate: sourceRate,
      sourceBufferFill: relay.fill(),
      nodes: [...nodes.values()].map((n) => ({
        id: n.id,
        name: n.name,
        address: n.address,
        state: n.state,
        parent: n.parent,
        mode: n.mode,
        position: n.position,
        ringStart: n.ringStart,
        bufferFill: n.fill,
        rate: n.rate,
      })),
    }),
  };
}
