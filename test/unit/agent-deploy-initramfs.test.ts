// Whether prepare rebuilds a clone's initramfs: the cpio reader against archives made by
// GNU cpio, initramfs images as the kernel takes them (an early uncompressed archive, then
// a gzip, zstd or xz one), and the pure decision.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CpioReader } from '../../src/initramfs/cpio.js';
import { compressionOf, decompressor, readInitramfs, type InitramfsContents } from '../../src/initramfs/read.js';
import { rebuildReasons, initramfsRebuildReasons, cloneKernels, type CloneKernel } from '../../src/agent/deploy/initramfs.js';

const tools = decompressor((f) => (f === 'zstd' ? ['zstd', '-dc'] : f === 'xz' ? ['xz', '-dc'] : undefined));

function put(root: string, rel: string, body: string | Buffer): void {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), body);
}

/** A newc archive of `files` made by GNU cpio, as mkinitramfs makes them. */
function cpioOf(files: Record<string, string | Buffer>): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'kb-cpio-'));
  try {
    for (const [rel, body] of Object.entries(files)) put(dir, rel, body);
    const list = execFileSync('find', ['.', '-mindepth', '1'], { cwd: dir, encoding: 'utf8' }).split('\n').filter(Boolean).sort().join('\n') + '\n';
    return execFileSync('cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0'], { cwd: dir, input: list, maxBuffer: 1 << 28 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const compress = (argv: string[], data: Buffer) => execFileSync(argv[0]!, argv.slice(1), { input: data, maxBuffer: 1 << 28 });

const MAIN = {
  'conf/initramfs.conf': 'MODULES=most\n',
  'conf/conf.d/zz-resume-auto': 'RESUME=UUID=1111-2222\n',
  'usr/lib/modules/6.1.0-x/kernel/drivers/block/virtio_blk.ko': Buffer.alloc(3000, 1),
  'usr/lib/modules/6.1.0-x/kernel/drivers/md/dm-mod.ko.xz': Buffer.alloc(1001, 2),
  'usr/lib/modules/6.1.0-x/kernel/fs/xfs/xfs.ko.zst': Buffer.alloc(77, 3),
  'scripts/init-top/udev': '#!/bin/sh\n',
};
const EARLY = { 'kernel/x86/microcode/GenuineIntel.bin': Buffer.alloc(4099, 9) };

test('cpio reader: entries, kept data and padding of an archive GNU cpio made, read whole or a byte at a time', () => {
  const archive = cpioOf(MAIN);
  for (const chunk of [archive.length, 1, 7, 113]) {
    const r = new CpioReader((name) => name.startsWith('conf/'));
    for (let i = 0; i < archive.length; i += chunk) r.push(archive.subarray(i, i + chunk));
    assert.equal(r.complete, true, `chunk ${chunk}: ${r.fault}`);
    assert.equal(r.archives, 1);
    const names = r.entries.map((e) => e.name);
    for (const f of Object.keys(MAIN)) assert.ok(names.includes(f), `${f} in ${names.join(' ')}`);
    assert.equal(r.entries.find((e) => e.name === 'conf/conf.d/zz-resume-auto')?.data?.toString(), 'RESUME=UUID=1111-2222\n');
    assert.equal(r.entries.find((e) => e.name.endsWith('virtio_blk.ko'))?.data, undefined);
  }
});

test('cpio reader: two archives back to back with zero padding; a cut archive is not complete; other data after one is found', () => {
  const two = Buffer.concat([cpioOf(EARLY), Buffer.alloc(512), cpioOf(MAIN)]);
  const r = new CpioReader();
  r.push(two);
  assert.equal(r.complete, true, r.fault);
  assert.equal(r.archives, 2);
  const cut = new CpioReader();
  cut.push(two.subarray(0, two.length - 300));
  assert.equal(cut.complete, false);
  const early = cpioOf(EARLY);
  const then = new CpioReader();
  then.push(Buffer.concat([early, Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3])]));
  assert.equal(then.otherDataAt, early.length);
  assert.equal(then.complete, true);
});

test('cpio reader: garbage and 20,000 mutated archives never throw; a fault is named', () => {
  const base = cpioOf({ 'conf/a': 'x\n', 'lib/modules/v/e1000.ko': 'y' });
  const bad = new CpioReader();
  bad.push(Buffer.from('070701zzzzzzzz' + 'x'.repeat(200)));
  assert.match(bad.fault ?? '', /bad cpio header/);
  const junk = new CpioReader();
  junk.push(Buffer.from('hello world, this is not an archive at all, not even close to one'));
  assert.match(junk.fault ?? '', /no cpio header/);
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8);
  for (let i = 0; i < 20_000; i++) {
    const m = Buffer.from(base);
    for (let k = 0; k < 1 + (rnd() % 4); k++) m[rnd() % m.length] = rnd() & 0xff;
    const r = new CpioReader(() => true);
    r.push(m.subarray(0, rnd() % (m.length + 1)));
    assert.ok(r.entries.length >= 0);
  }
});

test('compressionOf: the magic numbers the kernel unpacks', () => {
  assert.equal(compressionOf(Buffer.from([0x1f, 0x8b, 8])), 'gzip');
  assert.equal(compressionOf(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0])), 'zstd');
  assert.equal(compressionOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])), 'xz');
  assert.equal(compressionOf(Buffer.from([0x02, 0x21, 0x4c, 0x18])), 'lz4');
  assert.equal(compressionOf(Buffer.from('070701')), undefined);
});

test('readInitramfs: an early microcode archive, then the main archive in gzip, zstd or xz, as real tools make them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kb-initramfs-'));
  try {
    const early = cpioOf(EARLY);
    const main = cpioOf(MAIN);
    for (const [name, argv] of [['gzip', ['gzip', '-9c']], ['zstd', ['zstd', '-q', '-c']], ['xz', ['xz', '-c', '--check=crc32']]] as const) {
      const file = join(dir, `initrd-${name}`);
      writeFileSync(file, Buffer.concat([early, compress([...argv], main)]));
      const c = await readInitramfs(file, tools);
      assert.ok(!('unreadable' in c), `${name}: ${'unreadable' in c ? c.unreadable : ''}`);
      const got = c as InitramfsContents;
      assert.deepEqual([...got.modules].sort(), ['dm_mod', 'virtio_blk', 'xfs'], name);
      assert.equal(got.texts.get('conf/conf.d/zz-resume-auto'), 'RESUME=UUID=1111-2222\n');
      assert.ok(!got.texts.has('scripts/init-top/udev'));
    }
    // no early archive: the image is the compressed archive alone
    writeFileSync(join(dir, 'plain-gz'), compress(['gzip', '-c'], main));
    assert.ok(!('unreadable' in (await readInitramfs(join(dir, 'plain-gz'), tools))));
    // an uncompressed image
    writeFileSync(join(dir, 'plain'), main);
    assert.ok(!('unreadable' in (await readInitramfs(join(dir, 'plain'), tools))));
    // a damaged compressed stream, a cut one, no decompressor, no file: unreadable, with a reason
    const gz = compress(['gzip', '-c'], main);
    const damaged = Buffer.from(gz);
    damaged.fill(0x55, 40, 200);
    writeFileSync(join(dir, 'damaged'), Buffer.concat([early, damaged]));
    assert.match((await readInitramfs(join(dir, 'damaged'), tools) as { unreadable: string }).unreadable, /gzip|cpio|ends early/);
    writeFileSync(join(dir, 'cut'), Buffer.concat([early, compress(['xz', '-c'], main.subarray(0, main.length - 600))]));
    assert.match((await readInitramfs(join(dir, 'cut'), tools) as { unreadable: string }).unreadable, /ends early/);
    writeFileSync(join(dir, 'lz4'), Buffer.concat([early, Buffer.from([0x02, 0x21, 0x4c, 0x18, 0, 0])]));
    assert.match((await readInitramfs(join(dir, 'lz4'), tools) as { unreadable: string }).unreadable, /no lz4 decompressor/);
    assert.match((await readInitramfs(join(dir, 'absent'), tools) as { unreadable: string }).unreadable, /absent/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const kernel = (over: Partial<CloneKernel> = {}): CloneKernel => ({
  version: '6.1.0-x',
  loadable: new Set(['virtio_blk', 'virtio_net', 'nvme', 'dm_mod', 'xfs']),
  builtin: new Set(['ext4']),
  initramfs: 'boot/initrd.img-6.1.0-x',
  ...over,
});
const contents = (modules: string[], texts: Record<string, string> = {}): InitramfsContents => ({ modules: new Set(modules), texts: new Map(Object.entries(texts)) });

test('rebuildReasons: kept when every needed module is inside, built in or unknown to the kernel, and no renamed file system is named', () => {
  const k = kernel();
  assert.deepEqual(rebuildReasons({ kernels: [{ kernel: k, contents: contents(['virtio_blk', 'virtio_net']) }], wanted: ['virtio_blk', 'virtio-net', 'ext4', 'e1000'], renamed: ['UUID=AAAA-BBBB'] }), []);
  const missing = rebuildReasons({ kernels: [{ kernel: k, contents: contents(['virtio_blk']) }], wanted: ['virtio_blk', 'nvme'], renamed: [] });
  assert.equal(missing.length, 1);
  assert.match(missing[0]!, /lacks nvme/);
  const named = rebuildReasons({ kernels: [{ kernel: k, contents: contents(['nvme'], { 'conf/conf.d/zz-resume-auto': 'RESUME=UUID=aaaa-bbbb\n' }) }], wanted: ['nvme'], renamed: ['UUID=AAAA-BBBB', '/dev/sda2'] });
  assert.match(named.join('\n'), /zz-resume-auto names UUID=AAAA-BBBB/);
  assert.match(rebuildReasons({ kernels: [{ kernel: k, contents: contents([], { 'etc/crypttab': 'root /dev/sda2 none luks\n' }) }], wanted: [], renamed: ['/dev/sda2'] }).join(), /crypttab names \/dev\/sda2/);
  assert.match(rebuildReasons({ kernels: [{ kernel: kernel({ initramfs: undefined }), contents: undefined }], wanted: [], renamed: [] }).join(), /no initramfs/);
  assert.match(rebuildReasons({ kernels: [{ kernel: k, contents: { unreadable: 'x: no lz4 decompressor here' } }], wanted: [], renamed: [] }).join(), /no lz4/);
  assert.match(rebuildReasons({ kernels: [], wanted: [], renamed: [] }).join(), /no kernel/);
});

test('initramfsRebuildReasons on a clone tree: its kernels, their module lists and initramfs images', async () => {
  const root = mkdtempSync(join(tmpdir(), 'kb-clone-'));
  try {
    put(root, 'lib/modules/6.1.0-x/modules.dep', 'kernel/drivers/block/virtio_blk.ko:\nkernel/drivers/nvme/host/nvme.ko.xz: kernel/drivers/nvme/host/nvme-core.ko.xz\nkernel/drivers/md/dm-mod.ko:\nkernel/fs/xfs/xfs.ko.zst:\n');
    put(root, 'lib/modules/6.1.0-x/modules.builtin', 'kernel/fs/ext4/ext4.ko\n');
    put(root, 'lib/modules/5.10.0-old/README', 'no modules.dep: not a kernel to serve\n');
    put(root, 'boot/initrd.img-6.1.0-x', Buffer.concat([cpioOf(EARLY), compress(['zstd', '-q', '-c'], cpioOf(MAIN))]));
    const ks = cloneKernels(root);
    assert.deepEqual(ks.map((k) => [k.version, k.initramfs]), [['6.1.0-x', 'boot/initrd.img-6.1.0-x']]);
    assert.ok(ks[0]!.loadable.has('nvme') && ks[0]!.loadable.has('dm_mod') && ks[0]!.builtin.has('ext4'));
    assert.deepEqual(await initramfsRebuildReasons(root, ks, ['virtio_blk', 'ext4', 'e1000'], ['UUID=9999-0000'], tools), []);
    assert.match((await initramfsRebuildReasons(root, ks, ['virtio_blk', 'nvme'], [], tools)).join(), /lacks nvme/);
    assert.match((await initramfsRebuildReasons(root, ks, [], ['UUID=1111-2222'], tools)).join(), /zz-resume-auto names UUID=1111-2222/);

    // the image's record of the same file stands for reading it (no decompressor needed); another size does not
    const size = statSync(join(root, 'boot/initrd.img-6.1.0-x')).size;
    const rec = { path: '/boot/initrd.img-6.1.0-x', bytes: size, modules: ['nvme', 'virtio_blk'], texts: { 'conf/x': 'RESUME=/dev/sda9\n' } };
    const notes: string[] = [];
    const none = decompressor(() => undefined);
    assert.deepEqual(await initramfsRebuildReasons(root, ks, ['virtio_blk', 'nvme'], [], none, [rec], (l) => notes.push(l)), []);
    assert.match(notes.join(), /known from the image's record \(2 modules\)/);
    assert.match((await initramfsRebuildReasons(root, ks, [], ['/dev/sda9'], none, [rec])).join(), /conf\/x names \/dev\/sda9/);
    notes.length = 0;
    assert.match((await initramfsRebuildReasons(root, ks, ['nvme'], [], tools, [{ ...rec, bytes: size + 1 }], (l) => notes.push(l))).join(), /lacks nvme/);
    assert.match(notes.join(), /read \(the image's record says \d+ bytes, the clone's file has \d+\)/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
