// The appliance's record of an image's initramfs: read from a real squashfs (mksquashfs,
// unsquashfs -cat), with /boot as its own file system or inside the root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { holderOf, initramfsFacts } from '../../src/images/initramfs-facts.js';

function put(root: string, rel: string, body: string | Buffer): void {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), body);
}

function initrd(files: Record<string, string>): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'kb-irfs-'));
  try {
    for (const [rel, body] of Object.entries(files)) put(dir, rel, body);
    const list = execFileSync('find', ['.', '-mindepth', '1'], { cwd: dir, encoding: 'utf8' }).split('\n').filter(Boolean).sort().join('\n') + '\n';
    const cpio = execFileSync('cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0'], { cwd: dir, input: list });
    return execFileSync('zstd', ['-q', '-c'], { input: cpio });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('holderOf: the file system with the longest mount point above the path', () => {
  const fss = [{ mount: '/', squashfs: 'r' }, { mount: '/boot', squashfs: 'b' }, { mount: '/boot/efi', squashfs: 'e' }];
  assert.deepEqual(holderOf('/boot/initrd.img-1', fss), { fs: fss[1], rel: 'initrd.img-1' });
  assert.deepEqual(holderOf('/bootx/y', fss), { fs: fss[0], rel: 'bootx/y' });
  assert.equal(holderOf('/boot/x', [{ mount: '/var', squashfs: 'v' }]), undefined);
});

test('initramfsFacts: each kernel\'s initramfs read from the stored squashfs; unreadable ones are said, not recorded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kb-facts-'));
  try {
    const boot = join(dir, 'boot-tree');
    const image = initrd({ 'usr/lib/modules/6.1.0-x/kernel/drivers/block/virtio_blk.ko': 'x', 'usr/lib/modules/6.1.0-x/kernel/drivers/md/dm-mod.ko.xz': 'y', 'conf/conf.d/resume': 'RESUME=UUID=aaaa\n' });
    put(boot, 'initrd.img-6.1.0-x', image);
    put(boot, 'initramfs-6.2.0-y.img', 'neither cpio nor compressed');
    execFileSync('mksquashfs', [boot, join(dir, 'boot.sqfs'), '-quiet', '-no-progress']);
    const warnings: string[] = [];
    const facts = await initramfsFacts([{ mount: '/boot', squashfs: join(dir, 'boot.sqfs') }], ['6.1.0-x', '6.2.0-y', '6.3.0-none'], (l) => warnings.push(l));
    assert.deepEqual(facts, [{ path: '/boot/initrd.img-6.1.0-x', bytes: image.length, modules: ['dm_mod', 'virtio_blk'], texts: { 'conf/conf.d/resume': 'RESUME=UUID=aaaa\n' } }]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /\/boot\/initramfs-6.2.0-y.img: not recorded, nodes read it themselves/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
