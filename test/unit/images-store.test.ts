import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, mkdir, writeFile, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { execa } from 'execa';
import { ImageStore, ImageStoreError } from '../../src/images/store.js';
import { checkImageName, squashfsFileName, parseManifest, ManifestError } from '../../src/images/manifest.js';

const work = await mkdtemp(join(tmpdir(), 'kaboot-store-'));
after(() => rm(work, { recursive: true, force: true }));

async function tinyTar(): Promise<Buffer> {
  const t = join(work, 'tree');
  await mkdir(join(t, 'etc'), { recursive: true });
  await writeFile(join(t, 'etc/fstab'), '/dev/vda1 / ext4 defaults 0 1\n');
  return Buffer.from((await execa('tar', ['--create', '--format=posix', '--numeric-owner', '-C', t, '.'], { encoding: 'buffer' })).stdout);
}

test('image names: no path escapes, nothing hidden, bounded length', () => {
  for (const ok of ['golden', 'debian-12.5', 'a', 'node_01', 'A'.repeat(64)]) assert.equal(checkImageName(ok), undefined, ok);
  for (const bad of ['', '.', '..', '../x', 'a/b', '.hidden', '-x', 'a b', 'é', 'A'.repeat(65), 'a\0b', '/abs']) assert.ok(checkImageName(bad), JSON.stringify(bad));
  assert.equal(squashfsFileName(0, '/'), 'fs/1-root.sqfs');
  assert.equal(squashfsFileName(1, '/boot/efi'), 'fs/2-boot_efi.sqfs');
  assert.equal(squashfsFileName(2, '/boot_efi'), 'fs/3-boot_efi.sqfs');
});

test('begin, add, commit: the image appears whole, once', async () => {
  const store = await ImageStore.open(join(work, 'images'));
  await assert.rejects(store.begin('../escape'), (e: unknown) => e instanceof ImageStoreError && e.code === 'bad-name');
  const s = await store.begin('one');
  assert.deepEqual(await store.list(), [], 'nothing visible while staging');
  const rec = await s.addFilesystem({ tar: Readable.from([await tinyTar()]) }, { mount: '/', fstype: 'ext4', uuid: 'abcd-1234' });
  await assert.rejects(s.addFilesystem({ tar: Readable.from([await tinyTar()]) }, { mount: '/' }), /already has \//);
  await assert.rejects(s.addFilesystem({ tar: Readable.from([Buffer.alloc(0)]) }, { mount: 'relative' }), /absolute path/);
  await assert.rejects(s.commit({ source: { kind: 'local', paths: [] }, expect: { '/': '0'.repeat(64) } }), /sha256/);
  const m = await s.commit({ source: { kind: 'local', paths: ['/=/x'] }, expect: { '/': rec.tar_sha256 } });
  assert.equal(m.fstab, '/dev/vda1 / ext4 defaults 0 1\n');
  assert.equal(m.filesystems[0]!.uuid, 'abcd-1234');
  assert.deepEqual((await store.list()).map((i) => i.name), ['one']);
  assert.deepEqual(await readdir(join(store.root, 'one')), ['fs', 'manifest.json']);
  await assert.rejects(store.begin('one'), (e: unknown) => e instanceof ImageStoreError && e.code === 'exists');
  assert.throws(() => store.fileOf('one', m, '../../etc/passwd'), /no file/);
  assert.equal(store.fileOf('one', m, 'fs/1-root.sqfs'), join(store.root, 'one', 'fs/1-root.sqfs'));
  assert.equal(await store.remove('one'), true);
  assert.equal(await store.remove('one'), false);
  assert.deepEqual(await store.list(), []);
});

test('a stream that is not tar leaves nothing behind', async () => {
  const store = await ImageStore.open(join(work, 'images2'));
  const s = await store.begin('junk');
  await assert.rejects(s.addFilesystem({ tar: Readable.from([Buffer.alloc(5000, 0x41)]) }, { mount: '/' }), /not a valid tar|tar2sqfs/);
  assert.deepEqual(await readdir(join(s.dir, 'fs')), []);
  await s.abort();
  assert.equal(existsSync(s.dir), false);
});

test('open removes staging folders of dead processes, keeps those of live ones, empties the trash', async () => {
  const images = join(work, 'images3');
  const store = await ImageStore.open(images);
  const dead = join(store.root, '.staging', 'gone.999999999.0123456789ab');
  const live = join(store.root, '.staging', `busy.${process.ppid}.0123456789ab`);
  const junk = join(store.root, '.staging', 'no-pid-here');
  for (const d of [dead, live, junk]) await mkdir(join(d, 'fs'), { recursive: true });
  await mkdir(join(store.root, '.trash', 'old.1.aa'), { recursive: true });
  await ImageStore.open(images);
  assert.equal(existsSync(dead), false);
  assert.equal(existsSync(junk), false);
  assert.equal(existsSync(live), true);
  assert.deepEqual(await readdir(join(store.root, '.trash')), []);
});

test('a broken manifest is listed as broken, not thrown', async () => {
  const store = await ImageStore.open(join(work, 'images4'));
  await mkdir(join(store.root, 'bad'));
  await writeFile(join(store.root, 'bad', 'manifest.json'), '{"format": 1, "name": "bad"}');
  const [only] = await store.list();
  assert.equal(only?.name, 'bad');
  assert.match(only?.error ?? '', /image bad: /);
  assert.throws(() => parseManifest('nope', 'x'), ManifestError);
});

test('boot code: a side file per golden drive, in the manifest with its sha256, read back checked', async () => {
  const { createHash } = await import('node:crypto');
  const { readFile: rf, writeFile: wf } = await import('node:fs/promises');
  const store = await ImageStore.open(join(work, 'images-mbr'));
  const code = Buffer.alloc(446);
  for (let i = 0; i < code.length; i++) code[i] = (i * 7 + 3) & 0xff;
  const s = await store.begin('mbr');
  await s.addFilesystem({ tar: Readable.from([await tinyTar()]) }, { mount: '/' });
  const m = await s.commit({ source: { kind: 'local', paths: [] }, bootCode: [{ drive: 'sda', source: '/dev/sda', bytes: code }] });
  assert.deepEqual(m.boot_code, [{ drive: 'sda', source: '/dev/sda', file: 'mbr/sda.bin', sha256: createHash('sha256').update(code).digest('hex') }]);
  assert.deepEqual(parseManifest(await rf(join(store.root, 'mbr', 'manifest.json'), 'utf8'), 'x').boot_code, m.boot_code);
  assert.deepEqual(await rf(join(store.root, 'mbr', 'mbr/sda.bin')), code);
  assert.deepEqual(await store.bootCode(m, 'sda'), code);
  assert.equal(store.fileOf('mbr', m, 'mbr/sda.bin'), join(store.root, 'mbr', 'mbr/sda.bin'));
  await assert.rejects(store.bootCode(m, 'sdb'), /no boot code of drive sdb/);
  await wf(join(store.root, 'mbr', 'mbr/sda.bin'), Buffer.alloc(446, 1));
  await assert.rejects(store.bootCode(m, 'sda'), /does not have the sha256/);

  const bad = await store.begin('mbr-bad');
  await bad.addFilesystem({ tar: Readable.from([await tinyTar()]) }, { mount: '/' });
  await assert.rejects(bad.commit({ source: { kind: 'local', paths: [] }, bootCode: [{ drive: 'sda', source: 'x', bytes: Buffer.alloc(512) }] }), /must be 446 bytes, got 512/);
  await assert.rejects(bad.commit({ source: { kind: 'local', paths: [] }, bootCode: [{ drive: '../x', source: 'x', bytes: code }] }), /not a drive name/);
  await bad.abort();
  assert.deepEqual((await store.list()).map((i) => i.name), ['mbr']);
});

test('boot code read from a disk image: the first 446 bytes, never the partition table', async () => {
  const { readBootCode, bootCodeFromFile, driveNameOf } = await import('../../src/images/boot-code.js');
  const { writeFile: wf } = await import('node:fs/promises');
  const disk = join(work, 'disk.img');
  const sector = Buffer.alloc(1024, 0x11);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  await wf(disk, sector);
  const b = await readBootCode(disk);
  assert.equal(b.drive, 'first', 'a file name is no drive name');
  assert.deepEqual(b.bytes, Buffer.alloc(446, 0x11));
  assert.deepEqual(b.warnings, []);
  assert.equal(driveNameOf('/dev/nvme0n1'), 'nvme0n1');
  const raw = join(work, 'mbr512.bin');
  await wf(raw, Buffer.concat([Buffer.alloc(446, 0), Buffer.alloc(66, 0x22)]));
  const f = await bootCodeFromFile(raw);
  assert.deepEqual(f.bytes, Buffer.alloc(446, 0));
  assert.match(f.warnings.join(), /all zero/);
  await wf(raw, Buffer.alloc(100));
  await assert.rejects(bootCodeFromFile(raw), /expected 446 bytes/);
});
