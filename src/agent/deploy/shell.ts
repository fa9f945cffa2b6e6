// Command lines as argv arrays, and the few that must go through a shell (a pipe, a
// redirection) quoted here. Pure.
import { posix } from 'node:path';

/** One word for sh: 'it'\''s' quoting; plain words stay as they are, for readable logs. */
export function shq(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export function shJoin(argv: string[]): string {
  return argv.map(shq).join(' ');
}

/** argv that runs TOOL inside a chroot, with busybox's chroot (the initrd has nothing else) */
export function chrootArgv(busybox: string, root: string, argv: string[]): [string, string[]] {
  return [busybox, ['chroot', root, ...argv]];
}

/** A path on the node's root as the stage2 chroot sees it: /stage2/target/boot → /target/boot. */
export function insideRoot(root: string, path: string): string {
  const rel = posix.relative(root, path);
  if (rel.startsWith('..') || posix.isAbsolute(rel)) throw new Error(`${path} is not below ${root}`);
  return rel === '' ? '/' : `/${rel}`;
}

/** A mount point of the clone under the target folder: "/" → /stage2/target, "/boot" → /stage2/target/boot. */
export function targetDir(stage2: string, mount: string): string {
  const p = posix.join(stage2, 'target', mount);
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}
