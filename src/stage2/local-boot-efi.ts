// images/local-boot-x64.efi: a standalone GRUB for x86_64 UEFI that boots a node's own disk.
// iPXE (Debian's, from 2019) cannot sanboot a local disk under UEFI, and after its `exit`
// OVMF and much real firmware try their own PXE and HTTP boot (minutes) before the disk.
// The iPXE script of a node on local boot chainloads this image instead (as MAAS does): its
// config, in a memdisk, searches every disk for a boot loader on an EFI system partition and
// chainloads the first it finds; if none starts, it says so and exits to the firmware.
// Built with GRUB's own grub-mkimage from the stage2 tree (chrooted), so the result depends
// only on the pinned packages; the memdisk tar is written with fixed owners and mtimes, and
// two builds give the same bytes.
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';

/** Where a boot loader sits on an ESP, in the order tried: kaboot's agent installs GRUB with --removable (the first). */
export const espLoaders = ['/EFI/BOOT/BOOTX64.EFI', '/EFI/debian/shimx64.efi', '/EFI/debian/grubx64.efi'] as const;

/** GRUB modules built into the image (grub-mkimage adds what they depend on). */
export const localBootModules = [
  'memdisk', 'tar', 'normal', 'part_gpt', 'part_msdos', 'fat', 'search', 'search_fs_file', 'chain', 'echo', 'test', 'minicmd',
] as const;

/** Run first, by GRUB's kernel: from there `normal` reads the memdisk's grub.cfg. */
export const localBootEarlyConfig = 'set root=(memdisk)\nset prefix=(memdisk)/boot/grub\n';

export function localBootGrubConfig(loaders: readonly string[] = espLoaders): string {
  return [
    '# kaboot: boot the boot loader on this machine\'s own disk (written by kaboot stage2 build)',
    'echo "kaboot: looking for a boot loader on the local disks\' EFI system partitions"',
    `for f in ${loaders.join(' ')}; do`,
    '  if search --no-floppy --file --set=esp "$f"; then',
    '    echo "kaboot: chainloading ($esp)$f"',
    // chainloader hands the image the device path of $root, not of the file\'s device
    '    set root="$esp"',
    '    chainloader "$f"',
    '    boot',
    '    echo "kaboot: ($esp)$f did not start"',
    '  fi',
    'done',
    `echo "kaboot: no local disk holds ${loaders.join(', ')}; back to the firmware's next boot option"`,
    // Without this GRUB would stop at its prompt; exit returns to iPXE, whose script exits too.
    'exit',
    '',
  ].join('\n');
}

export class LocalBootEfiError extends Error {}

export interface LocalBootEfiOptions {
  /** a root holding usr/bin/grub-mkimage and usr/lib/grub/x86_64-efi that runs chrooted: the stage2 tree, or / */
  root: string;
  /** the image to write (atomically) */
  out: string;
  /** SOURCE_DATE_EPOCH: the memdisk's mtimes */
  epoch: number;
}

/** Builds the image; needs root (chroot). */
export async function buildLocalBootEfi(o: LocalBootEfiOptions): Promise<void> {
  mkdirSync(join(o.root, 'tmp'), { recursive: true });
  const work = mkdtempSync(join(o.root, 'tmp', '.kaboot-local-efi-'));
  const inRoot = '/' + work.slice(o.root.replace(/\/+$/, '').length).replace(/^\/+/, '');
  try {
    const tree = join(work, 'memdisk');
    mkdirSync(join(tree, 'boot', 'grub'), { recursive: true });
    writeFileSync(join(tree, 'boot', 'grub', 'grub.cfg'), localBootGrubConfig());
    for (const [p, mode] of [['boot/grub/grub.cfg', 0o644], ['boot/grub', 0o755], ['boot', 0o755]] as const) {
      chmodSync(join(tree, p), mode);
      utimesSync(join(tree, p), o.epoch, o.epoch);
    }
    await execa('tar', ['--format=ustar', `--mtime=@${o.epoch}`, '--owner=0', '--group=0', '--numeric-owner', '--sort=name',
      '-cf', join(work, 'memdisk.tar'), '-C', tree, 'boot'], { env: { LC_ALL: 'C' } });
    writeFileSync(join(work, 'early.cfg'), localBootEarlyConfig);
    const r = await execa('chroot', [o.root, '/usr/bin/grub-mkimage', '-O', 'x86_64-efi', '-d', '/usr/lib/grub/x86_64-efi',
      '-c', `${inRoot}/early.cfg`, '-m', `${inRoot}/memdisk.tar`, '-p', '/boot/grub', '-o', `${inRoot}/local-boot.efi`,
      ...localBootModules], { reject: false, all: true, env: { LC_ALL: 'C', PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    if (r.exitCode !== 0) throw new LocalBootEfiError(`grub-mkimage in ${o.root} failed (exit ${r.exitCode}): ${r.all}`);
    copyFileSync(join(work, 'local-boot.efi'), `${o.out}.tmp`);
    renameSync(`${o.out}.tmp`, o.out);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
