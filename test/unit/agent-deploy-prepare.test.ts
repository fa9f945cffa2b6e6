// prepare's edits, run on temp directory trees shaped like a clone: fstab and the files that
// name file systems, the golden's identity removed, the host name, the node's drivers for the
// initramfs (from a sysfs tree made of the same links the kernel makes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, existsSync, symlinkSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { rewriteFstab, replaceIds } from '../../src/agent/deploy/fstab.js';
import {
  rewriteIds, resetIdentity, rewriteHosts, setHostname, deviceModules, initramfsTool, initramfsCommand, mergeModulesFile, writeInitramfsModules, fsModules,
} from '../../src/agent/deploy/prepare.js';
import { moduleNamesIn } from '../../src/initramfs/read.js';
import { cloneKernels, knownModules } from '../../src/agent/deploy/initramfs.js';

const tmp = (tag: string) => mkdtempSync(join(tmpdir(), `agent-${tag}-`));
const put = (root: string, rel: string, text: string) => {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), text);
};

const ROOT = '11111111-2222-3333-4444-555555555555';
const SWAP = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
const NEW_ROOT = '0c3f2a1e-0000-4000-8000-000000000001';
const NEW_BOOT = '0c3f2a1e-0000-4000-8000-000000000002';
const NEW_SWAP = '0c3f2a1e-0000-4000-8000-000000000003';

const golden = `# /etc/fstab: static file system information.
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
UUID=${ROOT} /               ext4    errors=remount-ro 0       1
/dev/sda1       /boot           ext2    defaults        0       2
UUID=${SWAP} none            swap    sw              0       0
LABEL=data      /srv/data       xfs     defaults        0       2
/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto 0       0
tmpfs           /tmp            tmpfs   defaults        0       0
server:/export  /mnt/nfs        nfs     defaults        0       0
UUID=deadbeef   /mnt/usb        ext4    defaults,nofail 0       2
/dev/sdb1       /backup         ext4    noauto          0       0
`;

test('rewriteFstab: planned mounts and swap by their new UUIDs, other disks commented out (unless nofail or noauto), the rest kept', () => {
  const r = rewriteFstab(golden, [
    { mount: '/', fstype: 'ext4', uuid: NEW_ROOT },
    { mount: '/boot', fstype: 'ext4', uuid: NEW_BOOT },
    { fstype: 'swap', uuid: NEW_SWAP },
  ]);
  const lines = r.text.split('\n');
  assert.ok(lines.includes(`UUID=${NEW_ROOT}\t/\text4\terrors=remount-ro\t0\t1`), r.text);
  assert.ok(lines.includes(`UUID=${NEW_BOOT}\t/boot\text4\tdefaults\t0\t2`), 'type changed ext2 → ext4: default options');
  assert.ok(lines.includes(`UUID=${NEW_SWAP}\tnone\tswap\tsw\t0\t0`));
  assert.ok(lines.includes('# kaboot: not on this node: LABEL=data      /srv/data       xfs     defaults        0       2'));
  for (const kept of ['/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto 0       0', '/dev/sdb1       /backup         ext4    noauto          0       0', 'tmpfs           /tmp            tmpfs   defaults        0       0', 'server:/export  /mnt/nfs        nfs     defaults        0       0', 'UUID=deadbeef   /mnt/usb        ext4    defaults,nofail 0       2']) {
    assert.ok(lines.includes(kept), `kept: ${kept}`);
  }
  assert.ok(lines[0]!.startsWith('# /etc/fstab'), 'comments kept');
  assert.ok(!r.text.includes(ROOT) && !r.text.includes(SWAP));
  assert.deepEqual([...r.renamed], [[`UUID=${ROOT}`, `UUID=${NEW_ROOT}`], ['/dev/sda1', `UUID=${NEW_BOOT}`], [`UUID=${SWAP}`, `UUID=${NEW_SWAP}`]]);
});

test('rewriteFstab: an ESP for a UEFI node and any other planned mount the golden lacks get a line; an empty fstab is written whole', () => {
  const r = rewriteFstab(`UUID=${ROOT} / ext4 errors=remount-ro 0 1\n`, [
    { mount: '/', fstype: 'ext4', uuid: NEW_ROOT },
    { mount: '/boot/efi', fstype: 'vfat', uuid: 'ABCD-0123', esp: true },
  ]);
  assert.equal(r.text, `UUID=${NEW_ROOT}\t/\text4\terrors=remount-ro\t0\t1\nUUID=ABCD-0123\t/boot/efi\tvfat\tumask=0077,nofail\t0\t2\n`);
  const e = rewriteFstab('', [{ mount: '/', fstype: 'xfs', uuid: NEW_ROOT }, { fstype: 'swap', uuid: NEW_SWAP }]);
  assert.equal(e.text, `UUID=${NEW_ROOT}\t/\txfs\tdefaults\t0\t0\nUUID=${NEW_SWAP}\tnone\tswap\tsw\t0\t0\n`);
  const trailing = rewriteFstab(`/dev/vda1 /var/ ext4 defaults\n`, [{ mount: '/var', fstype: 'ext4', uuid: NEW_ROOT }]);
  assert.equal(trailing.text, `UUID=${NEW_ROOT}\t/var/\text4\tdefaults\t0\t0\n`, 'a trailing slash is the same mount point; missing fields filled');
});

test('replaceIds: whole identifiers only, UUID= and bare UUIDs', () => {
  const renamed = new Map([[`UUID=${ROOT}`, `UUID=${NEW_ROOT}`], ['/dev/sda1', `UUID=${NEW_BOOT}`], [`UUID=${SWAP}`, `UUID=${NEW_SWAP}`]]);
  const x = replaceIds(`RESUME=UUID=${SWAP}\nroot=UUID=${ROOT} ro\nresume=${SWAP}\nkeep /dev/sda10 and /dev/sda1\n`, renamed);
  assert.equal(x.text, `RESUME=UUID=${NEW_SWAP}\nroot=UUID=${NEW_ROOT} ro\nresume=${NEW_SWAP}\nkeep /dev/sda10 and UUID=${NEW_BOOT}\n`);
  assert.equal(x.count, 4);
});

test('rewriteIds on a clone tree: fstab, the resume file, extlinux.conf and GRUB defaults follow; a symlink is not written through', () => {
  const root = tmp('ids');
  try {
    put(root, 'etc/fstab', `UUID=${ROOT} / ext4 errors=remount-ro 0 1\nUUID=${SWAP} none swap sw 0 0\n`);
    put(root, 'etc/initramfs-tools/conf.d/resume', `RESUME=UUID=${SWAP}\n`);
    put(root, 'boot/extlinux/extlinux.conf', `LABEL linux\n  APPEND root=UUID=${ROOT} ro\n`);
    put(root, 'etc/default/grub', 'GRUB_CMDLINE_LINUX=""\n');
    put(root, 'outside', `UUID=${ROOT}\n`);
    mkdirSync(join(root, 'etc/kernel'), { recursive: true });
    symlinkSync('../../outside', join(root, 'etc/kernel/cmdline'));
    const { changes, renamed } = rewriteIds(root, [{ mount: '/', fstype: 'ext4', uuid: NEW_ROOT }, { fstype: 'swap', uuid: NEW_SWAP }]);
    assert.equal(renamed.get(`UUID=${SWAP}`), `UUID=${NEW_SWAP}`);
    assert.equal(readFileSync(join(root, 'etc/fstab'), 'utf8'), `UUID=${NEW_ROOT}\t/\text4\terrors=remount-ro\t0\t1\nUUID=${NEW_SWAP}\tnone\tswap\tsw\t0\t0\n`);
    assert.equal(readFileSync(join(root, 'etc/initramfs-tools/conf.d/resume'), 'utf8'), `RESUME=UUID=${NEW_SWAP}\n`);
    assert.match(readFileSync(join(root, 'boot/extlinux/extlinux.conf'), 'utf8'), new RegExp(`root=UUID=${NEW_ROOT} ro`));
    assert.equal(readFileSync(join(root, 'etc/default/grub'), 'utf8'), 'GRUB_CMDLINE_LINUX=""\n');
    assert.equal(readFileSync(join(root, 'outside'), 'utf8'), `UUID=${ROOT}\n`);
    assert.ok(changes.some((c) => c.startsWith('etc/initramfs-tools/conf.d/resume: 1')), changes.join('\n'));
    const none = tmp('ids-none');
    try {
      // fstab named the root by device: the image's record of its UUID still maps the old UUID
      put(none, 'boot/extlinux/extlinux.conf', `APPEND root=UUID=${ROOT} ro\n`);
      const bySource = rewriteIds(none, [{ mount: '/', fstype: 'ext4', uuid: NEW_ROOT, sourceUuid: ROOT }]);
      assert.equal(bySource.renamed.get(`UUID=${ROOT}`), `UUID=${NEW_ROOT}`);
      assert.equal(readFileSync(join(none, 'boot/extlinux/extlinux.conf'), 'utf8'), `APPEND root=UUID=${NEW_ROOT} ro\n`);
      rmSync(join(none, 'etc/fstab'));
      rewriteIds(none, [{ mount: '/', fstype: 'ext4', uuid: NEW_ROOT }]);
      assert.equal(readFileSync(join(none, 'etc/fstab'), 'utf8'), `UUID=${NEW_ROOT}\t/\text4\terrors=remount-ro\t0\t1\n`);
    } finally {
      rmSync(none, { recursive: true, force: true });
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('resetIdentity: machine-id emptied (kept as a file), dbus id, persistent net rules and DHCP leases removed, the rest kept', () => {
  const root = tmp('identity');
  try {
    put(root, 'etc/machine-id', '0123456789abcdef0123456789abcdef\n');
    mkdirSync(join(root, 'var/lib/dbus'), { recursive: true });
    symlinkSync('/etc/machine-id', join(root, 'var/lib/dbus/machine-id'));
    put(root, 'etc/udev/rules.d/70-persistent-net.rules', 'SUBSYSTEM=="net", ATTR{address}=="52:54:00:00:00:01", NAME="eth0"\n');
    put(root, 'etc/udev/rules.d/99-local.rules', '# mine\n');
    put(root, 'var/lib/dhcp/dhclient.eth0.leases', 'lease {}\n');
    put(root, 'var/lib/dhcp/dhclient.leases', 'lease {}\n');
    put(root, 'var/lib/NetworkManager/internal-1234-eth0.lease', 'ADDRESS=10.0.0.5\n');
    put(root, 'var/lib/NetworkManager/NetworkManager.state', '[main]\n');
    put(root, 'var/lib/dhcpcd/eth0.lease', 'x');
    const changes = resetIdentity(root);
    assert.equal(readFileSync(join(root, 'etc/machine-id'), 'utf8'), '');
    for (const gone of ['var/lib/dbus/machine-id', 'etc/udev/rules.d/70-persistent-net.rules', 'var/lib/dhcp/dhclient.eth0.leases', 'var/lib/dhcp/dhclient.leases', 'var/lib/NetworkManager/internal-1234-eth0.lease', 'var/lib/dhcpcd/eth0.lease']) {
      assert.throws(() => lstatSync(join(root, gone)), `${gone} removed`);
    }
    for (const kept of ['etc/udev/rules.d/99-local.rules', 'var/lib/NetworkManager/NetworkManager.state', 'var/lib/dhcp']) assert.ok(existsSync(join(root, kept)), `${kept} kept`);
    assert.equal(changes.length, 7, changes.join('\n'));
    assert.deepEqual(resetIdentity(root), [], 'a second run has nothing to do');
    writeFileSync(join(root, 'etc/machine-id'), 'uninitialized\n');
    assert.deepEqual(resetIdentity(root), [], 'a golden made for first-boot semantics keeps them');
    assert.equal(readFileSync(join(root, 'etc/machine-id'), 'utf8'), 'uninitialized\n');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('rewriteHosts and setHostname: the golden\'s name becomes the node\'s; a 127.0.1.1 line when none names it', () => {
  const hosts = '127.0.0.1\tlocalhost\n127.0.1.1\tgolden.lab golden\n\n# The following lines are desirable for IPv6 capable hosts\n::1     localhost ip6-localhost ip6-loopback\n';
  assert.equal(rewriteHosts(hosts, 'golden', 'node7.lab'), '127.0.0.1\tlocalhost\n127.0.1.1\tnode7.lab node7\n\n# The following lines are desirable for IPv6 capable hosts\n::1     localhost ip6-localhost ip6-loopback\n');
  assert.equal(rewriteHosts('127.0.0.1 localhost\n10.0.0.9 golden extra\n', 'golden', 'node7'), '127.0.0.1 localhost\n10.0.0.9\tnode7\textra\n');
  assert.equal(rewriteHosts('127.0.0.1 localhost\n', undefined, 'node7'), '127.0.0.1 localhost\n127.0.1.1\tnode7\n');
  const root = tmp('hostname');
  try {
    put(root, 'etc/hostname', 'golden\n');
    put(root, 'etc/hosts', hosts);
    assert.deepEqual(setHostname(root, 'node7'), ['hostname golden → node7']);
    assert.equal(readFileSync(join(root, 'etc/hostname'), 'utf8'), 'node7\n');
    assert.match(readFileSync(join(root, 'etc/hosts'), 'utf8'), /^127\.0\.1\.1\tnode7$/m);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/** A sysfs tree with the kernel's links: a virtio disk and NIC on PCI, an NVMe disk, a built-in driver. */
function fakeSys(sys: string): void {
  const link = (target: string, at: string) => {
    mkdirSync(dirname(join(sys, at)), { recursive: true });
    symlinkSync(target, join(sys, at));
  };
  const dir = (p: string) => mkdirSync(join(sys, p), { recursive: true });
  for (const m of ['virtio_pci', 'virtio_blk', 'virtio_net', 'nvme']) dir(`module/${m}`);
  for (const [bus, drv, mod] of [['pci', 'virtio-pci', 'virtio_pci'], ['virtio', 'virtio_blk', 'virtio_blk'], ['virtio', 'virtio_net', 'virtio_net'], ['pci', 'nvme', 'nvme'], ['pci', 'builtin-drv', '']] as const) {
    dir(`bus/${bus}/drivers/${drv}`);
    if (mod) link(`../../../../module/${mod}`, `bus/${bus}/drivers/${drv}/module`);
  }
  dir('devices/pci0000:00/0000:00:04.0/virtio1/block/vda');
  link('../../../bus/pci/drivers/virtio-pci', 'devices/pci0000:00/0000:00:04.0/driver');
  link('../../../../bus/virtio/drivers/virtio_blk', 'devices/pci0000:00/0000:00:04.0/virtio1/driver');
  dir('devices/pci0000:00/0000:00:03.0/virtio0/net/eth0');
  link('../../../bus/pci/drivers/virtio-pci', 'devices/pci0000:00/0000:00:03.0/driver');
  link('../../../../bus/virtio/drivers/virtio_net', 'devices/pci0000:00/0000:00:03.0/virtio0/driver');
  dir('devices/pci0000:00/0000:00:05.0/nvme/nvme0/nvme0n1');
  link('../../../bus/pci/drivers/nvme', 'devices/pci0000:00/0000:00:05.0/driver');
  dir('devices/pci0000:00/0000:00:06.0/net/eth1');
  link('../../../bus/pci/drivers/builtin-drv', 'devices/pci0000:00/0000:00:06.0/driver');
  link('../../devices/pci0000:00/0000:00:04.0/virtio1/block/vda', 'class/block/vda');
  link('../../../virtio1', 'devices/pci0000:00/0000:00:04.0/virtio1/block/vda/device');
  link('../../nvme0', 'devices/pci0000:00/0000:00:05.0/nvme/nvme0/nvme0n1/device');
  link('../../devices/pci0000:00/0000:00:05.0/nvme/nvme0/nvme0n1', 'class/block/nvme0n1');
  link('../../devices/pci0000:00/0000:00:03.0/virtio0/net/eth0', 'class/net/eth0');
  link('../../../virtio0', 'devices/pci0000:00/0000:00:03.0/virtio0/net/eth0/device');
  link('../../devices/pci0000:00/0000:00:06.0/net/eth1', 'class/net/eth1');
  link('../../../0000:00:06.0', 'devices/pci0000:00/0000:00:06.0/net/eth1/device');
}

test('deviceModules: the drivers of the disks and NICs and of their parent devices, built-in ones left out', () => {
  const sys = tmp('sysfs');
  try {
    fakeSys(sys);
    assert.deepEqual(deviceModules(sys, ['vda', 'nvme0n1'], ['eth0', 'eth1', 'missing0']), ['nvme', 'virtio_blk', 'virtio_net', 'virtio_pci']);
    assert.deepEqual(deviceModules(sys, [], []), []);
  } finally {
    rmSync(sys, { recursive: true, force: true });
  }
});

test('initramfs: the tool the clone has, its command, and where the node\'s modules go', () => {
  assert.equal(initramfsTool((p) => p === 'usr/sbin/update-initramfs' || p === 'usr/bin/dracut'), 'update-initramfs');
  assert.equal(initramfsTool((p) => p === 'usr/bin/dracut'), 'dracut');
  assert.equal(initramfsTool(() => false), 'none');
  assert.deepEqual(initramfsCommand('update-initramfs'), ['update-initramfs', '-u', '-k', 'all']);
  assert.deepEqual(initramfsCommand('dracut'), ['dracut', '--regenerate-all', '--force']);
  assert.equal(initramfsCommand('none'), undefined);
  assert.deepEqual(fsModules(['ext3', 'ext4', 'swap', 'vfat', 'xfs']), ['ext4', 'vfat', 'xfs']);
  const golden = '# List of modules that you want to include in your initramfs.\n# raid1\nvirtio_blk\n';
  assert.equal(mergeModulesFile(golden, ['virtio_blk', 'nvme', 'virtio-net']), `${golden}# added by kaboot for this node's storage and network\nnvme\nvirtio-net\n`);
  assert.equal(mergeModulesFile('virtio_net', ['virtio-net']), 'virtio_net');
  const root = tmp('initramfs');
  try {
    put(root, 'etc/initramfs-tools/modules', golden);
    assert.equal(writeInitramfsModules(root, 'update-initramfs', ['nvme']), 'etc/initramfs-tools/modules');
    assert.match(readFileSync(join(root, 'etc/initramfs-tools/modules'), 'utf8'), /\nnvme\n$/);
    assert.equal(writeInitramfsModules(root, 'dracut', ['nvme', 'e1000e']), 'etc/dracut.conf.d/90-kaboot.conf');
    assert.match(readFileSync(join(root, 'etc/dracut.conf.d/90-kaboot.conf'), 'utf8'), /^add_drivers\+=" nvme e1000e "$/m);
    assert.equal(writeInitramfsModules(root, 'none', ['nvme']), undefined);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the clone\'s kernels say which of the node\'s drivers they have (a cloud kernel has no e1000)', () => {
  assert.deepEqual([...moduleNamesIn('kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz\nkernel/fs/ext4/ext4.ko:\nkernel/drivers/scsi/sd_mod.ko\n')], ['virtio_net', 'ext4', 'sd_mod']);
  const root = tmp('clone-modules');
  try {
    assert.equal(knownModules(cloneKernels(root)), undefined);
    put(root, 'lib/modules/6.1.0-26-cloud-amd64/modules.dep', 'kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio.ko:\n');
    put(root, 'lib/modules/6.1.0-26-cloud-amd64/modules.builtin', 'kernel/drivers/virtio/virtio_pci.ko\nkernel/fs/ext4/ext4.ko\n');
    const known = knownModules(cloneKernels(root))!;
    assert.deepEqual(['virtio_blk', 'virtio_pci', 'ext4', 'e1000', 'virtio'].filter((m) => known.has(m)), ['virtio_blk', 'virtio_pci', 'ext4', 'virtio']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
