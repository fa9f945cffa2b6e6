// Capturing a golden: which trees to read (a root and the file systems mounted below
// it, or MOUNT=DIR pairs), what each one is (findmnt/blkid), and the tar that reads one
// file system with everything a clone needs: owners by number, sparse files, xattrs,
// ACLs, and nothing from other file systems.
import { execa } from 'execa';
import type { Readable } from 'node:stream';
import { posix, resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { ImageStore, FilesystemMeta } from './store.js';
import type { ImageManifest, BootloaderName } from './manifest.js';
import { MOUNT_RE } from './manifest.js';
import { CaptureError } from './squashfs.js';
import type { BootCode } from './boot-code.js';

export interface CaptureSource extends FilesystemMeta {
  /** where the tree is readable here */
  dir: string;
}

/** Block-backed file systems only: a golden's /proc, /sys, /run, tmpfs and snaps are not part of it. */
const SKIP_FS = new Set(['squashfs', 'iso9660', 'udf', 'overlay', 'nfs', 'nfs4', 'cifs', 'fuse', 'tmpfs', 'devtmpfs', 'ramfs']);

interface FindmntFs { target: string; source?: string | null; fstype?: string | null; label?: string | null; uuid?: string | null; children?: FindmntFs[] }

async function findmnt(args: string[]): Promise<FindmntFs[]> {
  const r = await execa('findmnt', ['-J', '-o', 'TARGET,SOURCE,FSTYPE,LABEL,UUID', ...args], { reject: false });
  if (r.exitCode !== 0 || !r.stdout.trim()) return [];
  return (JSON.parse(r.stdout) as { filesystems: FindmntFs[] }).filesystems;
}

async function blkidOf(source: string): Promise<{ label?: string; uuid?: string }> {
  const r = await execa('blkid', ['-o', 'export', source], { reject: false });
  if (r.exitCode !== 0) return {};
  const kv = Object.fromEntries(r.stdout.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  return { label: kv.LABEL || undefined, uuid: kv.UUID || undefined };
}

/** What file system `dir` is, if it is a mount point; "unknown" for a plain directory. */
export async function describeDir(dir: string): Promise<Omit<FilesystemMeta, 'mount'>> {
  const fs = (await findmnt(['-T', dir]))[0];
  if (!fs || fs.target !== dir) return { fstype: 'unknown' };
  const meta: Omit<FilesystemMeta, 'mount'> = { fstype: fs.fstype ?? 'unknown' };
  let label = fs.label ?? undefined;
  let uuid = fs.uuid ?? undefined;
  if ((!label || !uuid) && fs.source?.startsWith('/dev/')) {
    const probed = await blkidOf(fs.source); // findmnt knows labels only from udev's database
    label ??= probed.label;
    uuid ??= probed.uuid;
  }
  if (label) meta.label = label;
  if (uuid) meta.uuid = uuid;
  return meta;
}

/**
 * --from arguments: "MOUNT=DIR" names a tree and its mount point on the golden; a plain
 * DIR is the golden's root, and the block file systems mounted below DIR come with it
 * (so `--from /` on a live golden takes /, /boot, /boot/efi, /home...).
 */
export async function resolveSources(froms: string[]): Promise<CaptureSource[]> {
  const out: CaptureSource[] = [];
  for (const f of froms) {
    const eq = f.indexOf('=');
    const explicit = eq > 0 && f.startsWith('/');
    const mount = explicit ? posix.normalize(f.slice(0, eq)).replace(/(.)\/$/, '$1') : '/';
    const dir = resolve(explicit ? f.slice(eq + 1) : f);
    if (!MOUNT_RE.test(mount)) throw new CaptureError(`--from ${f}: ${mount} is not an absolute mount point`);
    const st = await stat(dir).catch(() => undefined);
    if (!st?.isDirectory()) throw new CaptureError(`--from ${f}: ${dir} is not a directory`);
    out.push({ mount, dir, ...(await describeDir(dir)) });
    if (explicit) continue;
    const walk = async (list: FindmntFs[]) => {
      for (const fs of list) {
        const inside = fs.target !== dir && (dir === '/' ? fs.target.startsWith('/') : fs.target.startsWith(dir + '/'));
        if (inside && fs.source?.startsWith('/dev/') && fs.fstype && !SKIP_FS.has(fs.fstype) && !fs.fstype.startsWith('fuse')) {
          const sub = '/' + posix.relative(dir, fs.target);
          out.push({ mount: sub, dir: fs.target, ...(await describeDir(fs.target)) });
        }
        await walk(fs.children ?? []);
      }
    };
    await walk(await findmnt(['-R', dir]));
  }
  const seen = new Set<string>();
  for (const s of out) {
    if (seen.has(s.mount)) throw new CaptureError(`two trees for mount point ${s.mount}`);
    seen.add(s.mount);
  }
  if (!seen.has('/')) throw new CaptureError('no root: name the golden root with --from DIR (or --from /=DIR)');
  return out;
}

/** An excluded directory keeps itself (owner, mode) and loses its contents, as ka-d.sh -x did ("Creating excluded directories"). */
export function tarArgs(dir: string, excludes: string[] = []): string[] {
  return [
    '--create', '--format=posix', '--one-file-system', '--sparse', '--xattrs', '--xattrs-include=*', '--xattrs-exclude=system.posix_acl_*', '--acls', '--numeric-owner',
    '--no-wildcards-match-slash', ...excludes.map((x) => `--exclude=./${x.replace(/^\/+|\/+$/g, '')}/*`), '-C', dir, '.',
  ];
}

/**
 * What a node runs on a received stream (after zstd -d): the counterpart of tarArgs, keeping owners, modes, xattrs, ACLs, holes.
 * Read in 1 MiB records (gathered from the pipe by --read-full-records), not tar's 10 KiB:
 * each read from the pipe costs a context switch with zstd, and on a TCG node unpacking the
 * lab golden took 19-27 s (system time 13-17 s) against 30-36 s (23-27 s) in 10 KiB records.
 */
export function tarExtractArgs(dir: string): string[] {
  return ['--extract', '--read-full-records', '--blocking-factor=2048', '--xattrs', '--xattrs-include=*', '--acls', '--numeric-owner', '--same-owner', '--same-permissions', '-C', dir];
}

/** tar of one tree to stdout. GNU tar exits 1 when a file changed while read (a live golden): a warning, not a failure. */
export function spawnTar(dir: string, opts: { exclude?: string[]; signal?: AbortSignal } = {}): { stdout: Readable; kill: () => void; finished: Promise<string[]> } {
  const proc = execa('tar', tarArgs(dir, opts.exclude), {
    stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', buffer: { stdout: false }, reject: false, cancelSignal: opts.signal, forceKillAfterDelay: 2000,
  });
  const finished = proc.then((r) => {
    const messages = String(r.stderr).split('\n').filter((l) => l.trim() && !/socket ignored$/.test(l));
    if (r.exitCode === 0) return messages.map((m) => `${dir}: ${m}`);
    if (r.exitCode === 1) return [`${dir}: tar saw files change while reading them (live golden): ${messages.slice(0, 5).join('; ')}`];
    throw new CaptureError(`tar of ${dir} failed (${r.exitCode ?? r.signal}): ${messages.slice(-5).join('; ')}`);
  });
  return { stdout: proc.stdout, kill: () => proc.kill('SIGKILL'), finished };
}

export interface CaptureOptions {
  from: string[];
  exclude?: string[];
  desc?: string;
  bootloader?: BootloaderName;
  /** MBR boot code of the golden's drives (kaboot deploy -m) */
  bootCode?: BootCode[];
  signal?: AbortSignal;
  onProgress?: (msg: string) => void;
}

/** Captures trees readable here into the store, as one image. */
export async function captureLocal(store: ImageStore, name: string, opts: CaptureOptions): Promise<ImageManifest> {
  const sources = await resolveSources(opts.from);
  const staging = await store.begin(name);
  try {
    const warnings: string[] = [];
    for (const s of sources) {
      opts.onProgress?.(`capturing ${s.mount} from ${s.dir} (${s.fstype})`);
      const tar = spawnTar(s.dir, { exclude: s.mount === '/' ? opts.exclude : undefined, signal: opts.signal });
      const added = staging.addFilesystem({ tar: tar.stdout }, s, opts.signal);
      added.catch(() => tar.kill());
      const [rec, tarWarnings] = await Promise.all([added, tar.finished]);
      warnings.push(...tarWarnings);
      opts.onProgress?.(`${s.mount}: ${rec.files} entries, ${rec.bytes_used} bytes used, tar ${rec.tar_bytes} bytes, squashfs ${rec.squashfs_bytes} bytes`);
    }
    return await staging.commit({
      source: { kind: 'local', host: hostname(), paths: sources.map((s) => `${s.mount}=${s.dir}`) },
      desc: opts.desc, bootloader: opts.bootloader, warnings: [...warnings, ...(opts.bootCode ?? []).flatMap((b) => b.warnings)],
      ...(opts.bootCode?.length ? { bootCode: opts.bootCode } : {}),
    });
  } catch (e) {
    await staging.abort();
    throw e;
  }
}
