// format: mkfs per file system type, with the label and a UUID chosen here (so fstab can be
// written from what was asked, and blkid confirms it); mount: the clone's file systems under
// /stage2/target, parents first.
import { mkdirSync } from 'node:fs';
import { randomUUID, randomBytes } from 'node:crypto';
import type { Step } from '../steps.js';
import { targetDir } from './shell.js';
import { chrootEnv, type DeployState, type TargetFs } from './types.js';

/** A new file system identifier: a UUID, or a FAT volume id shown as blkid does (ABCD-1234). */
export function newFsId(fstype: string, rnd: () => Buffer = () => randomBytes(4)): string {
  if (fstype === 'vfat') {
    const h = rnd().toString('hex').toUpperCase().padStart(8, '0').slice(0, 8);
    return `${h.slice(0, 4)}-${h.slice(4)}`;
  }
  return randomUUID();
}

/** mkfs argv (run in stage2) for a target with the given id. */
export function mkfsArgs(t: Pick<TargetFs, 'fstype' | 'label' | 'esp' | 'device'>, id: string): string[] {
  const label = t.label;
  switch (t.fstype) {
    case 'ext2':
    case 'ext3':
    case 'ext4':
      return [`mkfs.${t.fstype}`, '-q', '-F', '-U', id, ...(label ? ['-L', label] : []), t.device];
    case 'xfs':
      return ['mkfs.xfs', '-q', '-f', '-m', `uuid=${id}`, ...(label ? ['-L', label.slice(0, 12)] : []), t.device];
    case 'btrfs':
      return ['mkfs.btrfs', '-q', '-f', '-U', id, ...(label ? ['-L', label] : []), t.device];
    case 'vfat':
      return ['mkfs.vfat', ...(t.esp ? ['-F', '32'] : []), '-i', id.replace('-', ''), ...(label ? ['-n', label.toUpperCase().slice(0, 11)] : []), t.device];
    case 'swap':
      return ['mkswap', '-U', id, ...(label ? ['-L', label] : []), t.device];
    default:
      throw new Error(`${t.device}: no mkfs for file system ${t.fstype}`);
  }
}

/** Mount order: parents first (by depth, then name), so /boot/efi lands inside /boot inside /. */
export function mountOrder<T extends { mount?: string; fstype: string }>(targets: T[]): (T & { mount: string })[] {
  return targets
    .filter((t): t is T & { mount: string } => t.mount !== undefined && t.fstype !== 'swap' && t.fstype !== 'none')
    .sort((a, b) => depth(a.mount) - depth(b.mount) || a.mount.localeCompare(b.mount));
}

function depth(mount: string): number {
  return mount === '/' ? 0 : mount.split('/').length - 1;
}

export const formatStep: Step<DeployState> = {
  name: 'format',
  async run(ctx) {
    const s = ctx.state;
    for (const t of s.targets) {
      const id = newFsId(t.fstype);
      const args = mkfsArgs(t, id);
      ctx.say(`${t.device}: ${t.fstype}${t.label ? ` label ${t.label}` : ''}${t.mount ? ` for ${t.mount}` : ''}`);
      await ctx.exec(s.busybox, ['chroot', s.paths.stage2, ...args], { env: chrootEnv });
      const probe = await ctx.exec(s.busybox, ['chroot', s.paths.stage2, 'blkid', '-p', '-o', 'value', '-s', 'UUID', t.device], { env: chrootEnv, allowFailure: true });
      const seen = probe.stdout.join('').trim();
      if (!seen) throw new Error(`${t.device}: blkid finds no file system after mkfs (exit ${probe.exitCode})`);
      if (seen.toUpperCase() !== id.toUpperCase()) ctx.say(`${t.device}: asked for UUID ${id}, blkid reads ${seen}: using ${seen}`);
      t.uuid = seen;
    }
  },
};

export const mountStep: Step<DeployState> = {
  name: 'mount',
  async run(ctx) {
    const s = ctx.state;
    const order = mountOrder(s.targets);
    if (!order.some((t) => t.mount === '/')) throw new Error('the plan mounts nothing at /');
    for (const t of order) {
      const dir = targetDir(s.paths.stage2, t.mount);
      mkdirSync(dir, { recursive: true });
      await ctx.exec(s.busybox, ['mount', '-t', t.fstype, t.device, dir]);
      s.mounted.push(dir);
      ctx.say(`${t.device} (${t.fstype}) mounted at ${dir}`);
    }
  },
};
