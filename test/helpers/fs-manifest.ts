// A manifest of a file tree (a mounted golden root, a mounted clone) and a comparison
// of two: what a clone must reproduce. For every entry: path, type, permission bits
// (with setuid/setgid/sticky), owner and group ids, mtime (seconds), link count (not
// for directories: theirs depends on the file system), size and sha256 (regular
// files), whether a large file is sparse, symlink target, device numbers, and every
// extended attribute (user.*, trusted.*, security.* such as capabilities, and the
// POSIX ACLs as system.posix_acl_access / system.posix_acl_default), hex-encoded as
// the kernel returns them. Node has no xattr API: one `getfattr -R` (package attr)
// reads them all.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

export type EntryType = 'file' | 'dir' | 'symlink' | 'chardev' | 'blockdev' | 'fifo' | 'socket';

export interface ManifestEntry {
  /** '/' for the root, '/etc/fstab' below it */
  path: string;
  type: EntryType;
  /** permission bits with setuid, setgid, sticky (mode & 0o7777) */
  mode: number;
  uid: number;
  gid: number;
  /** whole seconds */
  mtime: number;
  /** hard links; not for directories */
  nlink?: number;
  /** regular files */
  size?: number;
  sha256?: string;
  /** regular files of 1 MiB or more with less than half of their size allocated */
  sparse?: boolean;
  target?: string;
  rdev?: { major: number; minor: number };
  /** name → value as hex (0x…) */
  xattrs: Record<string, string>;
}

export type Manifest = Map<string, ManifestEntry>;

export interface WalkOptions {
  /** paths (as in the manifest: '/proc') not to enter or list */
  exclude?: string[];
  /** do not cross into other file systems (default true) */
  oneFileSystem?: boolean;
  /** files hashed at once (default 8) */
  concurrency?: number;
}

const sparseMinSize = 1024 * 1024;

function entryType(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isFIFO(): boolean }): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

/** Linux's dev_t encoding (glibc gnu_dev_major/minor). */
export function splitDev(rdev: number): { major: number; minor: number } {
  const r = BigInt(rdev);
  const major = Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn));
  const minor = Number((r & 0xffn) | ((r >> 12n) & ~0xffn));
  return { major, minor };
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function manifestPath(rel: string): string {
  return rel === '' ? '/' : `/${rel}`;
}

/** getfattr prints names with \ooo escapes for bytes it does not print as they are (and \\ for a backslash). */
export function unescapeGetfattrName(name: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < name.length; i++) {
    const c = name[i]!;
    if (c === '\\' && /^[0-7]{3}$/.test(name.slice(i + 1, i + 4))) {
      bytes.push(parseInt(name.slice(i + 1, i + 4), 8));
      i += 3;
    } else if (c === '\\' && name[i + 1] === '\\') {
      bytes.push(0x5c);
      i += 1;
    } else {
      bytes.push(...Buffer.from(c, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Parses `getfattr -R -P -h -d -m - -e hex --absolute-names` output into absolute path → xattrs. */
export function parseGetfattrDump(text: string): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  let current: Record<string, string> | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = {};
      out.set(unescapeGetfattrName(line.slice('# file: '.length)), current);
    } else if (line === '') {
      current = undefined;
    } else if (current) {
      const eq = line.indexOf('=');
      const name = eq < 0 ? line : line.slice(0, eq);
      current[name] = eq < 0 ? '' : line.slice(eq + 1);
    }
  }
  return out;
}

async function readXattrs(root: string): Promise<Map<string, Record<string, string>>> {
  // -P: no symlinks followed while walking; -h: a symlink's own attributes.
  // getfattr exits 1 when some file could not be read (a vanished file); what it did print still counts.
  const r = await execa('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root], { reject: false, stripFinalNewline: false, maxBuffer: 1 << 30 });
  if (r.exitCode !== 0 && r.stdout === '') throw new Error(`getfattr on ${root} failed (exit ${r.exitCode}): ${r.stderr}`);
  return parseGetfattrDump(r.stdout);
}

/** Walks `root` and returns its manifest, keyed by path ('/', '/etc', …). */
export async function buildManifest(root: string, opts: WalkOptions = {}): Promise<Manifest> {
  const exclude = new Set(opts.exclude ?? []);
  const oneFs = opts.oneFileSystem ?? true;
  const rootStat = await lstat(root);
  const entries: ManifestEntry[] = [];
  const toHash: { entry: ManifestEntry; file: string }[] = [];

  async function visit(rel: string): Promise<void> {
    const full = rel === '' ? root : join(root, rel);
    const st = await lstat(full, { bigint: false });
    const type = entryType(st);
    const entry: ManifestEntry = {
      path: manifestPath(rel),
      type,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      mtime: Math.floor(st.mtimeMs / 1000),
      xattrs: {},
    };
    if (type !== 'dir') entry.nlink = st.nlink;
    if (type === 'file') {
      entry.size = st.size;
      if (st.size >= sparseMinSize) entry.sparse = st.blocks * 512 < st.size / 2;
      toHash.push({ entry, file: full });
    } else if (type === 'symlink') {
      entry.target = await readlink(full);
    } else if (type === 'chardev' || type === 'blockdev') {
      entry.rdev = splitDev(st.rdev);
    }
    entries.push(entry);
    if (type === 'dir' && (!oneFs || st.dev === rootStat.dev || rel === '')) {
      const names = (await readdir(full)).sort();
      for (const name of names) {
        const childRel = rel === '' ? name : `${rel}/${name}`;
        if (exclude.has(manifestPath(childRel))) continue;
        await visit(childRel);
      }
    }
  }
  await visit('');

  const concurrency = opts.concurrency ?? 8;
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < toHash.length) {
      const job = toHash[next++]!;
      job.entry.sha256 = await sha256File(job.file);
    }
  }));

  const xattrs = await readXattrs(root);
  const prefix = root.endsWith('/') ? root.slice(0, -1) : root;
  const manifest: Manifest = new Map();
  for (const e of entries) {
    const abs = e.path === '/' ? prefix || '/' : prefix + e.path;
    e.xattrs = xattrs.get(abs) ?? {};
    manifest.set(e.path, e);
  }
  return manifest;
}

export type Field = Exclude<keyof ManifestEntry, 'path' | 'xattrs'>;

export interface Difference {
  path: string;
  kind: 'missing' | 'extra' | 'changed';
  /** for 'changed': the field, or 'xattr:<name>' */
  field?: string;
  a?: unknown;
  b?: unknown;
}

export interface CompareOptions {
  /**
   * Paths to leave out, with what is below them. A pattern without wildcards is a path
   * ('/etc/fstab', '/var/log'); `*` matches within one path segment, `**` across
   * segments ('/var/lib/systemd/*', '/var/log/**', '**\/*.pyc').
   */
  ignore?: string[];
  /** fields not compared, e.g. ['mtime'] */
  ignoreFields?: Field[];
  /** xattr names (or patterns as above, against the name) not compared, e.g. ['security.selinux'] */
  ignoreXattrs?: string[];
}

function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') { re += '.*'; i++; }
    else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  // A pattern also covers what is below what it matches.
  return new RegExp(`^${re}(/.*)?$`);
}

export function pathMatcher(patterns: string[]): (path: string) => boolean {
  const res = patterns.map(globToRegExp);
  return (path) => res.some((r) => r.test(path));
}

const fields: Field[] = ['type', 'mode', 'uid', 'gid', 'mtime', 'nlink', 'size', 'sha256', 'sparse', 'target', 'rdev'];

function same(x: unknown, y: unknown): boolean {
  return JSON.stringify(x) === JSON.stringify(y);
}

/** Differences between manifest a (say, the golden) and b (a clone): missing from b, extra in b, changed. */
export function compareManifests(a: Manifest, b: Manifest, opts: CompareOptions = {}): Difference[] {
  const ignored = pathMatcher(opts.ignore ?? []);
  const ignoredXattr = pathMatcher(opts.ignoreXattrs ?? []);
  const skipFields = new Set(opts.ignoreFields ?? []);
  const diffs: Difference[] = [];
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  for (const path of paths) {
    if (ignored(path)) continue;
    const x = a.get(path);
    const y = b.get(path);
    if (!y) { diffs.push({ path, kind: 'missing', a: x?.type }); continue; }
    if (!x) { diffs.push({ path, kind: 'extra', b: y.type }); continue; }
    for (const f of fields) {
      if (skipFields.has(f)) continue;
      if (!same(x[f], y[f])) diffs.push({ path, kind: 'changed', field: f, a: x[f], b: y[f] });
    }
    const names = [...new Set([...Object.keys(x.xattrs), ...Object.keys(y.xattrs)])].sort();
    for (const n of names) {
      if (ignoredXattr(n)) continue;
      if (x.xattrs[n] !== y.xattrs[n]) diffs.push({ path, kind: 'changed', field: `xattr:${n}`, a: x.xattrs[n], b: y.xattrs[n] });
    }
  }
  return diffs;
}

/** One line per difference, for assertion messages. */
export function formatDifferences(diffs: Difference[], max = 50): string {
  const lines = diffs.slice(0, max).map((d) =>
    d.kind === 'changed' ? `changed ${d.path} ${d.field}: ${JSON.stringify(d.a)} → ${JSON.stringify(d.b)}` : `${d.kind} ${d.path} (${JSON.stringify(d.a ?? d.b)})`);
  if (diffs.length > max) lines.push(`… and ${diffs.length - max} more`);
  return lines.join('\n');
}

/** Entries that hold any of the given xattr name prefixes, e.g. ['user.', 'system.posix_acl_']: to check a manifest has what it should. */
export function entriesWithXattr(m: Manifest, prefix: string): ManifestEntry[] {
  return [...m.values()].filter((e) => Object.keys(e.xattrs).some((n) => n.startsWith(prefix)));
}
