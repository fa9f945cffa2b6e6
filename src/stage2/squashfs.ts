// mksquashfs with settings that give the same bytes for the same tree: reproducible mode (the
// default since squashfs-tools 4.4, asked for anyway), one time for the file system and every
// inode, every file owned by root, no xattrs (dpkg -x sets none). The image is written under a
// temporary name, fsynced and renamed, so a reader never sees half an image.
import { closeSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';

export interface SquashfsSettings {
  /** zstd level, 1..22 (mksquashfs's default is 15) */
  level: number;
  blockSize: number;
  epoch: number;
}

export function mksquashfsArgs(tree: string, out: string, s: SquashfsSettings): string[] {
  return [
    tree, out, '-noappend', '-reproducible', '-quiet', '-no-progress', '-exit-on-error',
    '-comp', 'zstd', '-Xcompression-level', String(s.level), '-b', String(s.blockSize),
    '-all-root', '-no-xattrs', '-mkfs-time', String(s.epoch), '-all-time', String(s.epoch),
  ];
}

export async function mksquashfsVersion(): Promise<string> {
  const r = await execa('mksquashfs', ['-version'], { reject: false });
  return /mksquashfs version (\S+)/.exec(r.stdout)?.[1] ?? 'unknown';
}

export async function writeSquashfsAtomic(tree: string, out: string, s: SquashfsSettings): Promise<void> {
  const tmp = join(dirname(out), `.${basename(out)}.${process.pid}.tmp`);
  rmSync(tmp, { force: true });
  // mksquashfs refuses SOURCE_DATE_EPOCH together with -mkfs-time/-all-time; the times are explicit here.
  const env = { ...process.env };
  delete env.SOURCE_DATE_EPOCH;
  try {
    await execa('mksquashfs', mksquashfsArgs(tree, tmp, s), { env, extendEnv: false });
    const fd = openSync(tmp, 'r+');
    try { fsyncSync(fd); } finally { closeSync(fd); }
    renameSync(tmp, out);
    const dfd = openSync(dirname(out), 'r');
    try { fsyncSync(dfd); } finally { closeSync(dfd); }
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
