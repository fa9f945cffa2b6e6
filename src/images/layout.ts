// From a desc plan and an image to what a node runs: partition device names, mkfs
// commands, the mount order, and a check that the plan can hold the image. Pure.
import type { DescPlan, DescPartition, FsType } from './desc.js';
import type { ImageManifest } from './manifest.js';

/** /dev/sda + 1 → /dev/sda1; /dev/nvme0n1 + 1 → /dev/nvme0n1p1 (a disk name ending in a digit takes "p"). */
export function partitionDevice(disk: string, number: number): string {
  return `${disk}${/\d$/.test(disk) ? 'p' : ''}${number}`;
}

/** The mkfs command for a partition, or undefined when it gets none (extended, fs none, unknown). */
export function mkfsCommand(p: DescPartition, device: string): string[] | undefined {
  const fs: FsType | undefined = p.fs;
  const label = p.fsLabel;
  switch (fs) {
    case 'ext2':
    case 'ext3':
    case 'ext4':
      return [`mkfs.${fs}`, '-q', '-F', ...(label ? ['-L', label] : []), device];
    case 'xfs':
      return ['mkfs.xfs', '-q', '-f', ...(label ? ['-L', label] : []), device];
    case 'btrfs':
      return ['mkfs.btrfs', '-q', '-f', ...(label ? ['-L', label] : []), device];
    case 'vfat':
      return ['mkfs.vfat', ...(p.kind === 'esp' ? ['-F', '32'] : []), ...(label ? ['-n', label.toUpperCase().slice(0, 11)] : []), device];
    case 'swap':
      return ['mkswap', ...(label ? ['-L', label] : []), device];
    default:
      return undefined;
  }
}

export interface MountStep {
  mount: string;
  device: string;
  fs: FsType;
  partition: number;
}

/** Partitions with a mount point, parents first (/ before /boot before /boot/efi). */
export function mountOrder(plan: DescPlan, disk: string): MountStep[] {
  return plan.partitions
    .filter((p): p is DescPartition & { mount: string; fs: FsType } => p.mount !== undefined && p.fs !== undefined && p.fs !== 'swap' && p.fs !== 'none')
    .map((p) => ({ mount: p.mount, device: partitionDevice(disk, p.number), fs: p.fs, partition: p.number }))
    .sort((a, b) => (a.mount === '/' ? -1 : b.mount === '/' ? 1 : a.mount.split('/').length - b.mount.split('/').length || a.mount.localeCompare(b.mount)));
}

export interface LayoutProblem {
  mount: string;
  problem: string;
}

const MiB = 1024 * 1024;

/** What a fill partition gets: its container's size less the fixed partitions beside it and the 1 MB gaps. */
export function fillMiB(plan: DescPlan, p: DescPartition, diskMiB?: number): number | undefined {
  const sum = (ps: DescPartition[]) => ps.reduce((s, q) => s + (q.size === 'fill' ? 0 : q.size), 0);
  const primaries = plan.partitions.filter((q) => !q.logical);
  const logicals = plan.partitions.filter((q) => q.logical);
  const disk = diskMiB === undefined ? undefined : diskMiB - 1 - (plan.label === 'gpt' ? 1 : 0) - sum(primaries.filter((q) => q !== p));
  if (!p.logical) return disk;
  const ext = primaries.find((q) => q.kind === 'extended');
  const extSize = ext?.size === 'fill' ? disk : ext?.size;
  return extSize === undefined ? undefined : extSize - sum(logicals.filter((q) => q !== p)) - logicals.length;
}

/**
 * Can this plan hold this image? Every captured file system needs a partition mounted at
 * its mount point, with a file system given, big enough for its data (with 10% and
 * 64 MB for the file system's own metadata; a fill partition is checked against diskMiB
 * when known).
 */
export function checkPlanHoldsImage(plan: DescPlan, image: ImageManifest, diskMiB?: number): LayoutProblem[] {
  const problems: LayoutProblem[] = [];
  for (const fs of image.filesystems) {
    const p = plan.partitions.find((q) => q.mount === fs.mount);
    if (!p) {
      problems.push({ mount: fs.mount, problem: `no partition of the desc mounts at ${fs.mount}: add one (e.g. "linux fill ext4 ${fs.mount}")` });
      continue;
    }
    if (!p.fs || p.fs === 'none' || p.fs === 'swap') {
      problems.push({ mount: fs.mount, problem: `line ${p.line}: the partition for ${fs.mount} needs a file system (the golden had ${fs.fstype})` });
      continue;
    }
    const needMiB = Math.ceil((fs.bytes_used * 1.1) / MiB) + 64;
    const haveMiB = p.size === 'fill' ? fillMiB(plan, p, diskMiB) : p.size;
    if (haveMiB !== undefined && haveMiB < needMiB) {
      problems.push({ mount: fs.mount, problem: `line ${p.line}: ${haveMiB} MB is too small for ${fs.mount}, which holds ${Math.ceil(fs.bytes_used / MiB)} MB (needs about ${needMiB} MB)` });
    }
    if (p.fs === 'vfat' && fs.acl_entries > 0) {
      problems.push({ mount: fs.mount, problem: `line ${p.line}: vfat cannot keep the ${fs.acl_entries} ACLs of ${fs.mount}` });
    }
  }
  return problems;
}
