// What a node of a deployment does, decided by pure functions: which disks get which
// partition scheme (the image's, or -p per drive, less -X), an ESP for a UEFI node, which
// file system lands on which partition, what -x leaves out, which partitions are copied
// raw (-D), the MBR (-m/-M), the bootloader (-r) and the host name. No I/O here.
import { parseDesc, DescError, type DescPlan, type DescPartition } from '../images/desc.js';
import { checkPlanHoldsImage } from '../images/layout.js';
import { FS_UUID_RE, type BootCodeRecord, type ImageManifest } from '../images/manifest.js';
import type { BootloaderPlan, DeployPlan, DiskPlan, FilesystemPlan, SessionRef } from './plan.js';
import type { DeploymentRequest } from './deployment.js';
import { GPT } from '../images/part-types.js';

export class PolicyError extends Error {
  override name = 'PolicyError';
}

export type Firmware = 'bios' | 'uefi';

export const ESP_MIB = 512;
/** GRUB for BIOS embeds its core image in a BIOS boot partition on a GPT disk */
export const BIOS_BOOT_MIB = 1;

/** A drive and its scheme, before any firmware adjustment. */
export interface DriveDesc {
  device: string;
  desc: string;
  plan: DescPlan;
  /** where the desc came from, for error messages */
  origin: string;
}

function parseOrExplain(text: string, origin: string): DescPlan {
  try {
    return parseDesc(text);
  } catch (e) {
    if (e instanceof DescError) throw new PolicyError(`${origin}: ${e.message}`);
    throw e;
  }
}

/** -p drives, or the image's own desc on the node's first disk; -X drops drives. */
export function drivesFor(image: ImageManifest, req: DeploymentRequest): { kept: DriveDesc[]; dropped: DriveDesc[] } {
  const excluded = new Set(req.exclude_drives ?? []);
  let all: DriveDesc[];
  if (req.descs && req.descs.length > 0) {
    const seen = new Set<string>();
    all = req.descs.map((d) => {
      if (seen.has(d.drive)) throw new PolicyError(`-p names drive ${d.drive} twice`);
      seen.add(d.drive);
      return { device: d.drive, desc: d.desc, plan: parseOrExplain(d.desc, `desc for ${d.drive}`), origin: `desc for ${d.drive}` };
    });
  } else {
    if (!image.desc) throw new PolicyError(`image ${image.name} holds no partition scheme: give one with -p DRIVE=DESCFILE (kaboot desc from-disk DEVICE writes one)`);
    all = [{ device: 'first', desc: image.desc, plan: parseOrExplain(image.desc, `the desc of image ${image.name}`), origin: `the desc of image ${image.name}` }];
  }
  const kept = all.filter((d) => !excluded.has(d.device));
  const dropped = all.filter((d) => excluded.has(d.device));
  if (kept.length === 0) throw new PolicyError(`-X leaves no drive to deploy to (drives: ${all.map((d) => d.device).join(', ')})`);
  return { kept, dropped };
}

/** The disk holding / (or /boot), which gets the bootloader and, on UEFI, the ESP. */
export function bootDriveIndex(drives: DriveDesc[]): number {
  const holds = (m: string) => drives.findIndex((d) => d.plan.partitions.some((p) => p.mount === m));
  const i = holds('/boot');
  if (i >= 0) return i;
  const r = holds('/');
  return r >= 0 ? r : 0;
}

export interface FirmwareDesc {
  desc: string;
  /** old partition number → new one */
  renumber: Map<number, number>;
  /** a line saying what changed, for the node's log */
  changed?: string;
}

function descWords(p: DescPartition, gpt: boolean): string {
  let type = p.typeName;
  // DOS hex types need a GPT equivalent; the named kinds are the same words in both
  if (gpt && /^type/i.test(type) && p.kind !== 'other') type = p.kind;
  const words = [type, String(p.size)];
  if (p.fs) words.push(p.fs);
  if (p.mount) words.push(p.mount);
  if (p.fsLabel) words.push(`label=${p.fsLabel}`);
  // the bootable flag is a DOS notion; a GPT has none
  if (p.bootable && !gpt) words.push('bootable');
  return words.join(' ');
}

/**
 * A UEFI node boots from an EFI system partition on a GPT. A desc without one becomes a
 * GPT whose first partition is a 512 MB ESP (vfat, /boot/efi); a DOS desc's logical
 * partitions become primaries in their order and its extended partition goes away.
 * A BIOS node that gets GRUB on a GPT needs a BIOS boot partition: a 1 MB one goes first.
 * Every other desc is kept as it is.
 */
export function descForFirmware(plan: DescPlan, desc: string, firmware: Firmware, opts: { grub?: boolean } = {}): FirmwareDesc {
  const identity = new Map(plan.partitions.map((p) => [p.number, p.number] as [number, number]));
  if (firmware === 'bios') {
    if (!opts.grub || plan.label !== 'gpt' || plan.partitions.some((p) => p.typeCode.toUpperCase() === GPT.biosBoot)) return { desc, renumber: identity };
    const lines = ['label gpt', `type${GPT.biosBoot} ${BIOS_BOOT_MIB}`, ...plan.partitions.map((p) => descWords(p, true))];
    return {
      desc: lines.join('\n') + '\n',
      renumber: new Map(plan.partitions.map((p) => [p.number, p.number + 1] as [number, number])),
      changed: `BIOS with GRUB on a GPT: a ${BIOS_BOOT_MIB} MB BIOS boot partition as partition 1 for GRUB's core image; partitions renumbered ${plan.partitions.map((p) => `${p.number}→${p.number + 1}`).join(' ')}`,
    };
  }
  if (plan.partitions.some((p) => p.kind === 'esp')) return { desc, renumber: identity };
  const renumber = new Map<number, number>();
  const lines = ['label gpt', `esp ${ESP_MIB}`];
  let next = 2;
  for (const p of plan.partitions) {
    if (p.kind === 'extended') continue;
    if (p.mount === '/boot/efi') throw new PolicyError(`line ${p.line}: /boot/efi is on a partition that is not an ESP; make it "esp SIZE"`);
    renumber.set(p.number, next++);
    lines.push(descWords(p, true));
  }
  const text = lines.join('\n') + '\n';
  try {
    parseDesc(text);
  } catch (e) {
    if (e instanceof DescError) throw new PolicyError(`a UEFI node needs a GPT with an ESP, and this desc cannot become one: ${e.message}`);
    throw e;
  }
  return {
    desc: text,
    renumber,
    changed: `UEFI: ${plan.label === 'dos' ? 'DOS label made GPT' : 'GPT'} with a ${ESP_MIB} MB ESP (vfat, /boot/efi) as partition 1; partitions renumbered ${[...renumber].map(([a, b]) => `${a}→${b}`).join(' ')}`,
  };
}

/** -x paths split per file system: the whole file system (left empty), or paths below its mount. */
export function excludesPerFilesystem(mounts: string[], exclude: string[]): { whole: Set<string>; below: Map<string, string[]> } {
  const whole = new Set<string>();
  const below = new Map<string, string[]>(mounts.map((m) => [m, []]));
  for (const raw of exclude) {
    const x = raw.length > 1 ? raw.replace(/\/+$/, '') : raw;
    if (x.split('/').some((c) => c === '..' || c === '.')) throw new PolicyError(`-x ${raw}: no "." or ".." in an excluded path`);
    if (x === '/') throw new PolicyError('-x /: that would leave nothing to copy');
    // the deepest mount point that holds it
    const owner = mounts
      .filter((m) => m === x || m === '/' || x.startsWith(m + '/'))
      .sort((a, b) => b.length - a.length)[0];
    if (owner === undefined) throw new PolicyError(`-x ${raw}: not inside any file system of the image (${mounts.join(', ')})`);
    if (owner === x) whole.add(owner);
    else below.get(owner)!.push(owner === '/' ? x.slice(1) : x.slice(owner.length + 1));
  }
  return { whole, below };
}

export interface DeploymentLayout {
  drives: DriveDesc[];
  /** mount points of the image that are not deployed: on a -X drive */
  skipped: string[];
  /** the image's file systems that are sent: index into image.filesystems */
  sent: number[];
  /** warnings for the deployment's log */
  notes: string[];
}

/**
 * Checks a request against an image, firmware aside: every image file system has a
 * partition (or sits on a -X drive), the partitions hold the data, -x and -D make sense.
 * What it returns decides which sessions a deployment runs.
 */
export function deploymentLayout(image: ImageManifest, req: DeploymentRequest): DeploymentLayout {
  const { kept, dropped } = drivesFor(image, req);
  const notes: string[] = [];
  const mountsOn = (ds: DriveDesc[]) => new Set(ds.flatMap((d) => d.plan.partitions.flatMap((p) => (p.mount ? [p.mount] : []))));
  const keptMounts = mountsOn(kept);
  const droppedMounts = mountsOn(dropped);
  const seen = new Map<string, string>();
  for (const d of kept) {
    for (const p of d.plan.partitions) {
      if (!p.mount) continue;
      const other = seen.get(p.mount);
      if (other) throw new PolicyError(`mount point ${p.mount} is on two drives (${other} and ${d.device})`);
      seen.set(p.mount, d.device);
    }
  }
  const skipped: string[] = [];
  for (const fs of image.filesystems) {
    if (keptMounts.has(fs.mount)) continue;
    if (droppedMounts.has(fs.mount)) {
      skipped.push(fs.mount);
      notes.push(`${fs.mount} is on an excluded drive (-X): not deployed`);
      continue;
    }
    throw new PolicyError(`the image's ${fs.mount} (${fs.fstype}) has no partition in ${kept.map((d) => d.origin).join(' or ')}: add a line for it (e.g. "linux fill ext4 ${fs.mount}")`);
  }
  const placed = image.filesystems.filter((f) => keptMounts.has(f.mount));
  const { whole } = excludesPerFilesystem(placed.map((f) => f.mount), req.exclude ?? []);
  for (const d of kept) {
    const sub: ImageManifest = { ...image, filesystems: image.filesystems.filter((f) => d.plan.partitions.some((p) => p.mount === f.mount) && !whole.has(f.mount)) };
    const problems = checkPlanHoldsImage(d.plan, sub);
    if (problems.length) throw new PolicyError(`${d.origin}: ${problems.map((p) => p.problem).join('; ')}`);
  }
  for (const r of req.raw ?? []) {
    const drive = r.drive ?? kept[0]!.device;
    const d = kept.find((k) => k.device === drive);
    if (!d) throw new PolicyError(`-D ${drive}${r.partition}: no drive ${drive} in the deployment (drives: ${kept.map((k) => k.device).join(', ')})`);
    const p = d.plan.partitions.find((q) => q.number === r.partition);
    if (!p || p.kind === 'extended') throw new PolicyError(`-D ${drive}${r.partition}: ${d.origin} has no partition ${r.partition} to copy into`);
    if (p.mount) throw new PolicyError(`-D ${drive}${r.partition}: that partition mounts at ${p.mount} and is filled from the image; a raw copy would overwrite it`);
  }
  if (req.copy_mbr) bootCodeFor(image, req, kept);
  if (req.mbr) {
    const bytes = Buffer.from(req.mbr.base64, 'base64');
    if (bytes.length !== 446) throw new PolicyError(`-M: an MBR boot code file must be 446 bytes long, this one has ${bytes.length}`);
    const drive = req.mbr.drive ?? kept[0]!.device;
    if (!kept.some((k) => k.device === drive)) throw new PolicyError(`-M: no drive ${drive} in the deployment`);
  }
  const sent = image.filesystems.flatMap((f, i) => (keptMounts.has(f.mount) && !whole.has(f.mount) ? [i] : []));
  for (const m of whole) notes.push(`${m} excluded whole (-x): formatted empty`);
  return { drives: kept, skipped, sent, notes };
}

/** Which stored boot code -m copies, and to which drive of the deployment. */
export interface BootCodeChoice {
  record: BootCodeRecord;
  /** a DiskPlan device of the deployment */
  drive: string;
}

/**
 * -m [DRIVE]: the boot code of golden drive DRIVE (default: the image's only record, or the
 * one of the drive "first"), written to the deployment's drive of the same name if there
 * is one, else to the first drive. -m with -M is refused: two sources for the same bytes.
 */
export function bootCodeFor(image: ImageManifest, req: DeploymentRequest, drives: Pick<DriveDesc, 'device'>[]): BootCodeChoice {
  const named = typeof req.copy_mbr === 'string' ? req.copy_mbr : undefined;
  const flag = named ? `-m ${named}` : '-m';
  if (req.mbr) throw new PolicyError(`${flag} and -M both give the MBR boot code: choose one`);
  const records = image.boot_code ?? [];
  if (records.length === 0) {
    throw new PolicyError(`${flag}: image ${image.name} holds no MBR boot code. Capture the golden again so that it is recorded (kaboot image capture/push read it from the disk they read the desc from, or take --mbr-from DEV or --mbr FILE), or give the 446 bytes with -M FILE (on the golden: dd if=/dev/sda of=mbr.bin bs=446 count=1)`);
  }
  const record = named
    ? records.find((r) => r.drive === named) ?? (records.length === 1 ? records[0] : undefined)
    : records.length === 1 ? records[0] : records.find((r) => r.drive === 'first');
  if (!record) throw new PolicyError(`${flag}: image ${image.name} holds the boot code of ${records.map((r) => r.drive).join(', ')}: name one (-m DRIVE)`);
  const drive = drives.find((d) => d.device === (named ?? record.drive))?.device ?? drives[0]?.device;
  if (!drive) throw new PolicyError(`${flag}: the deployment has no drive`);
  return { record, drive };
}

/** -r "grub --with=ata_piix": the bootloader and the initramfs options. */
export function bootloaderFor(image: ImageManifest, req: DeploymentRequest, device: string): BootloaderPlan {
  const kind = req.bootloader?.kind ?? (image.bootloader === 'grub-pc' || image.bootloader === 'grub-efi' ? 'grub' : image.bootloader === 'extlinux' ? 'extlinux' : 'none');
  const modules: string[] = [];
  let initramfs = kind !== 'none';
  for (const w of (req.bootloader?.options ?? '').split(/\s+/).filter(Boolean)) {
    if (w === '--no-initramfs') initramfs = false;
    else if (w.startsWith('--with=')) modules.push(w.slice(7));
    else if (/^[A-Za-z0-9_-]+$/.test(w)) modules.push(w);
    else throw new PolicyError(`-r: expected "--with=MODULE", a module name or "--no-initramfs", got ${JSON.stringify(w)}`);
  }
  for (const m of modules) if (!/^[A-Za-z0-9_-]{1,64}$/.test(m)) throw new PolicyError(`-r: ${JSON.stringify(m)} is not a module name`);
  return { kind, device, initramfs, initramfs_modules: modules, ...(initramfs && image.initramfs?.length ? { initramfs_contents: image.initramfs } : {}) };
}

export function hostnameFor(pattern: string | undefined, n: number, mac: string): string | undefined {
  if (!pattern) return undefined;
  const name = pattern.replaceAll('{n}', String(n)).replaceAll('{mac}', mac.replace(/:/g, '-'));
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(name)) throw new PolicyError(`host name pattern ${JSON.stringify(pattern)} gives ${JSON.stringify(name)}, not a host name`);
  return name;
}

/** The sessions a node joins, by what they carry. */
export interface PlanSessions {
  stage2: SessionRef;
  /** by index into image.filesystems */
  filesystems: Map<number, SessionRef>;
  /** by "<drive>:<partition>" (the partition number of the request, before any renumbering) */
  raw: Map<string, SessionRef>;
  mbr?: SessionRef;
}

export interface PlanInputs {
  deployment: string;
  image: ImageManifest;
  request: DeploymentRequest;
  mac: string;
  firmware: Firmware;
  sessions: PlanSessions;
  hostname?: string;
}

/** One node's plan. Throws PolicyError when the request cannot be met for this firmware. */
export function buildPlan(inp: PlanInputs): { plan: DeployPlan; notes: string[] } {
  const { image, request: req } = inp;
  const layout = deploymentLayout(image, req);
  const notes = [...layout.notes];
  const bootIdx = bootDriveIndex(layout.drives);
  const sentSet = new Set(layout.sent);
  const placedMounts = image.filesystems.filter((f) => !layout.skipped.includes(f.mount)).map((f) => f.mount);
  const { below } = excludesPerFilesystem(placedMounts, req.exclude ?? []);

  const bootloader = bootloaderFor(image, req, layout.drives[bootIdx]!.device);
  const disks: DiskPlan[] = layout.drives.map((d, i) => {
    const adjusted = i === bootIdx ? descForFirmware(d.plan, d.desc, inp.firmware, { grub: bootloader.kind === 'grub' }) : { desc: d.desc, renumber: new Map(d.plan.partitions.map((p) => [p.number, p.number] as [number, number])) };
    if ('changed' in adjusted && adjusted.changed) notes.push(`${d.device}: ${adjusted.changed}`);
    const final = parseDesc(adjusted.desc);
    const filesystems: FilesystemPlan[] = [];
    for (const p of final.partitions) {
      if (!p.fs || p.fs === 'none' || p.kind === 'extended') continue;
      const fsIndex = p.mount ? image.filesystems.findIndex((f) => f.mount === p.mount) : -1;
      const rec = fsIndex >= 0 ? image.filesystems[fsIndex] : undefined;
      const session = rec && sentSet.has(fsIndex) ? inp.sessions.filesystems.get(fsIndex) : undefined;
      if (rec && sentSet.has(fsIndex) && !session) throw new PolicyError(`no session carries ${rec.mount}`);
      const label = p.fsLabel ?? rec?.label;
      filesystems.push({
        partition: p.number,
        fstype: p.fs,
        ...(p.mount ? { mount: p.mount } : {}),
        ...(label ? { label } : {}),
        ...(rec?.uuid && FS_UUID_RE.test(rec.uuid) ? { source_uuid: rec.uuid } : {}),
        ...(session ? { session } : {}),
        exclude: session && p.mount ? below.get(p.mount) ?? [] : [],
        // a live golden's counts are not known before its stream: verify relies on the KA digest and tar's status
        ...(session && rec && image.source.kind !== 'live' ? { files: rec.files, bytes_used: rec.bytes_used } : {}),
        ...(session && rec?.acl_file && rec.acl_entries > 0 ? { acl_url: `/store/${image.name}/${rec.acl_file}` } : {}),
      });
    }
    const raw = (req.raw ?? [])
      .filter((r) => (r.drive ?? layout.drives[0]!.device) === d.device)
      .map((r) => {
        const session = inp.sessions.raw.get(`${d.device}:${r.partition}`);
        if (!session) throw new PolicyError(`no session carries the raw partition ${d.device}:${r.partition}`);
        return { partition: adjusted.renumber.get(r.partition) ?? r.partition, session };
      });
    let wantsMbr = req.mbr !== undefined && (req.mbr.drive ?? layout.drives[0]!.device) === d.device;
    // a UEFI node boots from its ESP and never runs MBR boot code (a BIOS node with a GPT
    // does: the protective MBR holds it, as GRUB's boot.img)
    if (wantsMbr && inp.firmware === 'uefi') {
      wantsMbr = false;
      notes.push(`${d.device}: -M not written: a UEFI node boots from its ESP, not from MBR boot code`);
    }
    if (wantsMbr && !inp.sessions.mbr) throw new PolicyError('no session carries the MBR');
    return { device: d.device, desc: adjusted.desc, filesystems, raw, ...(wantsMbr && inp.sessions.mbr ? { mbr: inp.sessions.mbr } : {}) };
  });

  const plan: DeployPlan = {
    format: 1,
    deployment: inp.deployment,
    mac: inp.mac,
    firmware: inp.firmware,
    image: image.name,
    ...(inp.hostname ? { hostname: inp.hostname } : {}),
    stage2: inp.sessions.stage2,
    disks,
    bootloader,
    reboot: req.reboot ?? true,
    ...(req.exclude_drives && req.exclude_drives.length ? { exclude_drives: [...req.exclude_drives] } : {}),
  };
  return { plan, notes };
}
