// The seed's fdisk_to_desc: a disk's partition table (sfdisk --json) and what lives on
// each partition (lsblk for a block device, blkid probing at the partition's offset for
// a disk image file) as a desc. descFromTable is pure; readDiskDesc runs the tools.
import { stat } from 'node:fs/promises';
import { execa } from 'execa';
import { type DescPlan, type DescPartition, type FsType, FS_TYPES, formatDesc, parseDesc, DescError } from './desc.js';
import { DOS_EXTENDED, kindOfDosCode, kindOfGptGuid, normalizeDosCode } from './part-types.js';

export interface SfdiskPartition {
  node: string;
  start: number;
  size: number;
  type: string;
  bootable?: boolean;
  attrs?: string;
  name?: string;
  uuid?: string;
}

export interface SfdiskTable {
  label: string;
  id?: string;
  device: string;
  unit?: string;
  firstlba?: number;
  lastlba?: number;
  sectorsize?: number;
  partitions?: SfdiskPartition[];
}

export interface PartitionContents {
  fstype?: string;
  label?: string;
  uuid?: string;
  mountpoint?: string;
}

export interface DiskFacts {
  table: SfdiskTable;
  /** disk size in bytes */
  diskBytes: number;
  /** by partition number */
  contents: Map<number, PartitionContents>;
}

export class DiskReadError extends Error {
  override name = 'DiskReadError';
}

const MiB = 1024 * 1024;
const LABEL_RE = /^[A-Za-z0-9._-]{1,16}$/;
const MOUNT_RE = /^\/[^\s#\\]*$/;

export function partitionNumber(node: string): number {
  const m = /(\d+)$/.exec(node);
  if (!m) throw new DiskReadError(`sfdisk named a partition "${node}" without a number`);
  return Number(m[1]);
}

function fsOf(fstype: string | undefined): FsType | undefined {
  if (!fstype) return undefined;
  return (FS_TYPES as readonly string[]).includes(fstype) && fstype !== 'none' ? (fstype as FsType) : undefined;
}

/** The table as a desc plan: sizes in whole MiB; the last partition of a level that reaches its container's end becomes "fill". */
export function descFromTable(facts: DiskFacts): DescPlan {
  const t = facts.table;
  if (t.label !== 'dos' && t.label !== 'gpt') throw new DiskReadError(`a ${t.label} partition table is neither dos nor gpt`);
  const sector = t.sectorsize ?? 512;
  const grain = Math.max(1, Math.round(MiB / sector));
  const diskSectors = Math.floor(facts.diskBytes / sector);
  const all = [...(t.partitions ?? [])].map((p) => ({ ...p, number: partitionNumber(p.node) })).sort((a, b) => a.number - b.number);
  const gpt = t.label === 'gpt';
  const primaries = all.filter((p) => gpt || p.number <= 4);
  const logicals = all.filter((p) => !gpt && p.number > 4);
  const extended = primaries.find((p) => !gpt && DOS_EXTENDED.has(normalizeDosCode(p.type)));
  const diskEnd = gpt && t.lastlba !== undefined ? t.lastlba + 1 : diskSectors;

  const byStart = (a: { start: number }, b: { start: number }) => a.start - b.start;
  const lastPrimary = [...primaries].sort(byStart).at(-1);
  const lastLogical = [...logicals].sort(byStart).at(-1);
  const reaches = (p: SfdiskPartition, end: number) => end - (p.start + p.size) < grain;

  const out: DescPartition[] = [];
  for (const p of [...primaries, ...logicals].sort(byStart)) {
    const logical = !gpt && p.number > 4;
    const kind = gpt ? kindOfGptGuid(p.type) : kindOfDosCode(p.type);
    const code = gpt ? p.type.toUpperCase() : normalizeDosCode(p.type);
    const typeName = kind === 'other' || (kind === 'extended' && code !== '5') ? `type${code}` : kind;
    const fill = logical
      ? p === lastLogical && extended !== undefined && reaches(p, extended.start + extended.size)
      : p === lastPrimary && reaches(p, diskEnd);
    const size = fill ? 'fill' : Math.max(1, Math.floor((p.size * sector) / MiB));
    const c = facts.contents.get(p.number) ?? {};
    const part: DescPartition = {
      line: 0, number: p.number, logical, kind, typeName, typeCode: code, size,
      bootable: gpt ? /LegacyBIOSBootable/.test(p.attrs ?? '') : p.bootable === true,
    };
    if (kind !== 'extended') {
      const fs = fsOf(c.fstype);
      if (fs && !(kind === 'swap' && fs !== 'swap') && !(kind === 'esp' && fs !== 'vfat')) part.fs = fs;
      if (part.fs && part.fs !== 'swap' && c.mountpoint && MOUNT_RE.test(c.mountpoint)) part.mount = c.mountpoint;
      if (part.fs && c.label && LABEL_RE.test(c.label)) part.fsLabel = c.label;
    }
    out.push(part);
  }
  return { label: gpt ? 'gpt' : 'dos', partitions: out };
}

/** The plan as desc text, checked by parsing it back (so from-disk never prints a desc kaboot would refuse). */
export function descTextFromFacts(facts: DiskFacts, source: string): string {
  const plan = descFromTable(facts);
  const mounts = new Set<string>();
  for (const p of plan.partitions) {
    if (p.mount && mounts.has(p.mount)) delete p.mount; // a device mounted twice (bind mounts) keeps its first place
    if (p.mount) mounts.add(p.mount);
  }
  const text = formatDesc(plan, `desc of ${source}: ${Math.floor(facts.diskBytes / MiB)} MB, ${plan.label} label (kaboot desc from-disk)`);
  try {
    parseDesc(text, { diskMiB: Math.floor(facts.diskBytes / MiB) });
  } catch (e) {
    if (e instanceof DescError) throw new DiskReadError(`the partition table of ${source} has no desc form: ${e.message}\n${text}`);
    throw e;
  }
  return text;
}

interface LsblkDevice {
  name: string;
  fstype?: string | null;
  mountpoint?: string | null;
  mountpoints?: (string | null)[];
  label?: string | null;
  uuid?: string | null;
  children?: LsblkDevice[];
}

/** Run sfdisk --json (and lsblk or blkid) on a block device or a disk image file. */
export async function readDiskFacts(device: string): Promise<DiskFacts> {
  const st = await stat(device).catch((e: NodeJS.ErrnoException) => {
    throw new DiskReadError(`cannot read ${device}: ${e.code ?? e.message}`);
  });
  const sf = await execa('sfdisk', ['--json', device], { reject: false });
  if (sf.exitCode !== 0) throw new DiskReadError(`sfdisk --json ${device} failed: ${sf.stderr.trim() || `exit ${sf.exitCode}`}`);
  let table: SfdiskTable;
  try {
    table = (JSON.parse(sf.stdout) as { partitiontable: SfdiskTable }).partitiontable;
  } catch {
    throw new DiskReadError(`sfdisk --json ${device} printed no JSON table (is there a partition table?)`);
  }
  const contents = new Map<number, PartitionContents>();
  let diskBytes: number;
  if (st.isBlockDevice()) {
    const size = await execa('blockdev', ['--getsize64', device]);
    diskBytes = Number(size.stdout.trim());
    const ls = await execa('lsblk', ['-J', '-o', 'NAME,FSTYPE,MOUNTPOINT,LABEL,UUID,SIZE', '-p', device], { reject: false });
    if (ls.exitCode === 0) {
      const tree = JSON.parse(ls.stdout) as { blockdevices: LsblkDevice[] };
      for (const child of tree.blockdevices[0]?.children ?? []) {
        const n = /(\d+)$/.exec(child.name);
        if (!n) continue;
        contents.set(Number(n[1]), {
          fstype: child.fstype ?? undefined,
          label: child.label ?? undefined,
          uuid: child.uuid ?? undefined,
          mountpoint: child.mountpoint ?? child.mountpoints?.find((m): m is string => !!m) ?? undefined,
        });
      }
    }
  } else {
    diskBytes = st.size;
    const sector = table.sectorsize ?? 512;
    for (const p of table.partitions ?? []) {
      const probe = await execa('blkid', ['-p', '-o', 'export', '-O', String(p.start * sector), '-S', String(p.size * sector), device], { reject: false });
      if (probe.exitCode !== 0) continue; // nothing recognisable there (yet)
      const kv = Object.fromEntries(probe.stdout.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      contents.set(partitionNumber(p.node), { fstype: kv.TYPE, label: kv.LABEL, uuid: kv.UUID });
    }
  }
  return { table, diskBytes, contents };
}

export async function descFromDisk(device: string): Promise<string> {
  return descTextFromFacts(await readDiskFacts(device), device);
}
