// The golden side of a capture over the network: tar | zstd | HTTP POST, one request per
// file system, then a commit that carries the sha256 of each tar stream as the golden
// saw it, so the appliance stores the image only if it received exactly that.
import { createHash } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { hostname } from 'node:os';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { resolveSources, spawnTar } from './capture.js';
import { CaptureError } from './squashfs.js';
import type { BootloaderName, FilesystemRecord, ImageManifest } from './manifest.js';
import { sha256Hex, type BootCode } from './boot-code.js';

export interface PushOptions {
  url: string;
  token: string;
  name: string;
  from: string[];
  exclude?: string[];
  desc?: string;
  bootloader?: BootloaderName;
  /** MBR boot code of the golden's drives, sent with the commit (446 bytes each, with their sha256) */
  bootCode?: BootCode[];
  /** zstd level; 3 keeps up with a gigabit link on one core */
  level?: number;
  onProgress?: (msg: string) => void;
}

export interface PushResult {
  manifest: ImageManifest;
  /** compressed bytes sent per mount point */
  wireBytes: Record<string, number>;
}

function send(url: URL, method: string, token: string, headers: Record<string, string>, body?: Readable | string): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method, headers: { authorization: `Bearer ${token}`, ...headers } }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = text;
        try { json = text ? JSON.parse(text) : undefined; } catch { /* plain text */ }
        resolve({ status: res.statusCode ?? 0, json });
      });
      res.on('error', reject);
    });
    req.on('error', (e) => reject(new CaptureError(`${method} ${url.href}: ${e.message}`)));
    if (body === undefined || typeof body === 'string') req.end(body);
    else pipeline(body, req).catch((e: unknown) => req.destroy(e as Error));
  });
}

const messageOf = (json: unknown) => (json && typeof json === 'object' && 'message' in json ? String((json as { message: unknown }).message) : JSON.stringify(json));

export async function pushImage(opts: PushOptions): Promise<PushResult> {
  const base = new URL(opts.url.endsWith('/') ? opts.url : opts.url + '/');
  const api = (path: string) => new URL(`api/images/${encodeURIComponent(opts.name)}${path}`, base);
  const sources = await resolveSources(opts.from);
  const begin = await send(api('/captures'), 'POST', opts.token, {});
  if (begin.status !== 201) throw new CaptureError(`the appliance refused the capture (${begin.status}): ${messageOf(begin.json)}`);
  const capture = (begin.json as { capture: string }).capture;
  const expect: Record<string, string> = {};
  const wireBytes: Record<string, number> = {};
  const warnings: string[] = [];
  try {
    for (const s of sources) {
      opts.onProgress?.(`pushing ${s.mount} from ${s.dir} (${s.fstype})`);
      const tar = spawnTar(s.dir, { exclude: s.mount === '/' ? opts.exclude : undefined });
      const hash = createHash('sha256');
      const tap = new Transform({ transform(chunk: Buffer, _e, done) { hash.update(chunk); done(null, chunk); } });
      const zstd = execa('zstd', ['-c', '-q', `-${opts.level ?? 3}`, '-T0'], { stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', buffer: { stdout: false }, reject: false });
      let sent = 0;
      const count = new Transform({ transform(chunk: Buffer, _e, done) { sent += chunk.length; done(null, chunk); } });
      const feed = pipeline(tar.stdout, tap, zstd.stdin!).catch((e: unknown) => e);
      const q = new URLSearchParams({ capture, ...(s.fstype ? { fstype: s.fstype } : {}), ...(s.label ? { label: s.label } : {}), ...(s.uuid ? { uuid: s.uuid } : {}) });
      const path = s.mount === '/' ? '/fs/' : `/fs${s.mount.split('/').map(encodeURIComponent).join('/')}`;
      const upload = send(new URL(`${api(path).href}?${q}`), 'POST', opts.token, { 'content-type': 'application/zstd' }, zstd.stdout!.pipe(count));
      const tarDone = tar.finished.catch((e: unknown) => e);
      const stopLocal = async () => {
        tar.kill();
        zstd.kill('SIGKILL');
        await Promise.allSettled([feed, zstd, tarDone]);
      };
      // The appliance may answer before it has read the whole body (a refusal): then
      // nobody reads zstd any more, so stop tar and zstd rather than wait for them.
      const res = await upload.catch(async (e: unknown) => {
        await stopLocal();
        throw e;
      });
      if (res.status !== 200) {
        await stopLocal();
        throw new CaptureError(`the appliance did not take ${s.mount} (${res.status}): ${messageOf(res.json)}`);
      }
      const [feedErr, z, tarWarnings] = await Promise.all([feed, zstd, tarDone]);
      if (tarWarnings instanceof Error) throw tarWarnings;
      if (feedErr) throw new CaptureError(`reading ${s.dir} failed: ${(feedErr as Error).message}`);
      if (z.exitCode !== 0) throw new CaptureError(`zstd failed: ${String(z.stderr).trim()}`);
      const rec = res.json as FilesystemRecord;
      const sha = hash.digest('hex');
      if (rec.tar_sha256 !== sha) throw new CaptureError(`${s.mount}: sent a tar stream with sha256 ${sha}, the appliance received ${rec.tar_sha256}`);
      expect[s.mount] = sha;
      wireBytes[s.mount] = sent;
      warnings.push(...(tarWarnings as string[]));
      opts.onProgress?.(`${s.mount}: ${rec.files} entries, tar ${rec.tar_bytes} bytes, ${sent} bytes on the wire, squashfs ${rec.squashfs_bytes} bytes`);
    }
    const commit = await send(api(`/commit?capture=${capture}`), 'POST', opts.token, { 'content-type': 'application/json' }, JSON.stringify({
      source: { host: hostname(), paths: sources.map((s) => `${s.mount}=${s.dir}`) },
      ...(opts.desc ? { desc: opts.desc } : {}),
      ...(opts.bootloader ? { bootloader: opts.bootloader } : {}),
      expect,
      warnings: [...warnings, ...(opts.bootCode ?? []).flatMap((b) => b.warnings)],
      ...(opts.bootCode?.length ? { boot_code: opts.bootCode.map((b) => ({ drive: b.drive, source: b.source, base64: b.bytes.toString('base64'), sha256: sha256Hex(b.bytes) })) } : {}),
    }));
    if (commit.status !== 201) throw new CaptureError(`the appliance did not store the image (${commit.status}): ${messageOf(commit.json)}`);
    return { manifest: commit.json as ImageManifest, wireBytes };
  } catch (e) {
    await send(api(`/captures/${capture}`), 'DELETE', opts.token, {}).catch(() => undefined);
    throw e;
  }
}
