// The deployments of one appliance: creates them (checks, sessions, registry), recruits
// unknown nodes in count mode, answers a node's plan, follows the nodes' status and the
// sessions' results, and finishes, fails or cancels them. Every change is on disk
// (state_dir/deployments/<id>.json) before it is answered.
//
// A deployment that was waiting or running when the appliance stopped cannot resume: its
// coordinators and the nodes' streams died with the process. It is reloaded as failed
// ("appliance restarted"), its unfinished nodes failed and left on kamethod.
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import type { Logger } from 'pino';
import type { SessionResult } from '../ka/index.js';
import { ImageStore, ImageStoreError } from '../images/store.js';
import { checkImageName, type ImageManifest } from '../images/manifest.js';
import { normalizeMac, type NodeRecord, type NodeRegistry, type NodeState } from '../nodes/registry.js';
import { formatLogLine, type NodeLogs } from '../nodes/node-logs.js';
import {
  DeploymentRequest, isActive, newDeploymentId, newDeploymentToken, nodeDone,
  type DeployNode, type Deployment,
} from './deployment.js';
import { DeploymentStore } from './store.js';
import { bootCodeFor, buildPlan, deploymentLayout, hostnameFor, PolicyError, type Firmware, type PlanSessions } from './policy.js';
import { planSessions, sessionSources, sha256OfFile, startSessions, SessionSetupError, type RunningSession } from './sessions.js';
import { summaryRows } from './summary.js';
import { CommandQueue } from './commands.js';
import type { DeployPlan } from './plan.js';
import type { IncomingMessage } from 'node:http';
import { liveBootCode, liveManifest } from './live.js';
import { LiveFeedError, type FeedStatus } from './live-feed.js';
import { LiveKeeper } from './live-keep.js';

export class DeployError extends Error {
  override name = 'DeployError';
  constructor(readonly code: 'bad-request' | 'not-found' | 'conflict', message: string) {
    super(message);
  }
}

export interface DeploymentManagerDeps {
  stateDir: string;
  imagesDir: string;
  nodes: NodeRegistry;
  logs: NodeLogs;
  logger: Logger;
  /** address the coordinators listen on (all when absent) */
  bindHost?: string;
  /** how often waiting sessions are looked at (ms) */
  tickMs?: number;
}

export const STAGE2_FILE = 'stage2.sqfs';
const DEFAULT_WAIT_S = 120;

interface Runtime {
  sessions: RunningSession[];
  closing: boolean;
  /** live deployments: the last poll or upload of the golden (ms epoch) */
  goldenSeenAt?: number;
  /** --keep NAME: the image stored from the uploads */
  keeper?: LiveKeeper;
}

/** A live golden that neither polls nor uploads for this long while its streams are still wanted is gone. */
export const GOLDEN_SILENCE_MS = 90_000;

export interface LiveStatus {
  id: string;
  state: Deployment['state'];
  message?: string;
  feeds: FeedStatus[];
}

export class DeploymentManager {
  private readonly deployments = new Map<string, Deployment>();
  private readonly runtimes = new Map<string, Runtime>();
  readonly commands = new CommandQueue();
  private readonly store: DeploymentStore;
  private readonly timer: NodeJS.Timeout;
  private stage2Cache?: { key: string; sha256: string };
  private creating = Promise.resolve();

  private constructor(private readonly deps: DeploymentManagerDeps, private readonly images: ImageStore) {
    this.store = new DeploymentStore(deps.stateDir);
    this.timer = setInterval(() => this.tick(), deps.tickMs ?? 1000);
    this.timer.unref();
  }

  static async start(deps: DeploymentManagerDeps): Promise<DeploymentManager> {
    const m = new DeploymentManager(deps, await ImageStore.open(deps.imagesDir));
    const { deployments, problems } = m.store.loadAll();
    for (const p of problems) deps.logger.warn({ problem: p }, 'deployment file skipped');
    for (const d of deployments) {
      if (isActive(d)) {
        const now = new Date().toISOString();
        for (const n of d.nodes) {
          if (nodeDone(n)) continue;
          n.state = 'failed';
          n.message = 'appliance restarted while this node deployed';
          n.step ??= 'appliance';
          n.finished = now;
        }
        d.state = 'failed';
        d.recruiting = false;
        d.message = 'appliance restarted while it ran: its sessions ended with the process';
        d.finished = now;
        m.store.save(d);
        deps.logger.warn({ deployment: d.id }, 'deployment failed: appliance restarted while it ran');
      }
      m.deployments.set(d.id, d);
    }
    return m;
  }

  list(): Deployment[] {
    return [...this.deployments.values()].sort((a, b) => a.created.localeCompare(b.created));
  }

  get(id: string): Deployment | undefined {
    return this.deployments.get(id);
  }

  /** The deployment that holds this MAC (the registry says which), whatever its state. */
  deploymentOf(mac: string): Deployment | undefined {
    const id = this.deps.nodes.get(mac)?.deployment;
    const d = id ? this.deployments.get(id) : undefined;
    return d && d.nodes.some((n) => n.mac === normalizeMac(mac)) ? d : undefined;
  }

  /** The token a node's endpoints accept besides the API token. */
  tokenForNode(mac: string): string | undefined {
    return this.deploymentOf(mac)?.token;
  }

  /** kaboot.token / kaboot.deployment for the node's kernel line. */
  kernelParams(mac: string): { id: string; token: string } | undefined {
    const d = this.deploymentOf(mac);
    return d ? { id: d.id, token: d.token } : undefined;
  }

  async create(body: unknown): Promise<Deployment> {
    // one at a time, so two requests never claim the same MAC
    const run = this.creating.then(() => this.createNow(body));
    this.creating = run.then(() => undefined, () => undefined);
    return run;
  }

  private async createNow(body: unknown): Promise<Deployment> {
    if (!Value.Check(DeploymentRequest, body)) {
      const first = [...Value.Errors(DeploymentRequest, body)][0];
      throw new DeployError('bad-request', `not a deployment request: ${first ? `${first.path || '/'} ${first.message}` : 'wrong shape'}`);
    }
    let req: DeploymentRequest = body;
    if ((req.macs === undefined) === (req.count === undefined)) throw new DeployError('bad-request', 'give the nodes either by MAC (--mac, "macs") or by number (-n, "count"), not both or neither');
    const macs = (req.macs ?? []).map((m) => normalizeMac(m)!);
    const dup = macs.find((m, i) => macs.indexOf(m) !== i);
    if (dup) throw new DeployError('bad-request', `MAC ${dup} is named twice`);
    const badName = checkImageName(req.image);
    if (badName) throw new DeployError('bad-request', badName);
    let image: ImageManifest | undefined;
    if (req.live) {
      try {
        image = liveManifest(req.image, req.live);
      } catch (e) {
        if (e instanceof PolicyError) throw new DeployError('bad-request', e.message);
        throw e;
      }
    } else image = await this.images.get(req.image);
    if (!image) throw new DeployError('bad-request', `no image ${req.image} in the store (kaboot image list)`);
    const stage2 = await this.stage2();

    let layout;
    try {
      layout = deploymentLayout(image, req);
      if (req.copy_mbr) {
        // -m becomes what -M FILE is: the image's stored boot code, sent by the kambr session
        const choice = bootCodeFor(image, req, layout.drives);
        const bytes = await this.bootCodeBytes(image, req, choice.record.drive);
        const { copy_mbr: _m, ...rest } = req;
        req = { ...rest, mbr: { drive: choice.drive, base64: bytes.toString('base64') } };
        layout.notes.push(`-m: the MBR boot code of the golden's ${choice.record.drive} (${choice.record.source}) goes to ${choice.drive}`);
      }
      // every firmware must get a plan: check it now rather than when a node asks
      const dummy = dummySessions(image, layout.sent, req, layout.drives[0]!.device);
      for (const firmware of ['bios', 'uefi'] as const) buildPlan({ deployment: 'check', image, request: req, mac: '00:00:00:00:00:00', firmware, sessions: dummy });
      hostnameFor(req.hostname_pattern, 1, '00:00:00:00:00:00');
    } catch (e) {
      if (e instanceof PolicyError) throw new DeployError('bad-request', e.message);
      throw e;
    }
    for (const mac of macs) {
      const other = this.deploymentOf(mac);
      if (other && isActive(other)) throw new DeployError('conflict', `node ${mac} is already in deployment ${other.id} (${other.state}); cancel it first (kaboot deploy cancel ${other.id})`);
    }
    let keeper: LiveKeeper | undefined;
    if (req.live?.keep) {
      try {
        keeper = await LiveKeeper.begin(this.images, req.live.keep, req.live, layout.sent.map((i) => image.filesystems[i]!.mount));
      } catch (e) {
        if (e instanceof ImageStoreError) throw new DeployError(e.code === 'exists' ? 'conflict' : 'bad-request', `--keep: ${e.message}`);
        throw e;
      }
    }

    const id = newDeploymentId();
    const spoolDir = join(this.deps.stateDir, 'spool', id);
    const want = req.count ?? macs.length;
    const log = this.deps.logger.child({ deployment: id });
    let running: RunningSession[];
    try {
      const sources = await sessionSources({
        stage2,
        image,
        imageFile: (rel) => this.images.fileOf(image.name, image, rel),
        sent: layout.sent,
        request: req,
        firstDrive: layout.drives[0]!.device,
        spoolDir,
      });
      running = await startSessions(sources, { expectedNodes: want, releaseDelayMs: Math.round((req.release_delay_s ?? 0) * 1000), spoolDir, logger: log, ...(this.deps.bindHost ? { bindHost: this.deps.bindHost } : {}) });
    } catch (e) {
      await keeper?.fail('the deployment did not start');
      if (e instanceof SessionSetupError) throw new DeployError('bad-request', e.message);
      throw e;
    }
    const now = new Date().toISOString();
    const d: Deployment = {
      format: 1,
      id,
      image: image.name,
      request: req,
      token: newDeploymentToken(),
      state: 'waiting',
      want,
      recruiting: req.count !== undefined,
      nodes: macs.map((mac, i) => ({ mac, n: i + 1, state: 'waiting', added: now })),
      sessions: running.map((r) => r.record),
      created: now,
      ...(layout.notes.length ? { message: layout.notes.join('; ') } : {}),
      ...(keeper ? { keep: { image: keeper.name, state: 'storing' as const } } : {}),
    };
    this.deployments.set(id, d);
    this.imageCache.set(id, image);
    this.runtimes.set(id, { sessions: running, closing: false, ...(req.live ? { goldenSeenAt: Date.now() } : {}), ...(keeper ? { keeper } : {}) });
    for (const r of running) {
      void r.session.result.then((res) => this.onSessionResult(d, r, res));
      const feed = r.feed;
      if (!feed) continue;
      feed.onFailed((msg) => {
        log.warn({ session: r.record.name, mount: feed.mount, err: msg }, 'live source failed');
        void r.session.close(msg);
      });
      void r.session.result.then((res) => feed.abort(`session ${res.session} ended${res.sourceError ? ` (${res.sourceError})` : ''} before the golden's stream of ${feed.mount}`));
    }
    this.store.save(d);
    for (const mac of macs) this.enlist(d, mac);
    log.info({ image: image.name, nodes: macs, count: req.count, sessions: running.map((r) => ({ name: r.record.name, port: r.record.port, bytes: r.record.bytes })) }, 'deployment created');
    return d;
  }

  private enlist(d: Deployment, mac: string, state: NodeState = 'unknown'): void {
    this.deps.nodes.upsert(mac, { next_boot: 'kamethod', deployment: d.id, state });
    this.deps.logs.append(mac, [formatLogLine({ step: 'deployment', stream: 'status', line: `in deployment ${d.id} of image ${d.image}: next boot kamethod` })]);
  }

  /**
   * Count mode: a node the registry does not know PXE boots while a deployment recruits,
   * so it joins the oldest such deployment. Returns whether it did.
   */
  recruit(mac: string): boolean {
    const m = normalizeMac(mac);
    if (!m || this.deps.nodes.get(m)) return false;
    const d = this.list().find((x) => isActive(x) && x.recruiting && x.nodes.length < x.want);
    if (!d) return false;
    d.nodes.push({ mac: m, n: d.nodes.length + 1, state: 'waiting', added: new Date().toISOString() });
    if (d.nodes.length >= d.want) d.recruiting = false;
    this.store.save(d);
    this.enlist(d, m, 'booting');
    this.deps.logger.info({ deployment: d.id, mac: m, have: d.nodes.length, want: d.want }, 'deployment recruited a node');
    return true;
  }

  plan(mac: string, firmware: Firmware, rawIp?: string): DeployPlan {
    const m = normalizeMac(mac)!;
    const ip = rawIp?.replace(/^::ffff:/, '');
    const d = this.deploymentOf(m);
    if (!d) throw new DeployError('not-found', `node ${m} is in no deployment`);
    if (!isActive(d)) throw new DeployError('conflict', `deployment ${d.id} is ${d.state}${d.message ? `: ${d.message}` : ''}`);
    const node = d.nodes.find((n) => n.mac === m)!;
    if (node.state === 'deployed' || node.state === 'cancelled') throw new DeployError('conflict', `node ${m} is already ${node.state} in deployment ${d.id}`);
    const rt = this.runtimes.get(d.id)!;
    const image = this.imageCache.get(d.id);
    if (!image) throw new DeployError('conflict', `deployment ${d.id}: its image is not loaded`);
    const reg = this.deps.nodes.get(m);
    let plan: DeployPlan;
    let notes: string[];
    try {
      const hostname = reg?.hostname ?? hostnameFor(d.request.hostname_pattern, node.n, m);
      ({ plan, notes } = buildPlan({ deployment: d.id, image, request: d.request, mac: m, firmware, sessions: planSessions(rt.sessions), ...(hostname ? { hostname } : {}) }));
      node.hostname = hostname;
    } catch (e) {
      if (e instanceof PolicyError) throw new DeployError('conflict', e.message);
      throw e;
    }
    const now = new Date().toISOString();
    node.state = 'deploying';
    node.step = 'plan';
    delete node.message;
    delete node.finished;
    node.firmware = firmware;
    node.sessions = [plan.stage2.name, ...plan.disks.flatMap((k) => [...k.filesystems.flatMap((f) => (f.session ? [f.session.name] : [])), ...k.raw.map((x) => x.session.name), ...(k.mbr ? [k.mbr.name] : [])])];
    node.started ??= now;
    if (d.state === 'waiting') d.state = 'running';
    this.store.save(d);
    this.deps.nodes.upsert(m, { state: 'deploying', ...(ip ? { ip } : {}) });
    this.deps.logs.append(m, [
      formatLogLine({ step: 'plan', stream: 'status', line: `plan for ${firmware}: ${plan.disks.map((k) => `${k.device} (${k.filesystems.length} file systems)`).join(', ')}, bootloader ${plan.bootloader.kind}` }),
      ...notes.map((n) => formatLogLine({ step: 'plan', stream: 'status', line: n })),
    ]);
    return plan;
  }

  /** POST /api/nodes/:mac/status: the registry, then the deployment. */
  onStatus(mac: string, state: NodeState, step: string | undefined, message: string | undefined, rawIp?: string): NodeRecord {
    const m = normalizeMac(mac)!;
    const ip = rawIp?.replace(/^::ffff:/, '');
    const rec = this.deps.nodes.upsert(m, { state, ...(ip ? { ip } : {}), ...(state === 'deployed' ? { next_boot: 'local' as const } : {}) });
    const d = this.deploymentOf(m);
    if (!d || !isActive(d)) return rec;
    const node = d.nodes.find((n) => n.mac === m)!;
    if (nodeDone(node) && node.state !== 'failed') return rec;
    const now = new Date().toISOString();
    if (step) node.step = step;
    if (message !== undefined) node.message = message;
    if (state === 'deployed') {
      node.state = 'deployed';
      node.finished = now;
      delete node.message;
    } else if (state === 'failed') {
      node.state = 'failed';
      node.finished = now;
      node.message = message ?? 'the node reported failure';
    } else {
      node.state = 'deploying';
      node.started ??= now;
    }
    if (d.state === 'waiting') d.state = 'running';
    this.store.save(d);
    this.deps.logger.info({ deployment: d.id, mac: m, state, step, message }, 'node status');
    void this.finishIfDone(d);
    return this.deps.nodes.get(m) ?? rec;
  }

  // ---- a live golden ----

  private liveRuntime(id: string): { d: Deployment; rt?: Runtime } {
    const d = this.deployments.get(id);
    if (!d) throw new DeployError('not-found', `no deployment ${id}`);
    if (!d.request.live) throw new DeployError('bad-request', `deployment ${id} has no live source (it deploys image ${d.image})`);
    return { d, rt: this.runtimes.get(id) };
  }

  /** What the live golden is asked for: each file system's feed, wanted once its session started. */
  liveStatus(id: string): LiveStatus {
    const { d, rt } = this.liveRuntime(id);
    if (rt) rt.goldenSeenAt = Date.now();
    this.markWanted(rt);
    const feeds = (rt?.sessions ?? []).flatMap((r) => (r.feed ? [r.feed.status()] : []));
    // after the end, the record says how each stream went
    const past = rt ? [] : d.sessions.filter((x) => x.source.startsWith('live:')).map((x): FeedStatus => ({ session: x.name, mount: x.source.slice(5), state: x.ok || (x.ok === undefined && d.state === 'done') ? 'done' : 'failed', bytes: x.bytes }));
    return { id, state: d.state, ...(d.message ? { message: d.message } : {}), feeds: rt ? feeds : past };
  }

  /** Long poll: answers once a feed is wanted, the deployment ended, or waitMs passed. */
  async waitLive(id: string, waitMs: number, signal?: AbortSignal): Promise<LiveStatus> {
    const until = Date.now() + waitMs;
    for (;;) {
      const st = this.liveStatus(id);
      if (!isActive(this.deployments.get(id)!) || st.feeds.some((f) => f.state === 'wanted') || Date.now() >= until || signal?.aborted) return st;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The golden's upload of one file system, into its session. */
  async feedLive(id: string, session: string, body: IncomingMessage): Promise<{ bytes: number; sha256: string }> {
    const { d, rt } = this.liveRuntime(id);
    if (!isActive(d) || !rt) throw new DeployError('conflict', `deployment ${id} is ${d.state}${d.message ? `: ${d.message}` : ''}`);
    const r = rt.sessions.find((x) => x.record.name === session);
    if (!r?.feed) throw new DeployError('not-found', `deployment ${id} has no live session ${session} (live sessions: ${rt.sessions.filter((x) => x.feed).map((x) => x.record.name).join(', ')})`);
    rt.goldenSeenAt = Date.now();
    const log = this.deps.logger.child({ deployment: id, session });
    log.info({ mount: r.feed.mount, state: r.feed.state }, 'live golden uploads a file system');
    const touch = setInterval(() => (rt.goldenSeenAt = Date.now()), 5000);
    const keeper = rt.keeper && !rt.keeper.error ? rt.keeper : undefined;
    try {
      const res = await r.feed.feed(body, keeper && r.feed.state !== 'done' && r.feed.state !== 'failed' && r.feed.state !== 'feeding' ? keeper.copyFor(session) : undefined);
      log.info({ mount: r.feed.mount, bytes: res.bytes, sha256: res.sha256 }, 'live golden upload received');
      if (keeper) void this.keepUpload(d, keeper, r, res.tarSha256);
      return { bytes: res.bytes, sha256: res.sha256 };
    } catch (e) {
      if (keeper && r.feed.state === 'failed') void keeper.fail(`${r.feed.mount}: ${r.feed.error}`).then(() => this.noteKeep(d, keeper));
      if (e instanceof LiveFeedError) throw new DeployError('conflict', e.message);
      throw e;
    } finally {
      clearInterval(touch);
      rt.goldenSeenAt = Date.now();
    }
  }

  private async keepUpload(d: Deployment, keeper: LiveKeeper, r: RunningSession, tarSha256: string | undefined): Promise<void> {
    const fs = this.imageCache.get(d.id)?.filesystems.find((f) => f.mount === r.feed!.mount);
    const m = await keeper.uploaded(r.record.name, { mount: r.feed!.mount, fstype: fs?.fstype ?? 'unknown', ...(fs?.label ? { label: fs.label } : {}), ...(fs?.uuid ? { uuid: fs.uuid } : {}) }, tarSha256, r.feed!.copyError);
    if (m) this.deps.logger.info({ deployment: d.id, image: m.name, filesystems: m.filesystems.length }, 'live golden kept as an image');
    this.noteKeep(d, keeper, m !== undefined);
  }

  private noteKeep(d: Deployment, keeper: LiveKeeper, stored = false): void {
    if (!d.keep) return;
    if (stored) d.keep = { image: keeper.name, state: 'stored' };
    else if (keeper.error) d.keep = { image: keeper.name, state: 'failed', message: keeper.error };
    else return;
    if (keeper.error) this.deps.logger.warn({ deployment: d.id, image: keeper.name, err: keeper.error }, 'live golden not kept as an image');
    this.store.save(d);
  }

  private markWanted(rt: Runtime | undefined): void {
    for (const r of rt?.sessions ?? []) if (r.feed && r.session.stats().state === 'running') r.feed.want();
  }

  /** A live golden that went silent while streams are still wanted: its sessions fail, and with them the nodes. */
  private checkGolden(d: Deployment, rt: Runtime, now: number): void {
    if (rt.goldenSeenAt === undefined || now - rt.goldenSeenAt < GOLDEN_SILENCE_MS) return;
    const waiting = rt.sessions.filter((r) => r.feed && (r.feed.state === 'idle' || r.feed.state === 'wanted') && !r.result);
    if (!waiting.length) return;
    const msg = `the live golden ${d.request.live?.host ?? ''} has not been heard from for ${Math.round((now - rt.goldenSeenAt) / 1000)} s (kaboot deploy --live stopped?): no stream for ${waiting.map((r) => r.feed!.mount).join(', ')}`;
    rt.goldenSeenAt = undefined;
    this.deps.logger.warn({ deployment: d.id }, msg);
    d.message = msg;
    this.store.save(d);
    for (const r of waiting) {
      r.feed!.abort(msg);
      void r.session.close(msg);
    }
  }

  async cancel(id: string): Promise<Deployment> {
    const d = this.deployments.get(id);
    if (!d) throw new DeployError('not-found', `no deployment ${id}`);
    if (!isActive(d)) throw new DeployError('conflict', `deployment ${id} is already ${d.state}`);
    const now = new Date().toISOString();
    for (const n of d.nodes) {
      if (nodeDone(n)) continue;
      n.state = 'cancelled';
      n.finished = now;
    }
    d.state = 'cancelled';
    d.recruiting = false;
    d.finished = now;
    d.message = 'cancelled';
    this.store.save(d);
    await this.closeSessions(d.id, 'deployment cancelled');
    this.deps.logger.info({ deployment: id }, 'deployment cancelled');
    return d;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.runtimes.keys()].map((id) => this.closeSessions(id, 'appliance stopping')));
  }

  // ---- internals ----

  /** The stored boot code of a golden drive, checked against its sha256 (a live golden's came with its request). */
  private async bootCodeBytes(image: ImageManifest, req: DeploymentRequest, drive: string): Promise<Buffer> {
    if (req.live) {
      const code = liveBootCode(req.live).find((b) => b.drive === drive);
      if (!code) throw new PolicyError(`-m: the live golden sent no boot code of drive ${drive}`);
      return code.bytes;
    }
    try {
      return await this.images.bootCode(image, drive);
    } catch (e) {
      if (e instanceof ImageStoreError) throw new PolicyError(`-m: ${e.message}`);
      throw e;
    }
  }

  private readonly imageCache = new Map<string, ImageManifest>();

  private async stage2(): Promise<{ file: string; bytes: number; sha256: string }> {
    const file = join(this.deps.imagesDir, STAGE2_FILE);
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) throw new DeployError('conflict', `no stage2 at ${file}: the nodes need it to partition and fill their disks; build it with "kaboot stage2 build"`);
    const key = `${st.size}:${st.mtimeMs}:${st.ino}`;
    if (this.stage2Cache?.key !== key) this.stage2Cache = { key, sha256: await sha256OfFile(file) };
    return { file, bytes: st.size, sha256: this.stage2Cache.sha256 };
  }

  /** Nodes that may still join this session: not failed, and (once planned) with it in their plan; plus those not recruited yet. */
  private live(d: Deployment, session: string): number {
    const planned = d.nodes.filter((n) => n.state !== 'failed' && n.state !== 'cancelled' && needsSession(n, session)).length;
    return planned + Math.max(0, d.want - d.nodes.length);
  }

  /** Starts a waiting session once every live node has joined, or wait_s after the first did. */
  private tick(): void {
    const now = Date.now();
    for (const [id, rt] of this.runtimes) {
      const d = this.deployments.get(id);
      if (!d || !isActive(d) || rt.closing) continue;
      this.markWanted(rt);
      this.checkGolden(d, rt, now);
      for (const r of rt.sessions) {
        if (r.result) continue;
        const st = r.session.stats();
        if (st.state !== 'waiting' || st.joined === 0) continue;
        r.firstJoinAt ??= now;
        const waitMs = (d.request.wait_s ?? DEFAULT_WAIT_S) * 1000;
        if (st.joined >= this.live(d, r.record.name) || now - r.firstJoinAt >= waitMs) {
          this.deps.logger.info({ deployment: id, session: r.record.name, joined: st.joined, want: d.want }, 'session starts with the nodes present');
          r.session.goNow();
        }
      }
    }
  }

  private matchNode(d: Deployment, name: string, address: string): DeployNode | undefined {
    const byName = normalizeMac(name);
    const n = byName ? d.nodes.find((x) => x.mac === byName) : undefined;
    if (n) return n;
    const addr = address.replace(/^::ffff:/, '');
    return d.nodes.find((x) => this.deps.nodes.get(x.mac)?.ip === addr);
  }

  private onSessionResult(d: Deployment, r: RunningSession, res: SessionResult): void {
    r.result = res;
    r.record.ok = res.ok;
    if (r.feed && res.digest) {
      // a live stream's size and digest are known now
      r.record.bytes = res.total;
      r.record.sha256 = res.digest;
    }
    const rt = this.runtimes.get(d.id);
    if (!rt || rt.closing || !isActive(d)) {
      this.store.save(d);
      return;
    }
    const now = new Date().toISOString();
    const seen = new Set<string>();
    for (const s of res.nodes) {
      const n = this.matchNode(d, s.name, s.address);
      if (!n) {
        this.deps.logger.warn({ deployment: d.id, session: res.session, name: s.name, address: s.address }, 'session result for a node the deployment does not hold');
        continue;
      }
      seen.add(n.mac);
      n.bytes = (n.bytes ?? 0) + s.bytes;
      n.receive_ms = (n.receive_ms ?? 0) + (s.durationMs ?? 0);
      n.rate = n.receive_ms > 0 ? Math.round((n.bytes * 1000) / n.receive_ms) : 0;
      if (!s.ok && !nodeDone(n)) this.failNode(d, n, res.session, `session ${res.session}: ${res.sourceError ?? s.error ?? (s.digestOk === false ? 'wrong digest' : `consumer exit ${s.exitCode}`)}`, now);
    }
    // a node that has not joined by now never can: the session is over
    if (d.recruiting) {
      d.recruiting = false;
      d.want = d.nodes.length;
    }
    for (const n of d.nodes) {
      if (!nodeDone(n) && !seen.has(n.mac) && needsSession(n, res.session)) this.failNode(d, n, res.session, `session ${res.session} ended${res.sourceError ? ` (${res.sourceError})` : ''} without this node`, now);
    }
    this.store.save(d);
    void this.finishIfDone(d);
  }

  private failNode(d: Deployment, n: DeployNode, step: string, message: string, now: string): void {
    n.state = 'failed';
    n.step = step;
    n.message = message;
    n.finished = now;
    this.deps.nodes.upsert(n.mac, { state: 'failed' });
    this.deps.logs.append(n.mac, [formatLogLine({ step, stream: 'status', line: `state=failed ${message}` })]);
    this.deps.logger.warn({ deployment: d.id, mac: n.mac, step, message }, 'node failed');
  }

  private async finishIfDone(d: Deployment): Promise<void> {
    if (!isActive(d)) return;
    if (d.recruiting || d.nodes.length < d.want || !d.nodes.every(nodeDone)) return;
    const failed = d.nodes.filter((n) => n.state !== 'deployed');
    d.state = failed.length ? 'failed' : 'done';
    d.finished = new Date().toISOString();
    d.message = failed.length
      ? `${failed.length} of ${d.nodes.length} failed: ${failed.map((n) => `${n.mac} at ${n.step ?? '?'}${n.message ? ` (${n.message})` : ''}`).join('; ')}`
      : `${d.nodes.length} nodes deployed`;
    this.store.save(d);
    this.deps.logger.info({ deployment: d.id, state: d.state, message: d.message, nodes: summaryRows(d) }, 'deployment finished');
    await this.closeSessions(d.id, `deployment ${d.state}`);
    this.store.save(d);
  }

  private async closeSessions(id: string, reason: string): Promise<void> {
    const rt = this.runtimes.get(id);
    if (!rt || rt.closing) return;
    rt.closing = true;
    await Promise.all(rt.sessions.map((r) => (r.result ? Promise.resolve() : r.session.close(reason)).catch((e: Error) => this.deps.logger.warn({ deployment: id, session: r.record.name, err: e.message }, 'session close failed'))));
    if (rt.keeper) {
      await rt.keeper.close(`the deployment ended (${reason}) before every file system was uploaded`);
      const d = this.deployments.get(id);
      if (d) this.noteKeep(d, rt.keeper);
    }
    this.runtimes.delete(id);
    // what -D and -M compressed or wrote for this deployment
    await rm(join(this.deps.stateDir, 'spool', id), { recursive: true, force: true });
  }
}

const needsSession = (n: DeployNode, session: string) => !n.sessions || n.sessions.includes(session);

function dummySessions(image: ImageManifest, sent: number[], req: DeploymentRequest, firstDrive: string): PlanSessions {
  const ref = (name: string) => ({ name, port: 1, secret: '0'.repeat(32), bytes: 0, sha256: '0'.repeat(64) });
  return {
    stage2: ref('getstage2'),
    filesystems: new Map(sent.map((i, k) => [i, ref(`kainstall${k + 1}`)])),
    raw: new Map((req.raw ?? []).map((r) => [`${r.drive ?? firstDrive}:${r.partition}`, ref('raw')])),
    ...(req.mbr ? { mbr: ref('kambr') } : {}),
  };
}
