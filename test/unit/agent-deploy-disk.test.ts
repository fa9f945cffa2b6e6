// The partition step's pure parts: which disk, what the desc asks for, the boot flag, and the
// sfdisk script it makes, run by the real sfdisk on a disk image file (never a device).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { parseDesc } from '../../src/images/desc.js';
import { renderSfdiskScript } from '../../src/images/sfdisk-script.js';
import { GPT } from '../../src/images/part-types.js';
import { mountedFrom, descMinMiB, pickDisk, readBlockDevices, targetsFor, withBootFlag, expectedPartitions, partitionName, type BlockDevice } from '../../src/agent/deploy/disk.js';
import type { DiskPlan } from '../../src/deploy/plan.js';

const GiB = 2 * 1024 * 1024; // sectors
const dev = (name: string, gib: number, more: Partial<BlockDevice> = {}): BlockDevice => ({ name, removable: false, readOnly: false, sectors: gib * GiB, ...more });

test('pickDisk: "first" skips loop, cdrom, removable, read-only, too small and taken disks; a name is taken as given', () => {
  const devices = [dev('loop0', 10), dev('sr0', 1), dev('sda', 1), dev('sdb', 8, { removable: true }), dev('vda', 20), dev('vdb', 20), dev('mmcblk0boot0', 4)];
  assert.equal(pickDisk(devices, 'first', 2048).name, 'vda');
  assert.equal(pickDisk(devices, 'first', 512).name, 'sda');
  assert.equal(pickDisk(devices, 'first', 2048, new Set(['vda'])).name, 'vdb');
  assert.equal(pickDisk(devices, '/dev/vdb', 2048).name, 'vdb');
  assert.throws(() => pickDisk(devices, 'first', 30 * 1024), /no disk of at least 30720 MB.*vda 20480 MB/);
  assert.throws(() => pickDisk(devices, 'nvme0n1', 1), /no disk nvme0n1 on this node \(disks: sda, sdb, vda, vdb\)/);
  assert.throws(() => pickDisk(devices, 'sda', 2048), /sda has 1024 MB, the partition scheme needs 2048 MB/);
  assert.throws(() => pickDisk(devices, 'vda', 1, new Set(['vda'])), /excluded/);
  assert.throws(() => pickDisk([dev('sda', 4, { readOnly: true })], 'first', 1), /sda 4096 MB read-only/);
});

test('readBlockDevices reads removable, ro and size from a sysfs tree', () => {
  const sys = mkdtempSync(join(tmpdir(), 'agent-sys-'));
  try {
    for (const [n, size, rem] of [['vda', '41943040', '0'], ['sr0', '2097152', '1']] as const) {
      mkdirSync(join(sys, 'block', n), { recursive: true });
      writeFileSync(join(sys, 'block', n, 'size'), `${size}\n`);
      writeFileSync(join(sys, 'block', n, 'removable'), `${rem}\n`);
      writeFileSync(join(sys, 'block', n, 'ro'), '0\n');
    }
    assert.deepEqual(readBlockDevices(sys), [
      { name: 'sr0', removable: true, readOnly: false, sectors: 2097152 },
      { name: 'vda', removable: false, readOnly: false, sectors: 41943040 },
    ]);
  } finally {
    rmSync(sys, { recursive: true, force: true });
  }
});

test('descMinMiB counts fixed sizes, 1 MB per fill, the gaps before logicals and the GPT backup', () => {
  assert.equal(descMinMiB(parseDesc('linux 3500\nextended fill\nlogical swap 500\nlogical linux fill\n')), 1 + 3500 + 501 + 2);
  assert.equal(descMinMiB(parseDesc('label gpt\nesp 512\nlinux fill ext4 /\n')), 2 + 512 + 1);
});

const diskPlan = (desc: string, filesystems: DiskPlan['filesystems']): DiskPlan => ({ device: 'first', desc, filesystems, raw: [] });

test('targetsFor: the plan\'s file systems on their partitions, the desc\'s others too, and the errors', () => {
  const desc = parseDesc('linux 3500 ext4 /\nextended fill\nlogical swap 500\nlogical linux fill ext4 /var label=VAR\n');
  const session = { name: 'kainstall1', port: 4000, secret: 'a'.repeat(32), bytes: 10, sha256: 'b'.repeat(64) };
  const t = targetsFor(0, '/dev/vda', desc, diskPlan('', [
    { partition: 1, fstype: 'xfs', mount: '/', label: 'root', session, exclude: ['tmp'], files: 10, bytes_used: 100 },
    { partition: 5, fstype: 'swap', exclude: [] },
  ]));
  assert.deepEqual(t.map((x) => [x.device, x.fstype, x.mount, x.label, x.session?.name, x.files]), [
    ['/dev/vda1', 'xfs', '/', 'root', 'kainstall1', 10],
    ['/dev/vda5', 'swap', undefined, undefined, undefined, undefined],
    ['/dev/vda6', 'ext4', '/var', 'VAR', undefined, undefined],
  ]);
  assert.throws(() => targetsFor(0, '/dev/vda', desc, diskPlan('', [{ partition: 2, fstype: 'ext4', exclude: [] }])), /extended/);
  assert.throws(() => targetsFor(0, '/dev/vda', desc, diskPlan('', [{ partition: 9, fstype: 'ext4', exclude: [] }])), /no such partition/);
  assert.throws(() => targetsFor(0, '/dev/vda', desc, diskPlan('', [{ partition: 1, fstype: 'reiserfs', exclude: [] }])), /not one kaboot makes/);
  const nvme = targetsFor(0, '/dev/nvme0n1', parseDesc('label gpt\nesp 512\nlinux fill ext4 /\n'), diskPlan('', []));
  assert.deepEqual(nvme.map((x) => [x.device, x.fstype, x.mount, x.esp]), [['/dev/nvme0n1p1', 'vfat', '/boot/efi', true], ['/dev/nvme0n1p2', 'ext4', '/', false]]);
  assert.equal(partitionName('nvme0n1', 2), 'nvme0n1p2');
  assert.equal(partitionName('vda', 5), 'vda5');
});

test('withBootFlag: a DOS boot disk on BIOS gets /boot (else /) flagged unless the desc flags one; GPT and UEFI do not', () => {
  const desc = parseDesc('linux 300 ext4 /boot\nlinux fill ext4 /\n');
  const targets = targetsFor(0, '/dev/vda', desc, diskPlan('', []));
  const f = withBootFlag(desc, targets, 'bios', 'grub', true);
  assert.equal(f.flagged, 1);
  assert.deepEqual(f.desc.partitions.map((p) => p.bootable), [true, false]);
  assert.deepEqual(desc.partitions.map((p) => p.bootable), [false, false], 'the parsed desc is not changed');
  const rootOnly = parseDesc('swap 100\nlinux fill ext4 /\n');
  assert.equal(withBootFlag(rootOnly, targetsFor(0, '/dev/vda', rootOnly, diskPlan('', [])), 'bios', 'grub', true).flagged, 2);
  assert.equal(withBootFlag(desc, targets, 'uefi', 'grub', true).flagged, undefined);
  assert.equal(withBootFlag(desc, targets, 'bios', 'none', true).flagged, undefined);
  assert.equal(withBootFlag(desc, targets, 'bios', 'grub', false).flagged, undefined);
  const flagged = parseDesc('linux 300 ext4 /boot\nlinux fill ext4 / bootable\n');
  assert.equal(withBootFlag(flagged, targets, 'bios', 'grub', true).flagged, undefined);
  const gpt = parseDesc('label gpt\ntype21686148-6449-6E6F-744E-656564454649 1\nlinux fill ext4 /\n');
  const gt = targetsFor(0, '/dev/vda', gpt, diskPlan('', []));
  assert.equal(withBootFlag(gpt, gt, 'bios', 'grub', true).flagged, undefined);
  assert.equal(withBootFlag(gpt, gt, 'bios', 'extlinux', true).flagged, 2);
});

async function sfdiskDump(img: string) {
  const r = await execa('sfdisk', ['--json', img]);
  return (JSON.parse(r.stdout) as { partitiontable: { label: string; partitions: { node: string; start: number; size: number; type: string; bootable?: boolean; attrs?: string }[] } }).partitiontable;
}

test('the sfdisk script of a flagged DOS desc, run by sfdisk on a 4 GiB image file: numbers, sizes, types, the active flag', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-sfdisk-'));
  try {
    const img = join(dir, 'disk.img');
    await execa('truncate', ['-s', '4G', img]);
    const desc = parseDesc('linux 300 ext4 /boot\nextended fill\nlogical swap 500\nlogical linux fill ext4 /\n');
    const f = withBootFlag(desc, targetsFor(0, img, desc, diskPlan('', [])), 'bios', 'grub', true);
    const script = renderSfdiskScript(f.desc);
    await execa('sfdisk', ['--wipe', 'always', '--wipe-partitions', 'always', img], { input: script });
    const t = await sfdiskDump(img);
    assert.equal(t.label, 'dos');
    assert.deepEqual(t.partitions.map((p) => [p.node.slice(img.length), p.type, !!p.bootable]), [['1', '83', true], ['2', '5', false], ['5', '82', false], ['6', '83', false]]);
    assert.equal(t.partitions[0]!.size, 300 * 2048);
    assert.equal(t.partitions[2]!.size, 500 * 2048);
    assert.deepEqual(expectedPartitions(f.desc), [1, 2, 5, 6]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the sfdisk script of a GPT desc with an ESP, and of a GPT extlinux boot disk (LegacyBIOSBootable)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-sfdisk-'));
  try {
    const img = join(dir, 'disk.img');
    await execa('truncate', ['-s', '2G', img]);
    const desc = parseDesc('label gpt\nesp 512\nlinux fill ext4 /\n');
    await execa('sfdisk', [img], { input: renderSfdiskScript(desc) });
    let t = await sfdiskDump(img);
    assert.equal(t.label, 'gpt');
    assert.deepEqual(t.partitions.map((p) => p.type), [GPT.esp, GPT.linux]);
    assert.equal(t.partitions[0]!.size, 512 * 2048);
    const ext = withBootFlag(desc, targetsFor(0, img, desc, diskPlan('', [])), 'bios', 'extlinux', true);
    await execa('sfdisk', ['--wipe', 'always', img], { input: renderSfdiskScript(ext.desc) });
    t = await sfdiskDump(img);
    assert.match(t.partitions[1]!.attrs ?? '', /LegacyBIOSBootable/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mountedFrom: the disk and its partitions in /proc/mounts, not another disk with the same prefix', () => {
  const mounts = 'rootfs / rootfs rw 0 0\n/dev/vda1 /stage2/target ext4 rw 0 0\n/dev/vdb1 /mnt ext4 rw 0 0\n/dev/vda /x ext4 rw 0 0\n/dev/nvme0n1p2 /y xfs rw 0 0\n/dev/vda10 /z ext4 rw 0 0\n';
  assert.deepEqual(mountedFrom(mounts, 'vda'), ['/dev/vda1 on /stage2/target', '/dev/vda on /x', '/dev/vda10 on /z']);
  assert.deepEqual(mountedFrom(mounts, 'nvme0n1'), ['/dev/nvme0n1p2 on /y']);
  assert.deepEqual(mountedFrom(mounts, 'sda'), []);
});
