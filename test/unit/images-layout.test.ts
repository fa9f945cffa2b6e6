import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDesc } from '../../src/images/desc.js';
import { partitionDevice, mkfsCommand, mountOrder, checkPlanHoldsImage, fillMiB } from '../../src/images/layout.js';
import type { ImageManifest, FilesystemRecord } from '../../src/images/manifest.js';

const fsRec = (mount: string, usedMiB: number, extra: Partial<FilesystemRecord> = {}): FilesystemRecord => ({
  mount, fstype: 'ext4', files: 1, bytes_used: usedMiB * 1024 * 1024, squashfs: 'fs/1-root.sqfs', squashfs_bytes: 1, squashfs_sha256: '0'.repeat(64),
  tar_bytes: 1, tar_sha256: '0'.repeat(64), stream: 'fs/1-root.tar.zst', stream_bytes: 1, stream_sha256: '0'.repeat(64), acl_entries: 0, ...extra,
});
const image = (fss: FilesystemRecord[]): ImageManifest => ({ format: 1, name: 'g', created: '', source: { kind: 'local', paths: [] }, filesystems: fss, bootloader: 'grub-pc', kernels: [], warnings: [] });

test('partition device names', () => {
  assert.equal(partitionDevice('/dev/sda', 5), '/dev/sda5');
  assert.equal(partitionDevice('/dev/vda', 1), '/dev/vda1');
  assert.equal(partitionDevice('/dev/nvme0n1', 2), '/dev/nvme0n1p2');
  assert.equal(partitionDevice('/dev/mmcblk0', 1), '/dev/mmcblk0p1');
});

test('mkfs commands per file system, none for extended and unformatted partitions', () => {
  const plan = parseDesc('gpt\nesp 512 label=efi\nlinux 3000 ext4 / label=root\nswap 500\nlinux 100 xfs /srv\nlinux 100 btrfs /b\nlinux fill\n');
  const cmds = plan.partitions.map((p) => mkfsCommand(p, partitionDevice('/dev/vda', p.number)));
  assert.deepEqual(cmds, [
    ['mkfs.vfat', '-F', '32', '-n', 'EFI', '/dev/vda1'],
    ['mkfs.ext4', '-q', '-F', '-L', 'root', '/dev/vda2'],
    ['mkswap', '/dev/vda3'],
    ['mkfs.xfs', '-q', '-f', '/dev/vda4'],
    ['mkfs.btrfs', '-q', '-f', '/dev/vda5'],
    undefined,
  ]);
  assert.equal(mkfsCommand(parseDesc('linux 10\nextended fill\nlogical linux 1\n').partitions[1]!, '/dev/sda2'), undefined);
});

test('mount order: / first, parents before children', () => {
  const plan = parseDesc('gpt\nesp 512\nlinux 100 ext4 /boot\nlinux 3000 ext4 /\nlinux 100 ext4 /var/log\nlinux fill xfs /var\n');
  assert.deepEqual(mountOrder(plan, '/dev/nvme0n1').map((m) => `${m.mount}=${m.device}`), ['/=/dev/nvme0n1p3', '/boot=/dev/nvme0n1p2', '/var=/dev/nvme0n1p5', '/boot/efi=/dev/nvme0n1p1', '/var/log=/dev/nvme0n1p4']);
});

test('fill sizes: on the disk, inside a fixed or filling extended partition', () => {
  const seed = parseDesc('linux 3500\nextended fill\nlogical swap 500\nlogical linux fill\n');
  assert.equal(fillMiB(seed, seed.partitions[3]!, 10000), 10000 - 1 - 3500 - 500 - 2);
  assert.equal(fillMiB(seed, seed.partitions[3]!), undefined);
  const fixedExt = parseDesc('extended 1000\nlogical linux 100\nlogical linux fill\n');
  assert.equal(fillMiB(fixedExt, fixedExt.partitions[2]!), 1000 - 100 - 2);
  const gpt = parseDesc('gpt\nesp 512\nlinux fill\n');
  assert.equal(fillMiB(gpt, gpt.partitions[1]!, 2048), 2048 - 2 - 512);
});

test('a plan must hold every file system of the image', () => {
  const img = image([fsRec('/', 400), fsRec('/boot/efi', 5, { fstype: 'vfat' }), fsRec('/home', 10, { acl_entries: 2 })]);
  assert.deepEqual(checkPlanHoldsImage(parseDesc('gpt\nesp 512\nlinux 600 ext4 /\nlinux fill ext4 /home\n'), img, 2048), []);
  const problems = checkPlanHoldsImage(parseDesc('linux 300 ext4 /\nlinux fill vfat /home\n'), img, 2048);
  assert.deepEqual(problems.map((p) => p.mount), ['/', '/boot/efi', '/home']);
  assert.match(problems[0]!.problem, /line 1: 300 MB is too small for \/, which holds 400 MB/);
  assert.match(problems[1]!.problem, /no partition of the desc mounts at \/boot\/efi/);
  assert.match(problems[2]!.problem, /vfat cannot keep the 2 ACLs/);
  assert.match(checkPlanHoldsImage(parseDesc('linux fill /\n'), image([fsRec('/', 1)]))[0]!.problem, /needs a file system \(the golden had ext4\)/);
  assert.match(checkPlanHoldsImage(parseDesc('linux fill ext4 /\n'), image([fsRec('/', 1000)]), 900)[0]!.problem, /899 MB is too small/);
});
