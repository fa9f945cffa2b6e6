// kaboot stage2 build: images/stage2.sqfs (the root a node mounts from RAM and chroots into to
// partition, format, receive and install bootloaders) and images/stage2.manifest.json.
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { sourceDateEpoch } from '../agent/build/inputs.js';
import { fileSha256 } from '../agent/build/sea.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { candidateVersions, resolveClosure, stage2Packages, stage2Pruned } from './packages.js';
import { fetchDebs } from './debs.js';
import { locateTools, unpackTree, Stage2TreeError } from './tree.js';
import { mksquashfsArgs, mksquashfsVersion, writeSquashfsAtomic, type SquashfsSettings } from './squashfs.js';
import { buildLocalBootEfi, localBootModules } from './local-boot-efi.js';

/** Beside stage2.sqfs: the EFI image a UEFI node on local boot chainloads (boot.files.uefi_local's default). */
export const localBootEfiFile = 'local-boot-x64.efi';

/** The commands a node runs from stage2; the build fails if one is missing. */
export const stage2Tools = [
  'sh', 'dash', 'sfdisk', 'fdisk', 'blkid', 'wipefs', 'mkswap', 'blockdev', 'partx', 'lsblk', 'mount', 'umount',
  'mkfs.ext2', 'mkfs.ext3', 'mkfs.ext4', 'tune2fs', 'e2label', 'mkfs.xfs', 'xfs_admin', 'mkfs.btrfs', 'btrfstune',
  'mkfs.vfat', 'mkfs.fat', 'tar', 'zstd', 'getfacl', 'setfacl', 'dd', 'sync',
  'grub-install', 'grub-probe', 'grub-mkimage', 'grub-editenv', 'extlinux', 'efibootmgr',
];

/** Files the bootloader step reads, beside the tools. */
export const stage2Files = [
  'usr/lib/grub/i386-pc/boot.img', 'usr/lib/grub/i386-pc/modinfo.sh', 'usr/lib/grub/x86_64-efi/modinfo.sh',
  'usr/lib/syslinux/mbr/mbr.bin', 'usr/lib/syslinux/mbr/gptmbr.bin', 'usr/lib/EXTLINUX/mbr.bin',
];

export interface Stage2Manifest {
  source_date_epoch: number;
  squashfs: { file: string; size: number; sha256: string; mksquashfs: string; args: string[] };
  packages: { name: string; version: string; architecture: string; deb_sha256: string; deb_size: number }[];
  wanted: Record<string, string>;
  pruned: Record<string, string>;
  tools: { name: string; path: string }[];
  /** built from the same tree's GRUB (grub-mkimage -O x86_64-efi) */
  local_boot_efi: { file: string; size: number; sha256: string; grub_modules: string[] };
}

export interface Stage2BuildOptions {
  outDir: string;
  cacheDir: string;
  zstdLevel?: number;
  say?: (line: string) => void;
}

export interface Stage2BuildResult {
  image: string;
  manifestFile: string;
  manifest: Stage2Manifest;
  downloaded: number;
  treeBytes: number;
  seconds: { resolve: number; fetch: number; unpack: number; squashfs: number; localBootEfi: number };
}

export async function buildStage2(o: Stage2BuildOptions): Promise<Stage2BuildResult> {
  const say = o.say ?? (() => undefined);
  const epoch = sourceDateEpoch();
  const settings: SquashfsSettings = { level: o.zstdLevel ?? 15, blockSize: 1 << 20, epoch };
  mkdirSync(o.outDir, { recursive: true });
  const clock = { t: Date.now() };
  const lap = () => { const n = Date.now(); const s = (n - clock.t) / 1000; clock.t = n; return s; };

  const names = await resolveClosure(Object.keys(stage2Packages), new Set(Object.keys(stage2Pruned)));
  const versions = await candidateVersions(names);
  const resolve = lap();
  say(`${names.length} packages: ${Object.keys(stage2Packages).length} wanted and their Depends/Pre-Depends (apt-cache), ${Object.keys(stage2Pruned).length} pruned`);

  const { debs, downloaded } = await fetchDebs(o.cacheDir, versions, say);
  const fetch = lap();
  say(`debs: ${downloaded} downloaded, ${debs.length - downloaded} from ${join(o.cacheDir, 'debs')}`);

  const stage = mkdtempSync(join(o.outDir, '.stage2-tree-'));
  try {
    await unpackTree(stage, debs);
    const tools = locateTools(stage, stage2Tools);
    const missingFiles = stage2Files.filter((f) => { try { statSync(join(stage, f)); return false; } catch { return true; } });
    if (missingFiles.length) throw new Stage2TreeError(`stage2 lacks ${missingFiles.join(', ')}`);
    const treeBytes = await duBytes(stage);
    const unpack = lap();
    say(`tree: dpkg -x of ${debs.length} packages, ${(treeBytes / 1e6).toFixed(1)} MB`);

    const image = join(o.outDir, 'stage2.sqfs');
    say(`squashfs: zstd -${settings.level}, ${settings.blockSize >> 10} KiB blocks`);
    await writeSquashfsAtomic(stage, image, settings);
    const squashfs = lap();

    // After mksquashfs: the build's scratch files never reach the image.
    const localEfi = join(o.outDir, localBootEfiFile);
    await buildLocalBootEfi({ root: stage, out: localEfi, epoch });
    const localBootEfi = lap();
    say(`${localBootEfiFile}: GRUB for UEFI local boot, ${statSync(localEfi).size} bytes`);

    const manifest: Stage2Manifest = {
      source_date_epoch: epoch,
      squashfs: {
        file: 'stage2.sqfs',
        size: statSync(image).size,
        sha256: await fileSha256(image),
        mksquashfs: await mksquashfsVersion(),
        args: mksquashfsArgs('TREE', 'stage2.sqfs', settings),
      },
      packages: debs.map((d) => ({ name: d.name, version: d.version, architecture: d.architecture, deb_sha256: d.sha256, deb_size: d.size })),
      wanted: stage2Packages,
      pruned: stage2Pruned,
      tools,
      local_boot_efi: { file: localBootEfiFile, size: statSync(localEfi).size, sha256: await fileSha256(localEfi), grub_modules: [...localBootModules] },
    };
    const manifestFile = join(o.outDir, 'stage2.manifest.json');
    await writeFileAtomic(manifestFile, JSON.stringify(manifest, null, 2) + '\n');
    return { image, manifestFile, manifest, downloaded, treeBytes, seconds: { resolve, fetch, unpack, squashfs, localBootEfi } };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

async function duBytes(dir: string): Promise<number> {
  const { stdout } = await execa('du', ['-sb', dir]);
  return Number(stdout.split('\t')[0]);
}
