// What kaboot deploy --live reads from a golden's trees before any stream: which tree an
// absolute path is in, the bootloader by the same signs a capture's tar scan uses, the
// kernels and etc/fstab; and the desc/boot code options (a --desc FILE reads no disk).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathInTrees, readGoldenDisk, treeFacts } from '../../src/images/golden.js';
import { chooseBootloader } from '../../src/images/manifest.js';

const work = await mkdtemp(join(tmpdir(), 'kaboot-golden-'));
after(() => rm(work, { recursive: true, force: true }));

test('an absolute path is read in the tree of the deepest mount point holding it', () => {
  const trees = [{ mount: '/', dir: '/mnt/root' }, { mount: '/boot', dir: '/mnt/boot' }, { mount: '/boot/efi', dir: '/mnt/esp' }];
  assert.equal(pathInTrees(trees, '/etc/fstab'), '/mnt/root/etc/fstab');
  assert.equal(pathInTrees(trees, '/boot/grub/i386-pc'), '/mnt/boot/grub/i386-pc');
  assert.equal(pathInTrees(trees, '/boot/efi/EFI/debian'), '/mnt/esp/EFI/debian');
  assert.equal(pathInTrees(trees, '/boot'), '/mnt/boot');
  assert.equal(pathInTrees(trees, '/bootx/y'), '/mnt/root/bootx/y');
  assert.equal(pathInTrees([{ mount: '/boot', dir: '/b' }], '/etc'), undefined);
});

test('bootloader, kernels and fstab from the trees themselves', async () => {
  const root = join(work, 'root');
  const boot = join(work, 'boot');
  const esp = join(work, 'esp');
  await mkdir(join(root, 'etc'), { recursive: true });
  await mkdir(join(root, 'usr/lib/modules/6.1.0-13-amd64'), { recursive: true });
  await writeFile(join(root, 'etc/fstab'), 'UUID=x / ext4 defaults 0 1\n');
  await mkdir(join(boot, 'grub/i386-pc'), { recursive: true });
  await writeFile(join(boot, 'vmlinuz-6.1.0-13-amd64'), '');
  const bios = await treeFacts([{ mount: '/', dir: root }, { mount: '/boot', dir: boot }]);
  assert.deepEqual(bios, { bootloader: 'grub-pc', kernels: ['6.1.0-13-amd64'], fstab: 'UUID=x / ext4 defaults 0 1\n' });
  await mkdir(join(esp, 'EFI/debian'), { recursive: true });
  await writeFile(join(esp, 'EFI/debian/grubx64.efi'), '');
  const uefi = await treeFacts([{ mount: '/', dir: root }, { mount: '/boot', dir: boot }, { mount: '/boot/efi', dir: esp, fstype: 'vfat' }]);
  assert.equal(uefi.bootloader, 'grub-efi', 'GRUB for EFI with an ESP wins over BIOS GRUB');
  assert.equal((await treeFacts([{ mount: '/', dir: join(work, 'nothing') }])).bootloader, 'unknown');
  assert.equal(chooseBootloader(new Set(['extlinux']), false), 'extlinux');
  assert.equal(chooseBootloader(new Set(['grub-pc', 'grub-efi']), false), 'grub-pc');
});

test('a desc from a file reads no disk, so no boot code unless --mbr or --mbr-from says', async () => {
  const desc = join(work, 'desc');
  await writeFile(desc, 'linux fill ext4 /\n');
  const d = await readGoldenDisk({ desc }, ['/']);
  assert.equal(d.desc, 'linux fill ext4 /\n');
  assert.deepEqual(d.bootCode, []);
  const mbr = join(work, 'mbr.bin');
  await writeFile(mbr, Buffer.alloc(446, 9));
  const m = await readGoldenDisk({ desc, mbr }, ['/']);
  assert.deepEqual(m.bootCode.map((b) => [b.drive, b.source, b.bytes.length]), [['first', mbr, 446]]);
  const none = await readGoldenDisk({ desc, mbr, 'no-mbr': true }, ['/']);
  assert.deepEqual(none.bootCode, []);
  await assert.rejects(readGoldenDisk({ desc: join(work, 'missing') }, ['/']), /ENOENT/);
});
