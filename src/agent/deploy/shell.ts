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

/** A mount point of the clone under the target folder: "/" → /stage2/target, "/boot" → /stage2/target/boot. */
export function targetDir(stage2: string, mount: string): string {
  const p = posix.join(stage2, 'target', mount);
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}
