// What a golden says about its disk besides its files: the partition scheme (desc) and
// the MBR boot code, from --desc FILE / --desc-from DEV / --mbr FILE / --mbr-from DEV, or
// by default from the disk that holds / when the golden's root is /. Shared by
// `kaboot image capture`, `kaboot image push` and `kaboot deploy --live`.
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { parseDesc } from './desc.js';
import { descFromDisk } from './desc-from-disk.js';
import { bootCodeFromFile, readBootCode, type BootCode } from './boot-code.js';
import { chooseBootloader, type BootloaderHint, type BootloaderName } from './manifest.js';

export interface GoldenDiskOptions {
  desc?: string;
  'desc-from'?: string;
  mbr?: string;
  'mbr-from'?: string;
  'no-mbr'?: boolean;
}

/** The disk that holds / on this machine, when it is a partition of a disk. */
export async function rootDisk(): Promise<string | undefined> {
  const src = await execa('findmnt', ['-n', '-o', 'SOURCE', '/'], { reject: false });
  const dev = src.stdout.trim();
  if (!dev.startsWith('/dev/')) return undefined;
  const pk = await execa('lsblk', ['-n', '-o', 'PKNAME', dev], { reject: false });
  const name = pk.stdout.trim().split('\n')[0];
  return name ? `/dev/${name}` : undefined;
}

/**
 * The disk the desc is read from: --desc-from DEV, or the disk holding / when the
 * golden's root is / and no --desc FILE is given.
 */
async function descDisk(o: GoldenDiskOptions, from: string[]): Promise<string | undefined> {
  if (o['desc-from']) return o['desc-from'];
  if (!o.desc && from.includes('/')) return rootDisk();
  return undefined;
}

export interface GoldenDisk {
  desc?: string;
  bootCode: BootCode[];
  /** what could not be read, for the user (not fatal) */
  notes: string[];
}

/**
 * Reads the desc and the boot code. The boot code comes with the desc when the desc is
 * read from a disk (the same disk), or from --mbr-from DEV / --mbr FILE; --no-mbr keeps none.
 * An explicit option that cannot be read is an error; a default that cannot is a note.
 */
export async function readGoldenDisk(o: GoldenDiskOptions, from: string[]): Promise<GoldenDisk> {
  const notes: string[] = [];
  let desc: string | undefined;
  if (o.desc) {
    desc = await readFile(o.desc, 'utf8');
    parseDesc(desc);
  }
  const disk = await descDisk(o, from);
  if (!o.desc) {
    if (o['desc-from']) desc = await descFromDisk(o['desc-from']);
    else if (from.includes('/')) {
      if (!disk) notes.push('no desc recorded: / is not on a partitioned disk (give --desc FILE)');
      else {
        try {
          desc = await descFromDisk(disk);
        } catch (e) {
          notes.push(`no desc recorded: ${(e as Error).message}`);
        }
      }
    }
  }
  const bootCode: BootCode[] = [];
  if (o['no-mbr']) return { desc, bootCode, notes };
  if (o.mbr) bootCode.push(await bootCodeFromFile(o.mbr));
  else if (o['mbr-from']) bootCode.push(await readBootCode(o['mbr-from']));
  else if (disk && desc !== undefined) {
    try {
      bootCode.push(await readBootCode(disk));
    } catch (e) {
      notes.push(`no MBR boot code recorded: ${(e as Error).message}`);
    }
  }
  return { desc, bootCode, notes };
}

/** A tree of the golden and its mount point (capture.ts CaptureSource). */
export interface GoldenTree {
  mount: string;
  dir: string;
  fstype?: string;
}

/** Where an absolute path of the golden is readable here: in the tree of the deepest mount point that holds it. */
export function pathInTrees(trees: GoldenTree[], abs: string): string | undefined {
  const owner = trees
    .filter((t) => t.mount === '/' || abs === t.mount || abs.startsWith(t.mount + '/'))
    .sort((a, b) => b.mount.length - a.mount.length)[0];
  if (!owner) return undefined;
  const rel = owner.mount === '/' ? abs.slice(1) : abs.slice(owner.mount.length + 1);
  return rel ? join(owner.dir, rel) : owner.dir;
}

const exists = (p: string | undefined) => (p ? stat(p).then(() => true, () => false) : Promise.resolve(false));
const list = (p: string | undefined) => (p ? readdir(p).catch(() => [] as string[]) : Promise.resolve([] as string[]));

/**
 * What a capture learns from the tar stream (capture.ts, squashfs.ts), read from the
 * trees themselves for a live golden, whose stream comes only later: the bootloader by
 * the same signs, the kernels, etc/fstab.
 */
export async function treeFacts(trees: GoldenTree[]): Promise<{ bootloader: BootloaderName; kernels: string[]; fstab?: string }> {
  const at = (abs: string) => pathInTrees(trees, abs);
  const hints = new Set<BootloaderHint>();
  if (await exists(at('/boot/grub/i386-pc'))) hints.add('grub-pc');
  for (const arch of ['x86_64-efi', 'i386-efi', 'arm64-efi']) if (await exists(at(`/boot/grub/${arch}`))) hints.add('grub-efi');
  for (const vendor of await list(at('/boot/efi/EFI'))) {
    if ((await list(at(`/boot/efi/EFI/${vendor}`))).some((f) => /^grub[a-z0-9]*\.efi$/i.test(f))) hints.add('grub-efi');
  }
  if (await exists(at('/boot/extlinux/extlinux.conf')) || await exists(at('/boot/syslinux/syslinux.conf'))) hints.add('extlinux');
  const esp = trees.some((t) => t.mount === '/boot/efi' || t.fstype === 'vfat');
  const kernels = new Set<string>();
  for (const d of ['/lib/modules', '/usr/lib/modules']) for (const k of await list(at(d))) kernels.add(k);
  for (const f of await list(at('/boot'))) if (f.startsWith('vmlinuz-')) kernels.add(f.slice('vmlinuz-'.length));
  const fstabPath = at('/etc/fstab');
  const fstab = fstabPath ? await readFile(fstabPath, 'utf8').catch(() => undefined) : undefined;
  return { bootloader: chooseBootloader(hints, esp), kernels: [...kernels].sort(), ...(fstab !== undefined ? { fstab } : {}) };
}
