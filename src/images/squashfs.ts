// A tar stream into a squashfs, never unpacked: tar2sqfs (squashfs-tools-ng) reads the
// stream and keeps numeric owners, modes, hard links, sparse files and the user.,
// trusted. and security. xattrs. On the way, the stream's sha256 is taken and its
// headers are read (tar-scan.ts) for ACLs, counts, kernels and etc/fstab.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, stat, writeFile } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { posix } from 'node:path';
import { execa } from 'execa';
import { TarScanner, TarFormatError, aclBlock, type TarEntry } from './tar-scan.js';

export interface TarIngest {
  tar_bytes: number;
  tar_sha256: string;
  files: number;
  bytes_used: number;
  squashfs_bytes: number;
  squashfs_sha256: string;
  acl_entries: number;
  /** absolute paths on the golden ("/etc/fstab") → content */
  kept: Map<string, Buffer>;
  kernels: string[];
  bootloaderHints: Set<'grub-pc' | 'grub-efi' | 'extlinux'>;
}

export class CaptureError extends Error {
  override name = 'CaptureError';
}

export interface TarToSquashfsOptions {
  /** mount point of the tree on the golden, to read absolute paths */
  mount: string;
  /** absolute golden paths whose content to keep */
  keep?: string[];
  /** getfacl text goes here when the stream carries ACLs */
  aclPath: string;
  /**
   * zstd level of the squashfs blocks. tar2sqfs defaults to 15, which on 1 GB of
   * /usr/lib cost 30x the CPU of level 3 for ~10% less; 6 is the knee (measured:
   * docs/images.md).
   */
  zstdLevel?: number;
  signal?: AbortSignal;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), async function* (src) {
    for await (const c of src) h.update(c as Buffer);
  });
  return h.digest('hex');
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}

/** Builds sqfsPath from the tar stream; on any failure nothing is left at sqfsPath or aclPath. */
export async function tarToSquashfs(input: Readable, sqfsPath: string, opts: TarToSquashfsOptions): Promise<TarIngest> {
  const relKeep = new Set((opts.keep ?? []).map((p) => posix.relative(opts.mount, p)).filter((p) => !p.startsWith('..')));
  const hash = createHash('sha256');
  let tarBytes = 0;
  let files = 0;
  let bytesUsed = 0;
  const acl: string[] = [];
  const kept = new Map<string, Buffer>();
  const kernels = new Set<string>();
  const hints = new Set<'grub-pc' | 'grub-efi' | 'extlinux'>();
  const onEntry = (e: TarEntry) => {
    files++;
    if (e.type === 'file') bytesUsed += e.stored;
    if (e.aclAccess || e.aclDefault) acl.push(aclBlock(e));
    const abs = posix.join(opts.mount, e.path);
    if (e.content) kept.set(abs, e.content);
    const mod = /^\/(?:usr\/)?lib\/modules\/([^/]+)$/.exec(abs);
    if (mod && e.type === 'dir') kernels.add(mod[1]!);
    const vmlinuz = /^\/boot\/vmlinuz-([^/]+)$/.exec(abs);
    if (vmlinuz && e.type === 'file') kernels.add(vmlinuz[1]!);
    if (/^\/boot\/grub\/i386-pc$/.test(abs)) hints.add('grub-pc');
    if (/^\/boot\/grub\/(x86_64|i386|arm64)-efi$/.test(abs) || /^\/boot\/efi\/EFI\/[^/]+\/grub[a-z0-9]*\.efi$/i.test(abs)) hints.add('grub-efi');
    if (/^\/boot\/(extlinux|syslinux)\/(extlinux|syslinux)\.conf$/.test(abs)) hints.add('extlinux');
  };
  const scanner = new TarScanner(onEntry, { keep: relKeep });
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      tarBytes += chunk.length;
      try {
        scanner.push(chunk);
      } catch (e) {
        done(e as Error);
        return;
      }
      done(null, chunk);
    },
  });

  const builder = execa('tar2sqfs', ['--quiet', '--force', '--no-skip', '--compressor', 'zstd', '--comp-extra', `level=${opts.zstdLevel ?? 6}`, sqfsPath], {
    stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', reject: false, cancelSignal: opts.signal, forceKillAfterDelay: 2000,
  });
  const cleanup = async () => {
    await rm(sqfsPath, { force: true });
    await rm(opts.aclPath, { force: true });
  };
  try {
    const fed = pipeline(input, tap, builder.stdin!).then(() => undefined, (e: unknown) => e);
    const [feedError, result] = await Promise.all([fed, builder]);
    if (feedError && result.exitCode !== 0 && !(feedError instanceof TarFormatError) && !opts.signal?.aborted && (feedError as NodeJS.ErrnoException).code === 'EPIPE') {
      throw new CaptureError(`tar2sqfs failed (${result.exitCode ?? result.signal}): ${String(result.stderr).trim().slice(-2000)}`);
    }
    if (feedError) {
      builder.kill('SIGKILL');
      if (feedError instanceof TarFormatError) throw new CaptureError(`the capture stream is not a valid tar: ${feedError.message}`);
      throw new CaptureError(`the capture stream failed after ${tarBytes} bytes: ${(feedError as Error).message}`);
    }
    try {
      scanner.end();
    } catch (e) {
      throw new CaptureError(`the capture stream is incomplete: ${(e as Error).message}`);
    }
    if (result.exitCode !== 0) throw new CaptureError(`tar2sqfs failed (${result.exitCode ?? result.signal}): ${String(result.stderr).trim().slice(-2000)}`);
    if (acl.length) await writeFile(opts.aclPath, acl.join(''), { mode: 0o644 });
    await fsyncPath(sqfsPath);
    if (acl.length) await fsyncPath(opts.aclPath);
    const { size } = await stat(sqfsPath);
    return {
      tar_bytes: tarBytes,
      tar_sha256: hash.digest('hex'),
      files,
      bytes_used: bytesUsed,
      squashfs_bytes: size,
      squashfs_sha256: await sha256File(sqfsPath),
      acl_entries: acl.length,
      kept,
      kernels: [...kernels].sort(),
      bootloaderHints: hints,
    };
  } catch (e) {
    builder.kill('SIGKILL');
    await cleanup();
    throw e;
  }
}
