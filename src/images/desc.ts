// desc: the seed's partition scheme format, one line per partition ("linux 3500",
// "extended fill", "logical swap 500", "type83 fill"), extended for today's systems with
// a GPT label, an EFI system partition, and a file system and mount point per partition.
// parseDesc turns text into a checked plan or throws a DescError naming line and column.
import { posix } from 'node:path';
import {
  type PartitionKind, GUID_RE, DOS_EXTENDED, dosCode, gptCode, gptForDosCode, normalizeDosCode,
} from './part-types.js';

export type DiskLabel = 'dos' | 'gpt';
export const FS_TYPES = ['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'vfat', 'swap', 'none'] as const;
export type FsType = (typeof FS_TYPES)[number];

export interface DescPartition {
  /** 1-based line of the desc that made it */
  line: number;
  /** partition number as the kernel names it: primaries 1-4 in order, logicals from 5 */
  number: number;
  logical: boolean;
  kind: PartitionKind;
  /** how the line named the type: linux, swap, extended, esp, type83, typeC12A7328-... */
  typeName: string;
  /** DOS hex code ("83", "5", "ef") for a dos label, GUID for a gpt label */
  typeCode: string;
  /** MiB, or 'fill' for the rest of the disk (or of the extended partition) */
  size: number | 'fill';
  fs?: FsType;
  mount?: string;
  /** file system label (mkfs -L / -n) */
  fsLabel?: string;
  bootable: boolean;
}

export interface DescPlan {
  label: DiskLabel;
  partitions: DescPartition[];
}

export interface DescOptions {
  /** disk size in MiB: when known, the plan must fit */
  diskMiB?: number;
}

export class DescError extends Error {
  constructor(readonly line: number, readonly column: number, readonly detail: string) {
    super(`line ${line}, column ${column}: ${detail}`);
    this.name = 'DescError';
  }
}

const MAX_MIB = 2 ** 40; // 1 EiB: beyond any disk, and well inside a double's exact integers
const LABEL_RE = /^[A-Za-z0-9._-]{1,16}$/;

interface Token { text: string; column: number }

function tokenize(line: string): Token[] {
  const tokens: Token[] = [];
  const re = /[^\s#]+|#/g;
  for (let m = re.exec(line); m; m = re.exec(line)) {
    if (m[0] === '#') break; // the rest of the line is a comment
    tokens.push({ text: m[0], column: m.index + 1 });
  }
  return tokens;
}

const quote = (s: string) => JSON.stringify(s.length > 40 ? s.slice(0, 40) + '…' : s);

function parseType(tok: Token, lineNo: number, label: DiskLabel): { kind: PartitionKind; typeCode: string } {
  const t = tok.text.toLowerCase();
  if (t === 'linux' || t === 'swap' || t === 'esp') {
    return { kind: t, typeCode: label === 'gpt' ? gptCode[t] : dosCode[t] };
  }
  if (t === 'extended') {
    if (label === 'gpt') throw new DescError(lineNo, tok.column, 'a GPT has no extended partitions: list every partition as a primary one');
    return { kind: 'extended', typeCode: dosCode.extended };
  }
  if (t.startsWith('type')) {
    const code = tok.text.slice(4);
    if (/^[0-9a-fA-F]{1,2}$/.test(code)) {
      const dos = normalizeDosCode(code);
      if (dos === '0') throw new DescError(lineNo, tok.column, 'type0 means an empty slot; expected a partition type such as type83');
      if (label === 'gpt') {
        const guid = gptForDosCode(dos);
        if (!guid) throw new DescError(lineNo, tok.column + 4, `DOS type ${dos} has no GPT equivalent that kaboot knows; write the GPT type GUID (type0FC63DAF-8483-4772-8E79-3D69D8477DE4)`);
        return { kind: kindOfCode(dos), typeCode: guid };
      }
      return { kind: kindOfCode(dos), typeCode: dos };
    }
    if (GUID_RE.test(code)) {
      if (label !== 'gpt') throw new DescError(lineNo, tok.column + 4, 'a type GUID needs a GPT: add "label gpt" as the first line, or use a DOS hex type like type83');
      const guid = code.toUpperCase();
      return { kind: kindOfGuid(guid), typeCode: guid };
    }
    throw new DescError(lineNo, tok.column + 4, `expected a hex type code after "type" (type83, type82, typeb) or a GPT type GUID, got ${quote(code)}`);
  }
  throw new DescError(lineNo, tok.column, `expected a partition type (linux, swap, extended, esp, typeXX) or "logical", got ${quote(tok.text)}`);
}

function kindOfCode(dos: string): PartitionKind {
  if (dos === '83') return 'linux';
  if (dos === '82') return 'swap';
  if (dos === 'ef') return 'esp';
  if (DOS_EXTENDED.has(dos)) return 'extended';
  return 'other';
}

function kindOfGuid(guid: string): PartitionKind {
  if (guid === gptCode.linux) return 'linux';
  if (guid === gptCode.swap) return 'swap';
  if (guid === gptCode.esp) return 'esp';
  return 'other';
}

function parseSize(tok: Token | undefined, lineNo: number, lineLength: number): number | 'fill' {
  if (!tok) throw new DescError(lineNo, lineLength + 1, 'expected a size in MB or "fill" after the type');
  if (tok.text.toLowerCase() === 'fill') return 'fill';
  if (!/^[0-9]+$/.test(tok.text)) throw new DescError(lineNo, tok.column, `expected a size in MB (a whole number) or "fill", got ${quote(tok.text)}`);
  const n = Number(tok.text);
  if (n <= 0) throw new DescError(lineNo, tok.column, 'a partition size must be at least 1 MB');
  if (n > MAX_MIB) throw new DescError(lineNo, tok.column, `a size of ${tok.text} MB is larger than any disk`);
  return n;
}

function parseAttributes(tokens: Token[], lineNo: number, p: DescPartition): void {
  for (const tok of tokens) {
    const t = tok.text;
    if ((FS_TYPES as readonly string[]).includes(t)) {
      if (p.fs !== undefined) throw new DescError(lineNo, tok.column, `a second file system type ${quote(t)}; this partition already has ${p.fs}`);
      p.fs = t as FsType;
    } else if (t.startsWith('/')) {
      if (p.mount !== undefined) throw new DescError(lineNo, tok.column, `a second mount point ${quote(t)}; this partition already mounts at ${p.mount}`);
      const norm = posix.normalize(t);
      if (t.split('/').some((c) => c === '..' || c === '.') || (norm !== t && norm + '/' !== t) || /[\x00-\x1f\\]/.test(t)) {
        throw new DescError(lineNo, tok.column, `expected an absolute mount point without "." or ".." (like /var), got ${quote(t)}`);
      }
      p.mount = norm === '/' ? '/' : norm.replace(/\/$/, '');
    } else if (t === 'bootable') {
      p.bootable = true;
    } else if (t.startsWith('label=')) {
      const v = t.slice(6);
      if (!LABEL_RE.test(v)) throw new DescError(lineNo, tok.column + 6, `expected a file system label of 1-16 letters, digits, ".", "_" or "-", got ${quote(v)}`);
      p.fsLabel = v;
    } else {
      throw new DescError(lineNo, tok.column, `expected a file system (${FS_TYPES.join(', ')}), a mount point (/...), "bootable" or label=NAME, got ${quote(t)}`);
    }
  }
}

/** Parse and check a desc. Throws only DescError. */
export function parseDesc(text: string, opts: DescOptions = {}): DescPlan {
  let label: DiskLabel | undefined;
  let labelLine = 0;
  const partitions: DescPartition[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i]!;
    const tokens = tokenize(raw);
    const first = tokens[0];
    if (!first) continue;
    const word = first.text.toLowerCase();

    if (word === 'label' || word === 'gpt' || word === 'dos' || word === 'msdos' || word === 'mbr') {
      let value: Token | undefined = first;
      if (word === 'label') {
        value = tokens[1];
        if (!value) throw new DescError(lineNo, raw.length + 1, 'expected "dos" or "gpt" after "label"');
      }
      const v = value.text.toLowerCase();
      if (v !== 'gpt' && v !== 'dos' && v !== 'msdos' && v !== 'mbr') throw new DescError(lineNo, value.column, `expected "dos" or "gpt", got ${quote(value.text)}`);
      const extra = tokens[word === 'label' ? 2 : 1];
      if (extra) throw new DescError(lineNo, extra.column, `unexpected ${quote(extra.text)} after the label`);
      if (label !== undefined) throw new DescError(lineNo, first.column, `a second label line; the label is already ${label} (line ${labelLine})`);
      if (partitions.length) throw new DescError(lineNo, first.column, 'the label line must come before the first partition');
      label = v === 'gpt' ? 'gpt' : 'dos';
      labelLine = lineNo;
      continue;
    }

    const effective: DiskLabel = label ?? 'dos';
    let k = 0;
    const logical = word === 'logical';
    if (logical) {
      k++;
      if (effective === 'gpt') throw new DescError(lineNo, first.column, 'a GPT has no logical partitions: drop "logical"');
    }
    const typeTok = tokens[k];
    if (!typeTok) throw new DescError(lineNo, raw.length + 1, 'expected a partition type after "logical"');
    const { kind, typeCode } = parseType(typeTok, lineNo, effective);
    const size = parseSize(tokens[k + 1], lineNo, raw.replace(/#.*$/, '').trimEnd().length);
    const p: DescPartition = { line: lineNo, number: 0, logical, kind, typeName: typeTok.text, typeCode, size, bootable: false };
    parseAttributes(tokens.slice(k + 2), lineNo, p);
    checkPartition(p, typeTok, tokens.slice(k + 2), lineNo);
    if (kind === 'swap' && p.fs === undefined) p.fs = 'swap';
    if (kind === 'esp') {
      p.fs ??= 'vfat';
      p.mount ??= '/boot/efi';
    }
    partitions.push(p);
  }
  const plan: DescPlan = { label: label ?? 'dos', partitions };
  checkPlan(plan, opts);
  return plan;
}

function columnOf(tokens: Token[], pred: (t: string) => boolean): number {
  return tokens.find((t) => pred(t.text))?.column ?? 1;
}

function checkPartition(p: DescPartition, typeTok: Token, attrs: Token[], lineNo: number): void {
  if (p.kind === 'extended') {
    if (p.logical) throw new DescError(lineNo, typeTok.column, 'an extended partition cannot be logical');
    if (attrs.length) throw new DescError(lineNo, attrs[0]!.column, 'an extended partition only holds logical partitions: it has no file system, mount point or flag');
  }
  if (p.kind === 'swap' && p.fs !== undefined && p.fs !== 'swap') {
    throw new DescError(lineNo, columnOf(attrs, (t) => t === p.fs), `a swap partition holds swap, not ${p.fs}`);
  }
  if (p.kind === 'esp' && p.fs !== undefined && p.fs !== 'vfat') {
    throw new DescError(lineNo, columnOf(attrs, (t) => t === p.fs), `an EFI system partition holds vfat, not ${p.fs}`);
  }
  if (p.mount !== undefined && (p.fs === 'swap' || p.fs === 'none')) {
    throw new DescError(lineNo, columnOf(attrs, (t) => t.startsWith('/')), `a partition with file system ${p.fs} has no mount point`);
  }
  if (p.fsLabel !== undefined && p.fs === 'none') {
    throw new DescError(lineNo, columnOf(attrs, (t) => t.startsWith('label=')), 'a partition without a file system has no label');
  }
}

function checkPlan(plan: DescPlan, opts: DescOptions): void {
  const parts = plan.partitions;
  const mounts = new Map<string, number>();
  let primaries = 0;
  let logicals = 0;
  let extended: DescPartition | undefined;
  let primaryFill: DescPartition | undefined;
  let logicalFill: DescPartition | undefined;
  for (const p of parts) {
    if (p.mount !== undefined) {
      const prev = mounts.get(p.mount);
      if (prev !== undefined) throw new DescError(p.line, 1, `mount point ${p.mount} is already used on line ${prev}`);
      mounts.set(p.mount, p.line);
    }
    if (p.logical) {
      if (!extended) throw new DescError(p.line, 1, 'a logical partition must follow an extended partition ("extended fill" or "extended SIZE")');
      if (logicalFill) throw new DescError(p.line, 1, `the logical partition on line ${logicalFill.line} already fills the extended partition: "fill" must be the last logical partition`);
      if (p.size === 'fill') logicalFill = p;
      p.number = 5 + logicals++;
      continue;
    }
    if (primaryFill) throw new DescError(p.line, 1, `the partition on line ${primaryFill.line} already fills the disk: "fill" must be the last ${plan.label === 'dos' ? 'primary ' : ''}partition`);
    if (p.kind === 'extended') {
      if (extended) throw new DescError(p.line, 1, `a second extended partition; there is one on line ${extended.line}`);
      extended = p;
    }
    if (p.size === 'fill') primaryFill = p;
    primaries++;
    if (plan.label === 'dos' && primaries > 4) throw new DescError(p.line, 1, 'a DOS label holds at most 4 primary partitions: make this one logical inside an extended partition');
    if (plan.label === 'gpt' && primaries > 128) throw new DescError(p.line, 1, 'a GPT holds at most 128 partitions');
    p.number = primaries;
  }
  if (extended && logicals === 0) throw new DescError(extended.line, 1, 'an extended partition without logical partitions: add "logical ..." lines after it');

  // Space, in MiB: partitions start on 1 MiB boundaries; each logical has an EBR in
  // a 1 MiB gap before it; a GPT keeps its backup table in the last MiB.
  if (extended && extended.size !== 'fill') {
    const inside = parts.filter((p) => p.logical).reduce((s, p) => s + 1 + (p.size === 'fill' ? 1 : p.size), 0);
    if (inside > extended.size) throw new DescError(extended.line, 1, `the logical partitions need ${inside} MB (with 1 MB before each) but the extended partition has ${extended.size} MB`);
  }
  if (opts.diskMiB !== undefined) {
    let need = 1 + (plan.label === 'gpt' ? 1 : 0);
    for (const p of parts) {
      if (p.logical) continue;
      if (p.kind === 'extended' && p.size === 'fill') {
        need += parts.filter((q) => q.logical).reduce((s, q) => s + 1 + (q.size === 'fill' ? 1 : q.size), 0);
      } else need += p.size === 'fill' ? 1 : p.size;
    }
    if (need > opts.diskMiB) {
      const last = parts[parts.length - 1];
      throw new DescError(last?.line ?? 1, 1, `the partitions need ${need} MB but the disk has ${opts.diskMiB} MB`);
    }
  }
}

/** A plan back to desc text: what from-disk prints; parseDesc(formatDesc(p)) gives p again. */
export function formatDesc(plan: DescPlan, header?: string): string {
  const out: string[] = [];
  if (header) out.push(...header.split('\n').map((l) => `# ${l}`));
  if (plan.label === 'gpt') out.push('label gpt');
  for (const p of plan.partitions) {
    const words = [p.logical ? 'logical' : '', p.typeName, String(p.size)].filter(Boolean);
    const defaultFs = p.kind === 'swap' ? 'swap' : p.kind === 'esp' ? 'vfat' : undefined;
    const defaultMount = p.kind === 'esp' ? '/boot/efi' : undefined;
    if (p.fs && p.fs !== defaultFs) words.push(p.fs);
    if (p.mount && p.mount !== defaultMount) words.push(p.mount);
    if (p.fsLabel) words.push(`label=${p.fsLabel}`);
    if (p.bootable) words.push('bootable');
    out.push(words.filter(Boolean).join(' '));
  }
  return out.join('\n') + '\n';
}
