// Files served from a directory, strictly below it.
//
// Path rules (checked before the file system is touched, see safeRelativePath):
// - one leading "/" is stripped and the rest taken from the root, as tftp-hpa does with
//   -s (pxelinux and the seed's configs ask "/X86PC/linux/linux.0"); a second leading
//   "/" is refused rather than guessed at;
// - "..", backslashes, NUL bytes and control characters are refused; "." and empty
//   segments ("a//b") are dropped;
// Then the real path (all symlinks resolved) must still lie below the root's real
// path, and be a regular file.
import { realpath } from 'node:fs/promises';
import { sep } from 'node:path';
import { FileCache } from './file-cache.js';
import type { FileProvider, FileSource, TftpLookupError } from './provider.js';

export type SafePathResult = { ok: true; segments: string[] } | { ok: false; reason: string };

export function safeRelativePath(requested: string): SafePathResult {
  if (requested.length === 0) return { ok: false, reason: 'empty path' };
  if (requested.length > 1024) return { ok: false, reason: 'path too long' };
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(requested)) return { ok: false, reason: 'control character in path' };
  if (requested.includes('\\')) return { ok: false, reason: 'backslash in path' };
  const rel = requested.startsWith('/') ? requested.slice(1) : requested;
  if (rel.startsWith('/')) return { ok: false, reason: 'absolute path' };
  const segments: string[] = [];
  for (const s of rel.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') return { ok: false, reason: '".." in path' };
    segments.push(s);
  }
  if (segments.length === 0) return { ok: false, reason: 'no file named' };
  return { ok: true, segments };
}

export interface DirProviderOptions {
  cache?: FileCache;
}

export interface DirProvider extends FileProvider {
  readonly cache: FileCache;
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

export function dirProvider(root: string, opts: DirProviderOptions = {}): DirProvider {
  const cache = opts.cache ?? new FileCache();
  let rootReal: Promise<string> | null = null;

  async function open(path: string): Promise<FileSource | TftpLookupError> {
    const safe = safeRelativePath(path);
    if (!safe.ok) return { error: 'access-denied', message: `access violation: ${safe.reason}` };
    let base: string;
    try {
      rootReal ??= realpath(root);
      base = await rootReal;
    } catch {
      rootReal = null; // the root may appear later
      return { error: 'not-found', message: 'file not found' };
    }
    let real: string;
    try {
      real = await realpath(base + sep + safe.segments.join(sep));
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EACCES') return { error: 'access-denied', message: 'access violation' };
      return { error: 'not-found', message: 'file not found' };
    }
    if (!real.startsWith(base === sep ? sep : base + sep)) return { error: 'access-denied', message: 'access violation: outside the root' };
    try {
      return await cache.open(real);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT') return { error: 'not-found', message: 'file not found' };
      if (code === 'EACCES' || code === 'EISDIR' || code === 'EPERM') return { error: 'access-denied', message: 'access violation' };
      return { error: 'io-error', message: 'read error' };
    }
  }

  return { cache, open: (path) => open(path) };
}
