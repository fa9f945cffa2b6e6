// The lab's golden system: test/lab/golden.sh builds it (or reuses its cache), its
// root holds what a clone must reproduce (xattrs, ACLs, a capability, a sparse file,
// a device node, fstab by UUID), its manifest is stable, and it boots under qemu TCG
// (SeaBIOS, virtio disk, GRUB written by hand) to the marker its unit prints on ttyS0,
// then powers off. This proves the golden and the VM helper that the deploy test uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NetLab } from '../helpers/netns.js';
import { buildGolden, goldenMarker, startVm, withDiskPartition, diskPartitions } from '../helpers/lab-vm.js';
import { buildManifest, compareManifests, formatDifferences } from '../helpers/fs-manifest.js';

const markerTimeoutMs = 400_000;

test('lab golden: built or reused, its root has what a clone must keep, its manifest is stable, and it boots to its marker under BIOS', { timeout: 30 * 60_000 }, async (t) => {
  const built = await buildGolden();
  const { disk, info } = built;
  t.diagnostic(`golden ${info.key}: ${disk} (${built.cached ? 'cached' : 'built'}), kernel ${info.kernel}, ${info.partition.used_bytes} bytes used`);

  // A second run with the same inputs reuses the build.
  const again = await buildGolden();
  assert.equal(again.disk, disk);
  assert.equal(again.cached, true, `second golden.sh run rebuilt:\n${again.log}`);

  const { label, partitions } = await diskPartitions(disk);
  assert.equal(label, 'dos');
  assert.equal(partitions.length, 1);
  assert.equal(partitions[0]!.start, 2048);
  assert.equal(partitions[0]!.bootable, true);

  const [first, second] = await withDiskPartition(disk, 1, async (root) => {
    const fstab = await readFile(join(root, 'etc/fstab'), 'utf8');
    assert.match(fstab, new RegExp(`^UUID=${info.partition.uuid} / ext4 `, 'm'));
    assert.equal((await readFile(join(root, 'etc/hostname'), 'utf8')).trim(), 'golden');
    const grubCfg = await readFile(join(root, 'boot/grub/grub.cfg'), 'utf8');
    assert.match(grubCfg, new RegExp(`root=UUID=${info.partition.uuid} ro console=ttyS0`));
    return [await buildManifest(root), await buildManifest(root)] as const;
  });
  const diffs = compareManifests(first, second);
  assert.deepEqual(diffs, [], `the golden's manifest changed between two walks:\n${formatDifferences(diffs)}`);
  t.diagnostic(`manifest: ${first.size} entries`);

  const at = (p: string) => { const e = first.get(p); assert.ok(e, `golden has no ${p}`); return e; };
  const g = '/srv/kaboot-golden';
  assert.equal(at(`${g}/xattr.txt`).xattrs['user.kaboot.note'], '0x676f6c64656e');
  assert.equal(at(`${g}/xattr.txt`).xattrs['user.kaboot.binary'], '0x00ff10fe7f');
  assert.ok(at(`${g}/acl-dir`).xattrs['system.posix_acl_access']);
  assert.ok(at(`${g}/acl-dir`).xattrs['system.posix_acl_default']);
  assert.ok(at(`${g}/acl-dir/inherited.txt`).xattrs['system.posix_acl_access']);
  assert.ok(at(`${g}/acl-file.txt`).xattrs['system.posix_acl_access']);
  assert.ok(at(`${g}/cap-true`).xattrs['security.capability'], 'file capability');
  assert.equal(at(`${g}/sparse.bin`).size, 64 << 20);
  assert.equal(at(`${g}/sparse.bin`).sparse, true);
  assert.equal(at(`${g}/hardlink-a`).nlink, 2);
  assert.equal(at(`${g}/fifo`).type, 'fifo');
  assert.deepEqual(at(`${g}/null-copy`).rdev, { major: 1, minor: 3 });
  assert.equal(at(`${g}/setuid.sh`).mode, 0o4755);
  assert.equal(at(`${g}/numeric-owner.txt`).uid, 1234);
  assert.equal(at(`${g}/numeric-owner.txt`).gid, 2345);
  assert.equal(at(`${g}/symlink-to-xattr`).target, '../kaboot-golden/xattr.txt');
  assert.equal(at(`/boot/vmlinuz-${info.kernel}`).type, 'file');

  // Boot it: SeaBIOS, no NIC, the disk only; snapshot=on keeps the cached image unchanged.
  const lab = await NetLab.create('gold');
  t.after(() => lab.destroy());
  const started = Date.now();
  const vm = await startVm(lab, lab.switchNs, { name: 'golden', firmware: 'bios', disk, diskSnapshot: true, memMiB: 1024 });
  t.after(() => vm.kill());
  const m = await vm.waitFor(goldenMarker, markerTimeoutMs);
  t.diagnostic(`marker after ${((Date.now() - started) / 1000).toFixed(1)} s: ${m[0]}`);
  const phase = (re: RegExp) => { const ms = vm.seenAt(re); return ms === undefined ? '-' : (ms / 1000).toFixed(1); };
  t.diagnostic(`console, s from qemu start: grub=${phase(/Booting `Debian/)} kernel=${phase(/Linux version/)} systemd=${phase(/systemd\[1\]: /)} marker=${phase(goldenMarker)}`);
  assert.equal(m[1], 'golden');
  assert.equal(m[2], info.machine_id);
  assert.equal(m[3], info.partition.uuid);
  assert.match(vm.console(), /Booting `Debian GNU\/Linux \(kaboot golden\)'/, 'GRUB ran its menu entry');
  // Then it powers off, and qemu exits by itself.
  const exit = await Promise.race([vm.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 180_000).unref())]);
  assert.notEqual(exit, 'timeout', `the golden did not power off after its marker:\n${vm.console().slice(-3000)}`);
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.match(vm.console(), /reboot: Power down/);
});
