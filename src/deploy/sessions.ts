// The KA sessions of a deployment, run inside `kaboot serve`: getstage2 (stage2.sqfs),
// kainstall1..k (one per file system sent, its zstd tar stream from the image store),
// karaw-* (-D: a raw partition, zstd-compressed once into the spool) and kambr (-M).
// A live deployment's kainstall sessions read a LiveFeed instead of a stored stream.
// Every coordinator takes ephemeral ports and no UDP discovery: the plan names the port.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Logger } from 'pino';
import { startSession, type Session, type SessionResult } from '../ka/index.js';
import { newSessionSecret, type DeploymentRequest, type SessionRecord } from './deployment.js';
import type { ImageManifest } from '../images/manifest.js';
import type { SessionRef } from './plan.js';
import type { PlanSessions } from './policy.js';
import { LiveFeed } from './live-feed.js';
import { ZERO_SHA256 } from './live.js';

export async function sha256OfFile(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** What a session sends, with its size and digest known before it starts. */
export interface SessionSource {
  name: string;
  file: string;
  bytes: number;
  sha256: string;
  /** a live golden's file system: the stream comes with its upload (bytes and sha256 are 0 until then) */
  live?: { mount: string };
  /** what it carries, to find it again when a plan is built */
  carries: { kind: 'stage2' } | { kind: 'fs'; index: number } | { kind: 'raw'; key: string } | { kind: 'mbr' };
}

export interface SourceInputs {
  stage2: { file: string; bytes: number; sha256: string };
  image: ImageManifest;
  /** absolute path of an image file (ImageStore.fileOf) */
  imageFile: (rel: string) => string;
  sent: number[];
  request: DeploymentRequest;
  /** first drive of the deployment, the default of -D and -M */
  firstDrive: string;
  spoolDir: string;
}

export async function sessionSources(inp: SourceInputs): Promise<SessionSource[]> {
  const out: SessionSource[] = [{ name: 'getstage2', ...inp.stage2, carries: { kind: 'stage2' } }];
  inp.sent.forEach((index, k) => {
    const fs = inp.image.filesystems[index]!;
    if (inp.image.source.kind === 'live') out.push({ name: `kainstall${k + 1}`, file: fs.stream, bytes: 0, sha256: ZERO_SHA256, live: { mount: fs.mount }, carries: { kind: 'fs', index } });
    else out.push({ name: `kainstall${k + 1}`, file: inp.imageFile(fs.stream), bytes: fs.stream_bytes, sha256: fs.stream_sha256, carries: { kind: 'fs', index } });
  });
  // -D and -M write their files there; a live session's coordinator spools the golden's stream there
  if ((inp.request.raw ?? []).length || inp.request.mbr || out.some((s) => s.live)) await mkdir(inp.spoolDir, { recursive: true });
  for (const r of inp.request.raw ?? []) {
    const drive = r.drive ?? inp.firstDrive;
    const st = await stat(r.file).catch(() => undefined);
    if (!st?.isFile()) throw new SessionSetupError(`-D ${drive}${r.partition}: ${r.file} is not a file on the appliance`);
    const file = join(inp.spoolDir, `raw-${drive}-${r.partition}.zst`);
    await execa('zstd', ['-q', '-f', '-T0', '-o', file, '--', r.file]);
    out.push({ name: `karaw-${drive}-${r.partition}`, file, bytes: (await stat(file)).size, sha256: await sha256OfFile(file), carries: { kind: 'raw', key: `${drive}:${r.partition}` } });
  }
  if (inp.request.mbr) {
    const file = join(inp.spoolDir, 'mbr.bin');
    await writeFile(file, Buffer.from(inp.request.mbr.base64, 'base64'));
    out.push({ name: 'kambr', file, bytes: 446, sha256: await sha256OfFile(file), carries: { kind: 'mbr' } });
  }
  return out;
}

export class SessionSetupError extends Error {
  override name = 'SessionSetupError';
}

export interface RunningSession {
  source: SessionSource;
  record: SessionRecord;
  session: Session;
  /** the live golden's upload into this session */
  feed?: LiveFeed;
  /** when the first node joined while it waited (ms epoch) */
  firstJoinAt?: number;
  result?: SessionResult;
}

export interface StartOptions {
  expectedNodes: number;
  releaseDelayMs: number;
  spoolDir: string;
  bindHost?: string;
  logger: Logger;
}

/** Starts one coordinator per source; on a failure the ones already started are closed. */
export async function startSessions(sources: SessionSource[], opts: StartOptions): Promise<RunningSession[]> {
  const running: RunningSession[] = [];
  try {
    for (const source of sources) {
      const secret = newSessionSecret();
      const feed = source.live ? new LiveFeed(source.name, source.live.mount) : undefined;
      const session = await startSession({
        session: source.name,
        secret,
        expectedNodes: opts.expectedNodes,
        releaseDelayMs: opts.releaseDelayMs,
        source: feed ? { stream: feed.stream } : { file: source.file },
        controlPort: 0,
        dataPort: 0,
        discoveryPort: null,
        spoolDir: opts.spoolDir,
        ...(opts.bindHost ? { bindHost: opts.bindHost } : {}),
        logger: opts.logger.child({ session: source.name }),
      });
      running.push({ source, session, ...(feed ? { feed } : {}), record: { name: source.name, port: session.controlPort, secret, bytes: source.bytes, sha256: source.sha256, source: source.file } });
    }
  } catch (e) {
    await Promise.all(running.map((r) => r.session.close('deployment setup failed').catch(() => undefined)));
    throw e;
  }
  return running;
}

export function planSessions(running: RunningSession[]): PlanSessions {
  const ref = (r: RunningSession): SessionRef => r.feed
    ? { name: r.record.name, port: r.record.port, secret: r.record.secret, bytes: 0, sha256: ZERO_SHA256, live: true }
    : { name: r.record.name, port: r.record.port, secret: r.record.secret, bytes: r.record.bytes, sha256: r.record.sha256 };
  const stage2 = running.find((r) => r.source.carries.kind === 'stage2');
  if (!stage2) throw new Error('a deployment without its getstage2 session');
  const out: PlanSessions = { stage2: ref(stage2), filesystems: new Map(), raw: new Map() };
  for (const r of running) {
    const c = r.source.carries;
    if (c.kind === 'fs') out.filesystems.set(c.index, ref(r));
    else if (c.kind === 'raw') out.raw.set(c.key, ref(r));
    else if (c.kind === 'mbr') out.mbr = ref(r);
  }
  return out;
}
