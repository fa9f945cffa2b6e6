import { test } from 'node:test';
import assert from 'node:assert/strict';
import { espLoaders, localBootEarlyConfig, localBootGrubConfig, localBootModules } from '../../src/stage2/local-boot-efi.js';
import { defaults } from '../../src/config/schema.js';
import { localBootEfiFile } from '../../src/stage2/build.js';

test('local-boot GRUB config: tries each ESP loader in order, chainloads it from its own partition, exits when none starts', () => {
  const cfg = localBootGrubConfig();
  assert.deepEqual([...espLoaders], ['/EFI/BOOT/BOOTX64.EFI', '/EFI/debian/shimx64.efi', '/EFI/debian/grubx64.efi']);
  assert.match(cfg, /^for f in \/EFI\/BOOT\/BOOTX64\.EFI \/EFI\/debian\/shimx64\.efi \/EFI\/debian\/grubx64\.efi; do$/m);
  const lines = cfg.split('\n').map((l) => l.trim());
  const search = lines.indexOf('if search --no-floppy --file --set=esp "$f"; then');
  const root = lines.indexOf('set root="$esp"');
  const chain = lines.indexOf('chainloader "$f"');
  const boot = lines.indexOf('boot');
  // GRUB's EFI chainloader gives the image $root's device path: root must be the ESP first
  assert.ok(search >= 0 && search < root && root < chain && chain < boot, cfg);
  assert.equal(lines.filter(Boolean).at(-1), 'exit', 'ends in exit, back to iPXE, never at the grub> prompt');
  assert.match(cfg, /no local disk holds/);
});

test('local-boot GRUB image: the early config points normal at the memdisk; the modules cover what the config runs', () => {
  assert.match(localBootEarlyConfig, /^set root=\(memdisk\)$/m);
  assert.match(localBootEarlyConfig, /^set prefix=\(memdisk\)\/boot\/grub$/m);
  // for, if: normal; search --file: search_fs_file; chainloader: chain; exit: minicmd; GPT/DOS ESPs, FAT
  for (const m of ['memdisk', 'tar', 'normal', 'search', 'search_fs_file', 'chain', 'minicmd', 'part_gpt', 'part_msdos', 'fat', 'echo', 'test']) {
    assert.ok((localBootModules as readonly string[]).includes(m), m);
  }
});

test('local-boot GRUB image: stage2 build writes the file boot.files.uefi_local names by default', () => {
  assert.equal(defaults.boot.files.uefi_local, localBootEfiFile);
});
