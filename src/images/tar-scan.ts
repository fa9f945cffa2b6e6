// Reads the headers of a tar stream as it flows past (pax/ustar/GNU), without unpacking
// it: squashfs has no place for POSIX ACLs, so the capture keeps them from here, and the
// manifest learns the file count, the bytes used, the kernels and a few small files
// (etc/fstab) on the way. Pure and incremental: push chunks, then end().
export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'chardev' | 'blockdev' | 'dir' | 'fifo' | 'other';

export interface TarEntry {
  /** path as in the archive, "./" prefix removed, no trailing "/"; bytes kept as latin1 */
  path: string;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  /** file size (the real size of a sparse file) */
  size: number;
  /** data bytes the archive carries for it */
  stored: number;
  linkname: string;
  /** POSIX ACL text (getfacl's entries, one per line), when tar --acls stored one */
  aclAccess?: string;
  aclDefault?: string;
  /** the content, for paths asked for in `keep` */
  content?: Buffer;
}

export class TarFormatError extends Error {
  override name = 'TarFormatError';
  constructor(readonly offset: number, detail: string) {
    super(`tar stream, byte ${offset}: ${detail}`);
  }
}

const BLOCK = 512;
const typeOf: Record<string, TarEntryType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'chardev', '4': 'blockdev', '5': 'dir', '6': 'fifo',
};

function cstr(b: Buffer, start: number, len: number): string {
  const end = b.indexOf(0, start);
  return b.toString('latin1', start, end === -1 || end > start + len ? start + len : end);
}

function num(b: Buffer, start: number, len: number, offset: number, field: string): number {
  if (b[start]! & 0x80) {
    // GNU base-256 for values that do not fit in octal
    let v = 0;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + b[i]!;
    if (!Number.isSafeInteger(v)) throw new TarFormatError(offset, `${field} too large`);
    return v;
  }
  const s = cstr(b, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(offset, `${field} is not octal: ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

function parsePax(data: Buffer, offset: number): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let i = 0;
  while (i < data.length) {
    if (data[i] === 0) break;
    const sp = data.indexOf(0x20, i);
    if (sp === -1) throw new TarFormatError(offset, 'pax record without a length');
    const len = Number(data.toString('latin1', i, sp));
    if (!Number.isInteger(len) || len <= sp - i || i + len > data.length) throw new TarFormatError(offset, 'pax record length out of range');
    const rec = data.subarray(sp + 1, i + len - 1); // without the trailing newline
    const eq = rec.indexOf(0x3d);
    if (eq === -1) throw new TarFormatError(offset, 'pax record without "="');
    out.set(rec.toString('latin1', 0, eq), rec.subarray(eq + 1));
    i += len;
  }
  return out;
}

const normalizePath = (p: string) => {
  let s = p;
  while (s.startsWith('./')) s = s.slice(2);
  if (s === '.' ) s = '';
  return s.replace(/\/+$/, '');
};

export interface TarScannerOptions {
  /** paths (normalized, e.g. "etc/fstab") whose content to keep, up to keepLimit bytes each */
  keep?: Set<string>;
  keepLimit?: number;
}

export class TarScanner {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private offset = 0; // bytes consumed so far
  private state: 'header' | 'data' | 'end' = 'header';
  private dataLeft = 0;
  private padLeft = 0;
  private collect: Buffer[] | undefined;
  private current: (TarEntry & { kind: 'entry' | 'pax' | 'gpax' | 'longname' | 'longlink' }) | undefined;
  private pax = new Map<string, Buffer>();
  private globalPax = new Map<string, Buffer>();
  private longName: string | undefined;
  private longLink: string | undefined;
  private zeroBlocks = 0;

  constructor(private readonly onEntry: (e: TarEntry) => void, private readonly opts: TarScannerOptions = {}) {}

  /** Throws TarFormatError on a malformed stream. */
  push(chunk: Buffer): void {
    let c = chunk;
    while (c.length) {
      if (this.state === 'end') {
        this.offset += c.length; // zero padding after the end blocks
        return;
      }
      if (this.state === 'data') {
        const take = Math.min(c.length, this.dataLeft + this.padLeft);
        const dataPart = Math.min(take, this.dataLeft);
        if (this.collect && dataPart) this.collect.push(c.subarray(0, dataPart));
        this.dataLeft -= dataPart;
        this.padLeft -= take - dataPart;
        this.offset += take;
        c = c.subarray(take);
        if (this.dataLeft === 0 && this.padLeft === 0) this.finishMember();
        continue;
      }
      const need = BLOCK - this.pendingBytes;
      const part = c.subarray(0, need);
      this.pending.push(part);
      this.pendingBytes += part.length;
      c = c.subarray(part.length);
      if (this.pendingBytes === BLOCK) {
        const block = Buffer.concat(this.pending, BLOCK);
        this.pending = [];
        this.pendingBytes = 0;
        this.header(block);
        this.offset += BLOCK;
      }
    }
  }

  /** The stream ended: it must end on a member boundary (GNU tar writes two zero blocks). */
  end(): void {
    if (this.state === 'data' || this.pendingBytes) throw new TarFormatError(this.offset, 'the stream ends inside a member (truncated)');
    if (this.state !== 'end') throw new TarFormatError(this.offset, 'the stream ends without the end-of-archive blocks (truncated)');
  }

  private header(b: Buffer): void {
    if (b.every((x) => x === 0)) {
      if (++this.zeroBlocks === 2) this.state = 'end';
      return;
    }
    if (this.zeroBlocks) throw new TarFormatError(this.offset, 'data after an end-of-archive block');
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i]!;
    if (num(b, 148, 8, this.offset, 'checksum') !== sum) throw new TarFormatError(this.offset, 'header checksum mismatch (not a tar stream, or a corrupt one)');
    const flag = String.fromCharCode(b[156]!);
    const size = num(b, 124, 12, this.offset, 'size');
    const magic = b.toString('latin1', 257, 263);
    const prefix = magic === 'ustar\0' ? cstr(b, 345, 155) : '';
    const name = prefix ? `${prefix}/${cstr(b, 0, 100)}` : cstr(b, 0, 100);
    let kind: 'entry' | 'pax' | 'gpax' | 'longname' | 'longlink' = 'entry';
    if (flag === 'x') kind = 'pax';
    else if (flag === 'g') kind = 'gpax';
    else if (flag === 'L') kind = 'longname';
    else if (flag === 'K') kind = 'longlink';
    this.current = {
      kind, path: name, type: typeOf[flag] ?? 'other',
      mode: num(b, 100, 8, this.offset, 'mode'), uid: num(b, 108, 8, this.offset, 'uid'), gid: num(b, 116, 8, this.offset, 'gid'),
      size, stored: size, linkname: cstr(b, 157, 100),
    };
    this.dataLeft = size;
    this.padLeft = (BLOCK - (size % BLOCK)) % BLOCK;
    const meta = kind !== 'entry';
    if (meta && size > 16 * 1024 * 1024) throw new TarFormatError(this.offset, `a ${size}-byte extended header`);
    this.collect = meta ? [] : undefined;
    if (kind === 'entry') this.resolveEntry();
    if (size === 0) this.finishMember();
    else this.state = 'data';
  }

  private resolveEntry(): void {
    const e = this.current!;
    const pax = new Map([...this.globalPax, ...this.pax]);
    const str = (k: string) => pax.get(k)?.toString('latin1');
    const path = str('GNU.sparse.name') ?? str('path') ?? this.longName ?? e.path;
    e.path = normalizePath(path);
    e.linkname = str('linkpath') ?? this.longLink ?? e.linkname;
    const real = str('GNU.sparse.realsize') ?? str('GNU.sparse.size') ?? str('size');
    if (real !== undefined && /^[0-9]+$/.test(real)) e.size = Number(real);
    for (const [k, f] of [['uid', 'uid'], ['gid', 'gid']] as const) {
      const v = str(k);
      if (v !== undefined && /^[0-9]+$/.test(v)) e[f] = Number(v);
    }
    const acc = str('SCHILY.acl.access');
    const def = str('SCHILY.acl.default');
    if (acc) e.aclAccess = acc;
    if (def) e.aclDefault = def;
    if (e.type === 'file' && this.opts.keep?.has(e.path) && e.stored <= (this.opts.keepLimit ?? 256 * 1024) && !str('GNU.sparse.major')) this.collect = [];
    this.pax = new Map();
    this.longName = undefined;
    this.longLink = undefined;
  }

  private finishMember(): void {
    const e = this.current!;
    const data = this.collect ? Buffer.concat(this.collect) : undefined;
    this.collect = undefined;
    this.state = 'header';
    if (e.kind === 'pax') this.pax = parsePax(data!, this.offset);
    else if (e.kind === 'gpax') for (const [k, v] of parsePax(data!, this.offset)) this.globalPax.set(k, v);
    else if (e.kind === 'longname') this.longName = data!.toString('latin1').replace(/\0+$/, '');
    else if (e.kind === 'longlink') this.longLink = data!.toString('latin1').replace(/\0+$/, '');
    else {
      const { kind: _k, ...entry } = e;
      if (data) entry.content = data;
      this.onEntry(entry);
    }
  }
}

/** getfacl's path quoting, which setfacl --restore reads back: octal escapes for backslash, blanks, controls, non-ASCII. */
export function quoteAclPath(latin1Path: string): string {
  let out = '';
  for (const ch of latin1Path) {
    const c = ch.charCodeAt(0);
    out += c <= 0x20 || c >= 0x7f || ch === '\\' ? '\\' + c.toString(8).padStart(3, '0') : ch;
  }
  return out;
}

/** One entry in the text format of getfacl, for `setfacl --restore` in the unpacked tree. */
export function aclBlock(e: TarEntry): string {
  const lines = [`# file: ${quoteAclPath(e.path === '' ? '.' : e.path)}`];
  // setfacl --restore clears setuid, setgid and sticky unless the block names them.
  const flags = (e.mode & 0o4000 ? 's' : '-') + (e.mode & 0o2000 ? 's' : '-') + (e.mode & 0o1000 ? 't' : '-');
  if (flags !== '---') lines.push(`# flags: ${flags}`);
  for (const l of (e.aclAccess ?? '').split(/[\n,]/)) if (l.trim()) lines.push(l.trim());
  for (const l of (e.aclDefault ?? '').split(/[\n,]/)) if (l.trim()) lines.push(`default:${l.trim()}`);
  return lines.join('\n') + '\n\n';
}
