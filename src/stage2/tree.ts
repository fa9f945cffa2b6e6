// The stage2 root tree: each .deb unpacked with dpkg -x (no maintainer scripts run), in name
// order, then what the maintainer scripts and debootstrap would have done that a chroot needs:
// the merged /usr layout of bookworm, /bin/sh, root in passwd and group, /etc/mtab, and the
// empty mount points the node fills (/target /dev /proc /sys /run /tmp).
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, rmdirSync, symlinkSync, writeFileSync, chmodSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { execa } from 'execa';
import type { CachedDeb } from './debs.js';

/** Directories a bookworm system keeps only as symlinks into /usr (usrmerge). */
export const mergedDirs = ['bin', 'sbin', 'lib', 'lib64'];

/**
 * Left out of the tree: documentation nobody reads on a node (the copyright files stay), and
 * xfsprogs' online scrubber, whose libicu72 and python3 are pruned (see stage2Pruned).
 */
const dropped = ['usr/share/man', 'usr/share/info', 'usr/share/lintian', 'usr/share/bug', 'usr/sbin/xfs_scrub', 'usr/sbin/xfs_scrub_all', 'sbin/xfs_scrub', 'sbin/xfs_scrub_all'];

export class Stage2TreeError extends Error {}

export async function unpackTree(stage: string, debs: CachedDeb[]): Promise<void> {
  for (const d of [...debs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    await execa('dpkg', ['-x', d.file, stage]);
  }
  chmodSync(stage, 0o755);
  pruneDocs(stage);
  for (const d of mergedDirs) mergeIntoUsr(stage, d);
  addChrootBasics(stage);
}

function pruneDocs(stage: string): void {
  for (const d of dropped) rmSync(join(stage, d), { recursive: true, force: true });
  const doc = join(stage, 'usr/share/doc');
  if (existsSync(doc)) {
    for (const pkg of readdirSync(doc)) {
      const dir = join(doc, pkg);
      if (!lstatSync(dir).isDirectory()) continue;
      for (const f of readdirSync(dir)) if (f !== 'copyright') rmSync(join(dir, f), { recursive: true, force: true });
    }
  }
  // grub-install copies every locale it finds and warns when the directory is missing: keep it, empty.
  const locale = join(stage, 'usr/share/locale');
  rmSync(locale, { recursive: true, force: true });
  mkdirMode(locale, 0o755);
}

/** Move /X's entries into /usr/X and make /X a symlink to usr/X, as usrmerge does. */
export function mergeIntoUsr(stage: string, name: string): void {
  const top = join(stage, name);
  const usr = join(stage, 'usr', name);
  if (!existsSync(usr)) mkdirMode(usr, 0o755);
  if (existsSync(top) && !lstatSync(top).isSymbolicLink()) {
    mergeDir(top, usr, stage);
    rmdirSync(top);
  }
  if (!existsSync(top)) symlinkSync(`usr/${name}`, top);
}

function mergeDir(from: string, to: string, stage: string): void {
  for (const entry of readdirSync(from).sort()) {
    const src = join(from, entry);
    const dest = join(to, entry);
    if (!existsSync(dest) && !isLink(dest)) {
      renameSync(src, dest);
      continue;
    }
    const a = lstatSync(src);
    const b = lstatSync(dest);
    if (a.isDirectory() && b.isDirectory()) {
      mergeDir(src, dest, stage);
      rmdirSync(src);
    } else if (sameEntry(src, dest)) {
      rmSync(src);
    } else {
      throw new Stage2TreeError(`/usr merge: /${relative(stage, src)} and /${relative(stage, dest)} both exist and differ`);
    }
  }
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function sameEntry(a: string, b: string): boolean {
  const sa = lstatSync(a);
  const sb = lstatSync(b);
  if (sa.isSymbolicLink() || sb.isSymbolicLink()) {
    // /bin/x -> y and /usr/bin/x -> y; or one side a link to the other's file
    if (sa.isSymbolicLink() && sb.isSymbolicLink()) return readlinkSync(a) === readlinkSync(b);
    return false;
  }
  return sa.isFile() && sb.isFile() && readFileSync(a).equals(readFileSync(b));
}

function addChrootBasics(stage: string): void {
  const sh = join(stage, 'usr/bin/sh');
  if (!existsSync(sh) && !isLink(sh)) symlinkSync('dash', sh);
  if (!existsSync(join(stage, 'usr/bin/dash'))) throw new Stage2TreeError('no /usr/bin/dash for /bin/sh');
  const etc = join(stage, 'etc');
  if (!existsSync(etc)) mkdirMode(etc, 0o755);
  writeFileSync(join(etc, 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n', { mode: 0o644 });
  writeFileSync(join(etc, 'group'), 'root:x:0:\ntty:x:5:\ndisk:x:6:\n', { mode: 0o644 });
  chmodSync(join(etc, 'passwd'), 0o644);
  chmodSync(join(etc, 'group'), 0o644);
  // mkfs and mount ask /etc/mtab whether a device is in use; inside the chroot that is /proc's view.
  if (!isLink(join(etc, 'mtab'))) symlinkSync('../proc/self/mounts', join(etc, 'mtab'));
  const modes: [string, number][] = [['target', 0o755], ['dev', 0o755], ['proc', 0o555], ['sys', 0o555], ['run', 0o755], ['root', 0o700], ['tmp', 0o1777], ['var', 0o755], ['var/tmp', 0o1777]];
  for (const [d, mode] of modes) if (!existsSync(join(stage, d))) mkdirMode(join(stage, d), mode);
}

/** mkdir with an exact mode, whatever the umask (the image must not depend on it). */
function mkdirMode(path: string, mode: number): void {
  mkdirSync(path, { recursive: true });
  chmodSync(path, mode);
}

/** Where each tool lives in the tree (its Debian path under /usr), or an error naming the missing ones. */
export function locateTools(stage: string, tools: string[]): { name: string; path: string }[] {
  const found: { name: string; path: string }[] = [];
  const missing: string[] = [];
  for (const t of tools) {
    const at = ['usr/sbin', 'usr/bin'].map((d) => `${d}/${t}`).find((p) => exists(join(stage, p)));
    if (at) found.push({ name: t, path: `/${at}` });
    else missing.push(t);
  }
  if (missing.length) throw new Stage2TreeError(`stage2 lacks ${missing.join(', ')}`);
  return found;
}

function exists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return isLink(p); // a relative link whose target is inside the tree (checked by the test through chroot)
  }
}
