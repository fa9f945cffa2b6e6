// kaboot deploy --live, on the golden: the seed's ka-d.sh, where the golden itself was the
// source. It reads its layout as `kaboot image push` does (file systems and mount points,
// desc and MBR boot code from its disk, bootloader and kernels from its files), creates a
// deployment whose source is live, then waits until the appliance asks for a file system
// (its kainstall session started) and streams it: tar (the same arguments as push) | zstd,
// chunked, with the SHA-256 of what it sent as a trailer. The appliance reads the upload
// only as fast as the session sends, and spools it, so the golden can leave once every
// file system went out.
import { createHash } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { hostname } from 'node:os';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { resolveSources, spawnTar, type CaptureSource } from '../images/capture.js';
import { readGoldenDisk, treeFacts, type GoldenDiskOptions } from '../images/golden.js';
import { sha256Hex } from '../images/boot-code.js';
import { FS_UUID_RE, type BootloaderName } from '../images/manifest.js';
import { ApiError, apiRequest, type ApiTarget } from './api-client.js';
import type { Deployment, DeploymentRequest, LiveSource } from './deployment.js';
import type { FeedStatus } from './live-feed.js';
import { SHA256_TRAILER, TAR_SHA256_TRAILER } from './live-feed.js';
import { excludesPerFilesystem, PolicyError } from './policy.js';
import type { LiveStatus } from './manager.js';

export class LiveGoldenError extends Error {
  override name = 'LiveGoldenError';
}

export interface LiveGoldenOptions {
  target: ApiTarget;
  /** the deployment's options (nodes, -x, -p, -m, -r...); image is the live golden's name */
  request: DeploymentRequest;
  from: string[];
  disk: GoldenDiskOptions;
  bootloader?: BootloaderName;
  /** also store what is sent as this image on the appliance */
  keep?: string;
  /** zstd level (3, as push) */
  level?: number;
  say: (line: string) => void;
  signal?: AbortSignal;
}

/** The live source the request carries: what `kaboot image push` would have recorded. */
export async function readLiveSource(from: string[], disk: GoldenDiskOptions, bootloader: BootloaderName | undefined, say: (l: string) => void): Promise<{ live: LiveSource; sources: CaptureSource[] }> {
  const sources = await resolveSources(from);
  const d = await readGoldenDisk(disk, from);
  d.notes.forEach(say);
  for (const b of d.bootCode) b.warnings.forEach(say);
  const facts = await treeFacts(sources);
  const live: LiveSource = {
    host: hostname(),
    paths: sources.map((s) => `${s.mount}=${s.dir}`),
    filesystems: sources.map((s) => ({
      mount: s.mount,
      fstype: s.fstype && /^[a-z0-9_.]{1,32}$/.test(s.fstype) ? s.fstype : 'unknown',
      ...(s.label ? { label: s.label } : {}),
      ...(s.uuid && FS_UUID_RE.test(s.uuid) ? { uuid: s.uuid } : {}),
    })),
    ...(d.desc ? { desc: d.desc } : {}),
    bootloader: bootloader ?? facts.bootloader,
    kernels: facts.kernels.slice(0, 64),
    ...(facts.fstab !== undefined ? { fstab: facts.fstab.slice(0, 64 * 1024) } : {}),
    ...(d.bootCode.length ? { boot_code: d.bootCode.map((b) => ({ drive: b.drive, source: b.source, base64: b.bytes.toString('base64'), sha256: sha256Hex(b.bytes) })) } : {}),
  };
  return { live, sources };
}

interface Upload {
  status: number;
  json: unknown;
}

/** One file system to the appliance: tar | zstd → chunked POST with the sha256 trailer. */
async function streamFilesystem(t: ApiTarget, id: string, feed: FeedStatus, src: CaptureSource, exclude: string[], level: number, signal?: AbortSignal): Promise<{ bytes: number; sha256: string; warnings: string[] }> {
  const url = new URL(`${t.server}/api/deployments/${id}/live/${feed.session}`);
  const tar = spawnTar(src.dir, { exclude, signal });
  const zstd = execa('zstd', ['-c', '-q', `-${level}`, '-T0'], { stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', buffer: { stdout: false }, reject: false, cancelSignal: signal, forceKillAfterDelay: 2000 });
  // the tar's own digest too, as push sends it: the appliance checks it when it keeps the upload (--keep)
  const tarHash = createHash('sha256');
  const tarTap = new Transform({
    transform(chunk: Buffer, _e, done) {
      tarHash.update(chunk);
      done(null, chunk);
    },
  });
  const feedZstd = pipeline(tar.stdout, tarTap, zstd.stdin!).catch((e: unknown) => e as Error);
  const tarDone = tar.finished.catch((e: unknown) => e as Error);
  const hash = createHash('sha256');
  let sent = 0;
  let digest = '';
  const tap = new Transform({
    transform(chunk: Buffer, _e, done) {
      hash.update(chunk);
      sent += chunk.length;
      done(null, chunk);
    },
  });
  const stopLocal = async () => {
    tar.kill();
    zstd.kill('SIGKILL');
    await Promise.allSettled([feedZstd, zstd, tarDone]);
  };
  const upload = new Promise<Upload>((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/zstd', trailer: `${SHA256_TRAILER}, ${TAR_SHA256_TRAILER}` },
    }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = text;
        try { json = text ? JSON.parse(text) : undefined; } catch { /* text */ }
        resolve({ status: res.statusCode ?? 0, json });
      });
      res.on('error', reject);
    });
    req.on('error', (e) => reject(e instanceof LiveGoldenError ? e : new LiveGoldenError(`POST ${url.href}: ${e.message}`)));
    // backpressure all the way: the appliance reads as fast as its session sends
    zstd.stdout!.pipe(tap).pipe(req, { end: false });
    // the trailer vouches for a complete stream: only once tar and zstd ended well; else the
    // upload is cut, and the appliance fails the session rather than pass on a short stream
    tap.once('end', () => {
      digest = hash.digest('hex');
      void Promise.all([feedZstd, zstd, tarDone]).then(([feedErr, z, tarResult]) => {
        const why = tarResult instanceof Error ? tarResult.message : feedErr ? `reading ${src.dir} failed: ${feedErr.message}` : z.exitCode !== 0 ? `zstd failed (${z.exitCode ?? z.signal}): ${String(z.stderr).trim()}` : undefined;
        if (why) {
          req.destroy(new LiveGoldenError(why));
          return;
        }
        req.addTrailers({ [SHA256_TRAILER]: digest, [TAR_SHA256_TRAILER]: tarHash.digest('hex') });
        req.end();
      });
    });
  });
  let res: Upload;
  try {
    res = await upload;
  } catch (e) {
    await stopLocal();
    throw e;
  }
  const messageOf = (json: unknown) => (json && typeof json === 'object' && 'message' in json ? String((json as { message: unknown }).message) : JSON.stringify(json));
  if (res.status !== 200) {
    await stopLocal();
    throw new LiveGoldenError(`the appliance did not take ${src.mount} (${res.status}): ${messageOf(res.json)}`);
  }
  const [feedErr, z, tarResult] = await Promise.all([feedZstd, zstd, tarDone]);
  if (tarResult instanceof Error) throw tarResult;
  if (feedErr) throw new LiveGoldenError(`reading ${src.dir} failed: ${feedErr.message}`);
  if (z.exitCode !== 0) throw new LiveGoldenError(`zstd failed: ${String(z.stderr).trim()}`);
  const got = res.json as { bytes: number; sha256: string };
  if (got.bytes !== sent || got.sha256 !== digest) throw new LiveGoldenError(`${src.mount}: sent ${sent} bytes with sha256 ${digest}, the appliance received ${got.bytes} with ${got.sha256}`);
  return { bytes: sent, sha256: got.sha256, warnings: tarResult };
}

/**
 * Creates the live deployment and feeds it. Resolves with the deployment once every file
 * system it wanted went out (or it ended); throws when the appliance refuses or a stream fails.
 */
export async function runLiveGolden(o: LiveGoldenOptions): Promise<Deployment> {
  const { live, sources } = await readLiveSource(o.from, o.disk, o.bootloader, o.say);
  const request: DeploymentRequest = { ...o.request, live: { ...live, ...(o.keep ? { keep: o.keep } : {}) } };
  const { body: d } = await apiRequest<Deployment>(o.target, 'POST', '/api/deployments', request, o.signal);
  o.say(`deployment ${d.id} created: live from ${live.host} (${live.filesystems.map((f) => `${f.mount} ${f.fstype}`).join(', ')}; bootloader ${live.bootloader}; MBR boot code ${live.boot_code?.map((b) => b.drive).join(', ') || 'none'}), ${d.recruiting ? `the next ${d.want} unknown nodes that PXE boot` : `nodes ${d.nodes.map((n) => n.mac).join(', ')}`}, sessions ${d.sessions.map((s) => s.name).join(', ')}`);
  let below: Map<string, string[]>;
  try {
    below = excludesPerFilesystem(sources.map((s) => s.mount), o.request.exclude ?? []).below;
  } catch (e) {
    if (e instanceof PolicyError) throw new LiveGoldenError(e.message);
    throw e;
  }
  const sent = new Set<string>();
  let failures = 0;
  for (;;) {
    if (o.signal?.aborted) throw new LiveGoldenError('stopped');
    let st: LiveStatus;
    try {
      st = (await apiRequest<LiveStatus>(o.target, 'GET', `/api/deployments/${d.id}/live?wait=20`, undefined, o.signal)).body;
      failures = 0;
    } catch (e) {
      // the appliance restarting or a link flapping: a few tries, then give up
      if (!(e instanceof ApiError) || e.status !== 0 || ++failures > 5) throw e;
      o.say(`${(e as Error).message}: trying again`);
      await new Promise((r) => setTimeout(r, 2000));
      continue;
    }
    // a deployment that is done got everything (its sessions' results may still be on their way)
    const allSent = (st.feeds.length > 0 && st.feeds.every((f) => f.state === 'done')) || st.state === 'done';
    if (allSent) {
      o.say(`every file system went out (${st.feeds.map((f) => `${f.mount} ${f.bytes} bytes`).join(', ')}): the appliance serves the rest from its spool`);
      let now = (await apiRequest<Deployment>(o.target, 'GET', `/api/deployments/${d.id}`)).body;
      // --keep: the appliance stores the image after the last upload; say how that went
      for (let i = 0; now.keep?.state === 'storing' && i < 3600 && !o.signal?.aborted; i++) {
        if (i === 0) o.say(`the appliance stores the streams as image ${now.keep.image}…`);
        await new Promise((r) => setTimeout(r, 1000));
        now = (await apiRequest<Deployment>(o.target, 'GET', `/api/deployments/${d.id}`)).body;
      }
      if (now.keep?.state === 'stored') o.say(`image ${now.keep.image} stored`);
      else if (now.keep?.state === 'failed') throw new LiveGoldenError(`the deployment goes on, but image ${now.keep.image} was not stored: ${now.keep.message ?? 'see the appliance log'}`);
      return now;
    }
    if (st.state !== 'waiting' && st.state !== 'running') {
      throw new LiveGoldenError(`deployment ${d.id} is ${st.state}${st.message ? `: ${st.message}` : ''}`);
    }
    const failed = st.feeds.find((f) => f.state === 'failed');
    if (failed) throw new LiveGoldenError(`${failed.session} (${failed.mount}) failed: ${failed.error ?? 'see the appliance log'}`);
    const next = st.feeds.find((f) => f.state === 'wanted' && !sent.has(f.session));
    if (!next) continue;
    const src = sources.find((s) => s.mount === next.mount);
    if (!src) throw new LiveGoldenError(`the appliance asks for ${next.mount}, which this golden does not have`);
    sent.add(next.session);
    o.say(`${next.session} started: streaming ${src.mount} from ${src.dir}`);
    let r;
    try {
      r = await streamFilesystem(o.target, d.id, next, src, below.get(src.mount) ?? [], o.level ?? 3, o.signal);
    } catch (e) {
      // a connection cut by the appliance says little: its own account of the feed says why
      const why = await apiRequest<LiveStatus>(o.target, 'GET', `/api/deployments/${d.id}/live`).then((x) => x.body.feeds.find((f) => f.session === next.session)?.error, () => undefined);
      if (why) throw new LiveGoldenError(`${next.session} (${src.mount}): ${why}`);
      throw e;
    }
    r.warnings.forEach(o.say);
    o.say(`${src.mount}: ${r.bytes} bytes sent, sha256 ${r.sha256}`);
  }
}
