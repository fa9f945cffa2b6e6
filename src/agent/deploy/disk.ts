// partition: which disk ("first" or a name, from /sys/block), the desc made into the file
// systems to create, the sfdisk script (src/images/sfdisk-script.ts) run in stage2, and
// the wait for the partition devices (no udev here: devtmpfs makes them a moment later).
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDesc, type DescPlan, type DescPartition, type FsType, FS_TYPES } from '../../images/desc.js';
import { renderSfdiskScript } from '../../images/sfdisk-script.js';
import { partitionDevice } from '../../images/layout.js';
import type { DiskPlan } from '../../deploy/plan.js';
import type { Firmware } from '../firmware.js';
import type { Step, StepContext } from '../steps.js';
import { shq } from './shell.js';
import { chrootEnv, planOf, type DeployState, type ResolvedDisk, type TargetFs } from './types.js';

export interface BlockDevice {
  name: string;
  removable: boolean;
  readOnly: boolean;
  /** 512-byte sectors, as /sys/block/X/size counts */
  sectors: number;
}

const NOT_A_DISK = /^(loop|ram|zram|sr|fd|dm-|md|nbd|mtdblock|drbd)|boot\d+$|rpmb$/;

export function readBlockDevices(sysRoot: string): BlockDevice[] {
  const dir = join(sysRoot, 'block');
  const read = (n: string, f: string) => {
    try {
      return readFileSync(join(dir, n, f), 'utf8').trim();
    } catch {
      return '';
    }
  };
  return readdirSync(dir).sort().map((name) => ({
    name,
    removable: read(name, 'removable') === '1',
    readOnly: read(name, 'ro') === '1',
    sectors: Number(read(name, 'size')) || 0,
  }));
}

/** The smallest disk in MiB that holds a desc: fixed sizes, 1 MiB per fill, the 1 MiB gaps, GPT's backup. */
export function descMinMiB(desc: DescPlan): number {
  let need = 1 + (desc.label === 'gpt' ? 1 : 0);
  for (const p of desc.partitions) {
    if (p.kind === 'extended' && p.size !== 'fill') need += p.size;
    else if (p.kind !== 'extended') need += (p.size === 'fill' ? 1 : p.size) + (p.logical ? 1 : 0);
  }
  return need;
}

/** The disk for `wanted`: a name as is, or "first": the first writable non-removable disk big enough not taken yet. */
export function pickDisk(devices: BlockDevice[], wanted: string, needMiB: number, taken: ReadonlySet<string> = new Set()): BlockDevice {
  const mib = (d: BlockDevice) => Math.floor(d.sectors / 2048);
  if (wanted !== 'first') {
    const name = wanted.replace(/^\/dev\//, '');
    if (taken.has(name)) throw new Error(`disk ${name} is excluded or already used by another disk of the plan`);
    const d = devices.find((x) => x.name === name);
    if (!d) throw new Error(`no disk ${name} on this node (disks: ${devices.filter((x) => !NOT_A_DISK.test(x.name)).map((x) => x.name).join(', ') || 'none'})`);
    if (d.readOnly) throw new Error(`disk ${name} is read-only`);
    if (mib(d) < needMiB) throw new Error(`disk ${name} has ${mib(d)} MB, the partition scheme needs ${needMiB} MB`);
    return d;
  }
  const disks = devices.filter((d) => !NOT_A_DISK.test(d.name) && d.sectors > 0 && !taken.has(d.name));
  const fit = disks.find((d) => !d.removable && !d.readOnly && mib(d) >= needMiB);
  if (fit) return fit;
  const seen = disks.map((d) => `${d.name} ${mib(d)} MB${d.removable ? ' removable' : ''}${d.readOnly ? ' read-only' : ''}`).join(', ');
  throw new Error(`no disk of at least ${needMiB} MB for "first" (disks: ${seen || 'none: is the storage driver in the initrd?'})`);
}

/** The file systems to make on one disk: the plan's, then any the desc names that the plan does not. */
export function targetsFor(diskIndex: number, device: string, desc: DescPlan, plan: DiskPlan): TargetFs[] {
  const out: TargetFs[] = [];
  for (const f of plan.filesystems) {
    const p = desc.partitions.find((q) => q.number === f.partition);
    if (!p) throw new Error(`disk ${diskIndex + 1}: the plan fills partition ${f.partition}, the desc has no such partition`);
    if (p.kind === 'extended') throw new Error(`disk ${diskIndex + 1}: partition ${f.partition} is the extended partition, it holds no file system`);
    if (!(FS_TYPES as readonly string[]).includes(f.fstype) || f.fstype === 'none') throw new Error(`disk ${diskIndex + 1}: partition ${f.partition}: file system ${JSON.stringify(f.fstype)} is not one kaboot makes (${FS_TYPES.filter((t) => t !== 'none').join(', ')})`);
    if (out.some((t) => t.partition === f.partition)) throw new Error(`disk ${diskIndex + 1}: partition ${f.partition} is in the plan twice`);
    out.push({
      disk: diskIndex, partition: f.partition, device: partitionDevice(device, f.partition), fstype: f.fstype as FsType,
      ...(f.mount !== undefined && f.fstype !== 'swap' ? { mount: f.mount } : {}),
      ...((f.label ?? p.fsLabel) !== undefined ? { label: f.label ?? p.fsLabel } : {}),
      ...(f.source_uuid ? { sourceUuid: f.source_uuid } : {}),
      esp: p.kind === 'esp', exclude: f.exclude,
      ...(f.session ? { session: f.session } : {}),
      ...(f.files !== undefined ? { files: f.files } : {}),
      ...(f.bytes_used !== undefined ? { bytesUsed: f.bytes_used } : {}),
      ...(f.acl_url ? { aclUrl: f.acl_url } : {}),
    });
  }
  for (const p of desc.partitions) {
    if (out.some((t) => t.partition === p.number) || !p.fs || p.fs === 'none') continue;
    out.push({
      disk: diskIndex, partition: p.number, device: partitionDevice(device, p.number), fstype: p.fs,
      ...(p.mount !== undefined ? { mount: p.mount } : {}), ...(p.fsLabel ? { label: p.fsLabel } : {}),
      esp: p.kind === 'esp', exclude: [],
    });
  }
  return out;
}

/**
 * The seed's bootable_flag.sh: a DOS disk a BIOS boots from needs an active partition (some
 * BIOSes and syslinux's mbr.bin boot only that). When the desc flags none, the partition
 * holding /boot (else /) gets the flag, in the sfdisk script itself, so that no table is
 * rewritten later under mounted partitions. On GPT, extlinux's gptmbr.bin needs the
 * LegacyBIOSBootable attribute instead (sfdisk-script writes it for a bootable line).
 */
export function withBootFlag(desc: DescPlan, targets: TargetFs[], firmware: Firmware, bootloader: 'grub' | 'extlinux' | 'none', isBootDisk: boolean): { desc: DescPlan; flagged?: number } {
  if (!isBootDisk || firmware !== 'bios' || bootloader === 'none') return { desc };
  if (desc.label === 'gpt' && bootloader !== 'extlinux') return { desc };
  if (desc.partitions.some((p) => p.bootable)) return { desc };
  const boot = targets.find((t) => t.mount === '/boot') ?? targets.find((t) => t.mount === '/');
  if (!boot) return { desc };
  return { desc: { ...desc, partitions: desc.partitions.map((p): DescPartition => (p.number === boot.partition ? { ...p, bootable: true } : p)) }, flagged: boot.partition };
}

/** Mount sources in /proc/mounts that are this disk or its partitions (a disk in use is never partitioned). */
export function mountedFrom(procMounts: string, disk: string): string[] {
  const re = new RegExp(`^/dev/${disk.replace(/[^A-Za-z0-9]/g, '')}(p?\\d+)?$`);
  return procMounts.split('\n').map((l) => l.split(' ')).filter((f) => f[0] && re.test(f[0])).map((f) => `${f[0]} on ${f[1]}`);
}

/** Partition numbers the kernel must show after sfdisk, extended included. */
export function expectedPartitions(desc: DescPlan): number[] {
  return desc.partitions.map((p) => p.number).sort((a, b) => a - b);
}

/** /sys/class/block/<disk><n> name for a partition of a disk: vda1, nvme0n1p1 */
export function partitionName(disk: string, n: number): string {
  return `${disk}${/\d$/.test(disk) ? 'p' : ''}${n}`;
}

export const partitionStep: Step<DeployState> = {
  name: 'partition',
  async run(ctx) {
    const s = ctx.state;
    const plan = planOf(s);
    const devices = readBlockDevices(s.paths.sys);
    const taken = new Set<string>((plan.exclude_drives ?? []).map((x) => x.replace(/^\/dev\//, '')));
    if (taken.size) ctx.say(`drives left alone: ${[...taken].join(', ')}`);
    const bootDevice = plan.bootloader.device.replace(/^\/dev\//, '');
    for (const [i, d] of plan.disks.entries()) {
      let desc: DescPlan;
      try {
        desc = parseDesc(d.desc);
      } catch (e) {
        throw new Error(`disk ${i + 1}: desc: ${(e as Error).message}`);
      }
      const need = descMinMiB(desc);
      const dev = pickDisk(devices, d.device, need, taken);
      taken.add(dev.name);
      const device = join(s.paths.dev, dev.name);
      const disk: ResolvedDisk = { index: i, name: dev.name, device, desc, sizeMiB: Math.floor(dev.sectors / 2048) };
      const targets = targetsFor(i, device, desc, d);
      const isBoot = bootDevice === d.device || bootDevice === dev.name || (i === 0 && !plan.disks.some((x) => x.device === bootDevice));
      const flagged = withBootFlag(desc, targets, s.firmware, plan.bootloader.kind, isBoot);
      disk.desc = flagged.desc;
      s.disks.push(disk);
      s.targets.push(...targets);
      ctx.say(`disk ${i + 1}: ${d.device} is ${device} (${disk.sizeMiB} MB; the scheme needs ${need} MB), ${desc.label} label, ${desc.partitions.length} partitions${flagged.flagged ? `, partition ${flagged.flagged} flagged bootable` : ''}`);

      const busy = mountedFrom(readFileSync(join(s.paths.proc, 'mounts'), 'utf8'), dev.name);
      if (busy.length) throw new Error(`${device} is in use (${busy.join(', ')}): not partitioning it`);
      const script = renderSfdiskScript(disk.desc);
      const scriptFile = `sfdisk-${dev.name}.txt`;
      writeFileSync(join(s.paths.stage2, 'tmp', scriptFile), script);
      for (const l of script.trimEnd().split('\n')) ctx.say(`sfdisk script: ${l}`);
      await ctx.exec(s.busybox, ['chroot', s.paths.stage2, 'wipefs', '--all', '--force', device], { env: chrootEnv });
      await ctx.exec(s.busybox, ['chroot', s.paths.stage2, 'sh', '-c', `sfdisk --wipe always --wipe-partitions always ${shq(device)} < ${shq(`/tmp/${scriptFile}`)}`], { env: chrootEnv });
      await waitForPartitions(ctx, disk, expectedPartitions(disk.desc));
    }
  },
};

/**
 * Polls until /dev has a node for every partition. devtmpfs makes them itself a moment after
 * the kernel reads the new table; when /sys shows one that /dev lacks after a while, the node
 * is made from its major:minor; when /sys lacks it, the kernel is asked to reread the table.
 */
export async function waitForPartitions(ctx: StepContext<DeployState>, disk: ResolvedDisk, numbers: number[], timeoutMs = 30_000): Promise<void> {
  const s = ctx.state;
  const started = Date.now();
  let reread = false;
  let made = false;
  for (;;) {
    const missing = numbers.filter((n) => !existsSync(join(s.paths.dev, partitionName(disk.name, n))));
    if (missing.length === 0) {
      ctx.say(`${disk.device}: partitions ${numbers.join(', ')} present after ${Date.now() - started} ms`);
      return;
    }
    const waited = Date.now() - started;
    if (waited > timeoutMs) throw new Error(`${disk.device}: partitions ${missing.join(', ')} did not appear in ${timeoutMs / 1000} s`);
    const inSys = missing.filter((n) => existsSync(join(s.paths.sys, 'class/block', partitionName(disk.name, n), 'dev')));
    if (!made && waited > 3000 && inSys.length) {
      made = true;
      for (const n of inSys) {
        const name = partitionName(disk.name, n);
        const [major, minor] = readFileSync(join(s.paths.sys, 'class/block', name, 'dev'), 'utf8').trim().split(':');
        ctx.say(`${name}: in /sys but not in /dev: mknod b ${major} ${minor}`);
        await ctx.exec(s.busybox, ['mknod', join(s.paths.dev, name), 'b', major ?? '0', minor ?? '0'], { allowFailure: true });
      }
    }
    if (!reread && waited > 5000 && inSys.length < missing.length) {
      reread = true;
      ctx.say(`${disk.device}: the kernel shows no partition ${missing.join(', ')}: asking it to reread the table`);
      await ctx.exec(s.busybox, ['chroot', s.paths.stage2, 'blockdev', '--rereadpt', disk.device], { allowFailure: true, env: chrootEnv });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
