// Capture a tree with every kind of file a golden has (modes, owners, a symlink, a hard
// link, a sparse file, xattrs, ACLs, odd names, a fifo, a device) locally and by push
// over HTTP, unpack the squashfs, restore the ACLs, and compare a manifest of the tree
// with the original. And a kill -9 during a capture leaves no image behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink, mkdtemp, rm, writeFile, mkdir, symlink, link, chown, chmod, truncate, open, stat } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import Fastify, { type FastifyInstance } from 'fastify';
import { ImageStore } from '../../src/images/store.js';
import { captureLocal, tarExtractArgs } from '../../src/images/capture.js';
import { pushImage } from '../../src/images/push.js';
import { imageRoutes } from '../../src/images/http.js';
import type { ImageManifest } from '../../src/images/manifest.js';
import { repoRoot, kabootBin, startKaboot } from '../helpers/kaboot-process.js';
import { NetLab } from '../helpers/netns.js';

interface TreeManifest {
  entries: Record<string, string>;
  hardlinks: string[][];
  xattrs: string;
  acls: string;
  /** regular files whose allocated size is below their length */
  sparse: string[];
}

async function treeManifest(root: string, opts: { mtimes?: boolean } = {}): Promise<TreeManifest> {
  const entries: Record<string, string> = {};
  const inodes = new Map<number, string[]>();
  const sparse: string[] = [];
  const walk = async (rel: string) => {
    const abs = join(root, rel);
    const st = await lstat(abs);
    const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'chardev' : st.isBlockDevice() ? 'blockdev' : 'other';
    const parts = [kind, (st.mode & 0o7777).toString(8), `${st.uid}:${st.gid}`];
    if (st.isFile()) {
      parts.push(String(st.size), createHash('sha256').update(await readFile(abs)).digest('hex'));
      if (st.nlink > 1) inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), rel]);
      if (st.blocks * 512 < st.size) sparse.push(rel);
    }
    if (st.isSymbolicLink()) parts.push('->', await readlink(abs));
    if (st.isCharacterDevice() || st.isBlockDevice()) parts.push(String(st.rdev));
    if (opts.mtimes && !st.isDirectory() && !st.isSymbolicLink()) parts.push(String(Math.floor(st.mtimeMs / 1000)));
    entries[rel || '.'] = parts.join(' ');
    if (st.isDirectory()) for (const name of (await readdir(abs)).sort()) await walk(rel ? `${rel}/${name}` : name);
  };
  await walk('');
  const xattrs = await execa('getfattr', ['-R', '-P', '-d', '-h', '-e', 'hex', '-m', '^(user|trusted|security)\\.', '.'], { cwd: root, reject: false });
  const acls = await execa('getfacl', ['-R', '-P', '-n', '-s', '.'], { cwd: root, reject: false });
  const blocks = (text: string) => text.split('\n\n').map((b) => b.trim()).filter(Boolean).sort().join('\n\n');
  return {
    entries,
    hardlinks: [...inodes.values()].map((l) => l.sort()).sort(),
    xattrs: blocks(xattrs.stdout),
    acls: blocks(acls.stdout),
    sparse: sparse.sort(),
  };
}

const work = await mkdtemp(join(tmpdir(), 'kaboot-images-'));
const golden = join(work, 'golden');

async function buildGolden(dir: string): Promise<void> {
  await mkdir(join(dir, 'etc'), { recursive: true });
  await writeFile(join(dir, 'etc/fstab'), 'UUID=1111 / ext4 errors=remount-ro 0 1\n');
  // the golden's own ids, unlike this machine's: its ACL names must be resolved with these
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\n');
  await writeFile(join(dir, 'etc/group'), 'root:x:0:\ndaemon:x:1:\n');
  await writeFile(join(dir, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o640 });
  await chmod(join(dir, 'etc/shadow'), 0o640);
  await chown(join(dir, 'etc/shadow'), 0, 42);
  await mkdir(join(dir, 'home/user'), { recursive: true });
  await writeFile(join(dir, 'home/user/notes.txt'), 'owned by 1234\n');
  await chown(join(dir, 'home/user'), 1234, 1234);
  await chown(join(dir, 'home/user/notes.txt'), 1234, 2345);
  await chmod(join(dir, 'home/user'), 0o700);
  await mkdir(join(dir, 'tmp'));
  await chmod(join(dir, 'tmp'), 0o1777);
  await mkdir(join(dir, 'usr/bin'), { recursive: true });
  await writeFile(join(dir, 'usr/bin/su'), Buffer.alloc(3000, 7));
  await chmod(join(dir, 'usr/bin/su'), 0o4755);
  await writeFile(join(dir, 'usr/bin/ping'), Buffer.alloc(5000, 9));
  await chmod(join(dir, 'usr/bin/ping'), 0o755);
  await symlink('../usr/bin/su', join(dir, 'etc/su-link'));
  await symlink('/nonexistent/target', join(dir, 'dangling'));
  await link(join(dir, 'usr/bin/ping'), join(dir, 'usr/bin/ping-hardlink'));
  await writeFile(join(dir, 'empty'), '');
  await writeFile(join(dir, 'name with spaces and é'), 'odd name\n');
  // sparse: 64 MiB with two small islands of data
  const fh = await open(join(dir, 'sparse.img'), 'w');
  await fh.write(Buffer.from('start'), 0, 5, 0);
  await fh.write(Buffer.from('middle'), 0, 6, 32 * 1024 * 1024);
  await fh.close();
  await truncate(join(dir, 'sparse.img'), 64 * 1024 * 1024);
  const random = createHash('sha512');
  const big = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 64) random.copy().update(String(i)).digest().copy(big, i);
  await writeFile(join(dir, 'usr/bin/binary'), big);
  await execa('mkfifo', [join(dir, 'fifo')]);
  await execa('mknod', [join(dir, 'null'), 'c', '1', '3']);
  // xattrs: user., trusted. and a file capability (security.capability), as ping has
  await execa('setfattr', ['-n', 'user.x', '-v', 'hello', join(dir, 'home/user/notes.txt')]);
  await execa('setfattr', ['-n', 'trusted.t', '-v', '0x00ff10', join(dir, 'etc/fstab')]);
  await execa('setcap', ['cap_net_raw+ep', join(dir, 'usr/bin/ping')]).catch(() => execa('setfattr', ['-n', 'security.capability', '-v', '0x0100000200200000000000000000000000000000', join(dir, 'usr/bin/ping')]));
  // ACLs: a named user and group on a file, a default ACL on a directory, one on an odd name
  await execa('setfacl', ['-m', 'u:1234:rw,g:2345:r,u:daemon:r', join(dir, 'etc/shadow')]);
  await execa('setfacl', ['-d', '-m', 'u:1234:rwx', join(dir, 'home/user')]);
  await execa('setfacl', ['-m', 'u:55:r', join(dir, 'name with spaces and é')]);
}

async function unpack(store: ImageStore, m: ImageManifest, into: string): Promise<void> {
  const fs = m.filesystems[0]!;
  await execa('unsquashfs', ['-q', '-n', '-d', into, join(store.root, m.name, fs.squashfs)]);
  if (fs.acl_file) await execa('setfacl', [`--restore=${join(store.root, m.name, fs.acl_file)}`], { cwd: into });
}

/** What a node does with the deploy stream: zstd -d | tar -x, checking the tar's sha256. */
async function unpackStream(store: ImageStore, m: ImageManifest, into: string): Promise<void> {
  const fs = m.filesystems[0]!;
  await mkdir(into);
  const zst = await readFile(join(store.root, m.name, fs.stream));
  assert.equal(zst.length, fs.stream_bytes);
  assert.equal(createHash('sha256').update(zst).digest('hex'), fs.stream_sha256);
  const tar = (await execa('zstd', ['-d', '-c'], { input: zst, encoding: 'buffer' })).stdout;
  assert.equal(createHash('sha256').update(tar).digest('hex'), fs.tar_sha256, 'the node sees the golden\'s tar, byte for byte');
  await execa('tar', tarExtractArgs(into), { input: tar });
}

let expected: Awaited<ReturnType<typeof treeManifest>>;
let app: FastifyInstance;
let url: string;
const token = 'images-test-token-0123456789';
const serverImages = join(work, 'appliance-images');

before(async () => {
  await buildGolden(golden);
  expected = await treeManifest(golden, { mtimes: true });
  app = Fastify();
  await app.register(imageRoutes, { prefix: '/api', imagesDir: serverImages, token });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
});

after(async () => {
  await app?.close();
  await rm(work, { recursive: true, force: true });
});

function compare(got: TreeManifest, want: TreeManifest) {
  assert.deepEqual(got.entries, want.entries);
  assert.deepEqual(got.hardlinks, want.hardlinks);
  assert.equal(got.xattrs, want.xattrs);
  assert.equal(got.acls, want.acls);
  assert.deepEqual(got.sparse, want.sparse);
}

test('the golden tree has what the comparison must see', () => {
  assert.match(expected.xattrs, /user\.x=0x68656c6c6f/);
  assert.match(expected.xattrs, /security\.capability=/);
  assert.match(expected.xattrs, /trusted\.t=0x00ff10/);
  assert.match(expected.acls, /user:1234:rw-/);
  assert.match(expected.acls, /default:user:1234:rwx/);
  assert.deepEqual(expected.sparse, ['sparse.img']);
  assert.deepEqual(expected.hardlinks, [['usr/bin/ping', 'usr/bin/ping-hardlink']]);
});

test('local capture: the unpacked squashfs plus the ACL file equal the golden', async () => {
  const store = await ImageStore.open(join(work, 'local-images'));
  const m = await captureLocal(store, 'golden-1', { from: [golden] });
  assert.equal(m.filesystems.length, 1);
  const fs = m.filesystems[0]!;
  assert.equal(fs.mount, '/');
  assert.equal(m.fstab, 'UUID=1111 / ext4 errors=remount-ro 0 1\n');
  assert.equal(fs.acl_entries, 3);
  const aclText = await readFile(join(store.root, 'golden-1', fs.acl_file!), 'utf8');
  assert.match(aclText, /^user:1:r--$/m, 'names in ACLs become the golden\'s numeric ids');
  assert.match(aclText, /^# file: name\\040with\\040spaces\\040and\\040\\303\\251$/m);
  assert.deepEqual(m.warnings, []);
  assert.equal(fs.files, Object.keys(expected.entries).length);
  // only used data in the stream: the 64 MiB sparse file costs a few blocks
  assert.ok(fs.tar_bytes < 4 * 1024 * 1024, `tar stream of ${fs.tar_bytes} bytes`);
  const sqfs = join(store.root, 'golden-1', fs.squashfs);
  assert.equal(createHash('sha256').update(await readFile(sqfs)).digest('hex'), fs.squashfs_sha256);
  // the stream's digest is the digest of the same tar made again
  const again = await execa('tar', ['--create', '--format=posix', '--one-file-system', '--sparse', '--xattrs', '--xattrs-include=*', '--xattrs-exclude=system.posix_acl_*', '--acls', '--numeric-owner', '--no-wildcards-match-slash', '-C', golden, '.'], { encoding: 'buffer' });
  assert.equal(again.stdout.length, fs.tar_bytes);
  const out = join(work, 'unpacked-local');
  await unpack(store, m, out);
  compare(await treeManifest(out, { mtimes: true }), expected);
  const outStream = join(work, 'unpacked-local-stream');
  await unpackStream(store, m, outStream);
  compare(await treeManifest(outStream, { mtimes: true }), expected);
  assert.deepEqual((await store.list()).map((i) => i.name), ['golden-1']);
  assert.equal((await store.get('golden-1'))?.filesystems[0]?.tar_sha256, fs.tar_sha256);
});

test('push over HTTP (zstd): the appliance stores the same tree; the wire carries only used data, compressed', async () => {
  const r = await pushImage({ url, token, name: 'pushed', from: [golden] });
  const fs = r.manifest.filesystems[0]!;
  assert.equal(r.manifest.source.kind, 'push');
  assert.ok(r.wireBytes['/']! < fs.tar_bytes, `wire ${r.wireBytes['/']} vs tar ${fs.tar_bytes}`);
  const store = await ImageStore.open(serverImages);
  const out = join(work, 'unpacked-push');
  await unpack(store, r.manifest, out);
  compare(await treeManifest(out, { mtimes: true }), expected);
  assert.equal(fs.stream_bytes, r.wireBytes['/'], 'the stored deploy stream is the received zstd, verbatim');
  const outStream = join(work, 'unpacked-push-stream');
  await unpackStream(store, r.manifest, outStream);
  compare(await treeManifest(outStream, { mtimes: true }), expected);
  const list = await (await fetch(`${url}/api/images`)).json() as { images: { name: string }[] };
  assert.deepEqual(list.images.map((i) => i.name), ['pushed']);
  const shown = await (await fetch(`${url}/api/images/pushed`)).json() as ImageManifest;
  assert.equal(shown.filesystems[0]!.tar_sha256, fs.tar_sha256);
});

test('push of a root and a second file system, mounted by MOUNT=DIR', async () => {
  const esp = join(work, 'esp');
  await mkdir(join(esp, 'EFI/debian'), { recursive: true });
  await writeFile(join(esp, 'EFI/debian/grubx64.efi'), 'not really grub');
  await mkdir(join(golden, 'boot/grub/x86_64-efi'), { recursive: true });
  await mkdir(join(golden, 'lib/modules/6.1.0-test-amd64'), { recursive: true });
  try {
    const r = await pushImage({ url, token, name: 'two-fs', from: [golden, `/boot/efi=${esp}`], desc: 'label gpt\nesp 512\nlinux fill ext4 /\n' });
    assert.deepEqual(r.manifest.filesystems.map((f) => [f.mount, f.squashfs]), [['/', 'fs/1-root.sqfs'], ['/boot/efi', 'fs/2-boot_efi.sqfs']]);
    assert.equal(r.manifest.bootloader, 'grub-efi');
    assert.deepEqual(r.manifest.kernels, ['6.1.0-test-amd64']);
    assert.equal(r.manifest.desc, 'label gpt\nesp 512\nlinux fill ext4 /\n');
  } finally {
    await rm(join(golden, 'boot'), { recursive: true });
    await rm(join(golden, 'lib'), { recursive: true });
  }
});

test('the API refuses without the token, bad names, path escapes, a second capture of a name, and a stream that is not zstd', async () => {
  const post = (path: string, body?: string, headers: Record<string, string> = {}) => fetch(`${url}/api/images/${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, ...headers }, body });
  assert.equal((await fetch(`${url}/api/images/x/captures`, { method: 'POST' })).status, 401);
  assert.equal((await post('..%2Fetc/captures')).status, 400);
  assert.equal((await post('.hidden/captures')).status, 400);
  assert.equal((await post('pushed/captures')).status, 409, 'an existing image');
  const begin = await post('junk/captures');
  assert.equal(begin.status, 201);
  const { capture } = await begin.json() as { capture: string };
  assert.equal((await post('junk/captures')).status, 409, 'a capture in progress');
  const bad = await post(`junk/fs/?capture=${capture}`, 'this is not zstd', { 'content-type': 'application/zstd' });
  assert.equal(bad.status, 422);
  assert.match((await bad.json() as { message: string }).message, /zstd|tar/);
  const escape = await post(`junk/fs/../../etc?capture=${capture}`, 'x', { 'content-type': 'application/x-tar' });
  assert.ok(escape.status === 400 || escape.status === 404, `status ${escape.status}`);
  const notTar = await post(`junk/fs/?capture=${capture}`, 'x'.repeat(2000), { 'content-type': 'application/x-tar' });
  assert.equal(notTar.status, 422);
  const commit = await post(`junk/commit?capture=${capture}`, JSON.stringify({ source: { paths: [] }, expect: { '/': '0'.repeat(64) } }), { 'content-type': 'application/json' });
  assert.equal(commit.status, 400);
  assert.equal((await fetch(`${url}/api/images/junk/captures/${capture}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })).status, 204);
  assert.equal((await fetch(`${url}/api/images/junk`)).status, 404);
  const store = await ImageStore.open(serverImages);
  assert.deepEqual(readdirSync(join(store.root, '.staging')), []);
});

test('kill -9 during a capture leaves no image; the next start removes the staging folder', async () => {
  const big = join(work, 'big');
  await mkdir(big);
  await execa('sh', ['-c', `head -c 400M /dev/urandom > ${big}/random.bin`]);
  const images = join(work, 'kill-images');
  const child = execa('node', ['--import', 'tsx', '-e', "const {main}=await import('./src/cli/main.ts'); process.exitCode=await main(process.argv.slice(1))", '--', 'image', 'capture', 'big', '--from', big, '--images', images], { cwd: repoRoot, detached: true, reject: false });
  const staging = join(images, 'store/.staging');
  const deadline = Date.now() + 60_000;
  let seen = '';
  while (!seen) {
    assert.ok(Date.now() < deadline, 'the capture never started writing');
    assert.equal(child.exitCode, null, `the capture ended before the kill: ${child.exitCode}`);
    for (const d of existsSync(staging) ? readdirSync(staging) : []) {
      const f = join(staging, d, 'fs/1-root.sqfs');
      if (existsSync(f) && (await stat(f)).size > 0) seen = d;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  process.kill(-child.pid!, 'SIGKILL'); // the capture, its tar and its tar2sqfs
  await child;
  const store = await ImageStore.open(images);
  assert.deepEqual(await store.list(), []);
  assert.equal(await store.get('big'), undefined);
  assert.equal(existsSync(join(images, 'store/big')), false);
  assert.deepEqual(readdirSync(staging), [], 'the staging folder of the dead capture is removed on open');
});

test('kaboot image list, show, rm and capture on the command line', async () => {
  const images = join(work, 'cli-images');
  const kaboot = (...args: string[]) => execa('node', ['--import', 'tsx', '-e', "const {main}=await import('./src/cli/main.ts'); process.exitCode=await main(process.argv.slice(1))", '--', ...args], { cwd: repoRoot, reject: false });
  const cap = await kaboot('image', 'capture', 'cli-one', '--from', golden, '--images', images, '--bootloader', 'extlinux');
  assert.equal(cap.exitCode, 0, cap.stderr);
  assert.match(cap.stderr, /image cli-one stored: \/ .*; bootloader extlinux/);
  const list = await kaboot('image', 'list', '--images', images);
  assert.match(list.stdout, /^cli-one\t\S+\t[\d.]+ [kMG]B\t\/\(unknown, [\d.]+ [kMG]B used\)$/m);
  const show = await kaboot('image', 'show', 'cli-one', '--images', images);
  assert.equal((JSON.parse(show.stdout) as ImageManifest).bootloader, 'extlinux');
  assert.equal((await kaboot('image', 'capture', 'cli-one', '--from', golden, '--images', images)).exitCode, 1, 'the name is taken');
  const bad = await kaboot('image', 'show', '../etc', '--images', images);
  assert.equal(bad.exitCode, 2);
  assert.match(bad.stderr, /image name "..\/etc": expected/);
  const excl = await kaboot('image', 'capture', 'cli-excl', '--from', golden, '--images', images, '--exclude', '/home/user/', '--json');
  assert.equal(excl.exitCode, 0, excl.stderr);
  const exclFs = (JSON.parse(excl.stdout) as ImageManifest).filesystems[0]!;
  const listing = String((await execa('unsquashfs', ['-lln', '-d', '', join(images, 'store/cli-excl', exclFs.squashfs)])).stdout);
  assert.match(listing, /^drwx------ 1234\/1234 .* \/home\/user$/m, 'the excluded directory itself stays');
  assert.doesNotMatch(listing, /notes\.txt/);
  assert.equal((await kaboot('image', 'rm', 'cli-excl', '--images', images)).exitCode, 0);
  assert.equal((await kaboot('image', 'rm', 'cli-one', '--images', images)).exitCode, 0);
  assert.equal((await kaboot('image', 'rm', 'cli-one', '--images', images)).exitCode, 1);
  assert.match((await kaboot('image', 'list', '--images', images)).stdout, /^no images in /);
});

test('a golden in its own namespace pushes itself to a real kaboot serve; kill -9 of the appliance mid-push leaves no image', async () => {
  const lab = await NetLab.create('img');
  try {
    const srv = await lab.host('srv', { cidr: '10.83.0.1/24' });
    const gold = await lab.host('gold', { cidr: '10.83.0.2/24' });
    const kb = await startKaboot(lab, srv.ns, { dhcp: { mode: 'off' }, tftp: { enabled: false }, http: { port: 8080 } });
    const push = (name: string, from: string) => lab.exec(gold.ns, ['node', kabootBin, 'image', 'push', name, '--to', 'http://10.83.0.1:8080', '--token', kb.token(), '--from', from], { reject: false });
    const r = await push('from-golden', golden);
    assert.equal(r.exitCode, 0, String(r.stderr));
    assert.match(String(r.stderr), /image from-golden stored on http:\/\/10\.83\.0\.1:8080: [\d.]+ [kMG]B on the wire/);
    const listed = await lab.exec(srv.ns, ['node', kabootBin, 'image', 'list', '--config', kb.configFile]);
    assert.match(String(listed.stdout), /^from-golden\t/m);
    const store = await ImageStore.open(kb.imagesDir);
    const m = (await store.get('from-golden'))!;
    assert.equal(m.source.kind, 'push');
    const out = join(work, 'unpacked-serve');
    await unpack(store, m, out);
    compare(await treeManifest(out, { mtimes: true }), expected);
    const wrongToken = await lab.exec(gold.ns, ['node', kabootBin, 'image', 'push', 'nope', '--to', 'http://10.83.0.1:8080', '--token', 'wrong-token-wrong-token', '--from', golden], { reject: false });
    assert.equal(wrongToken.exitCode, 1);
    assert.match(String(wrongToken.stderr), /refused the capture \(401\)/);

    // kill -9 of the appliance while it receives: after a restart, no image and no staging folder
    const big = join(work, 'big-serve');
    await mkdir(big);
    await execa('sh', ['-c', `head -c 300M /dev/urandom > ${big}/random.bin`]);
    const pushing = push('killed', big);
    const staging = join(kb.imagesDir, 'store/.staging');
    const deadline = Date.now() + 60_000;
    for (let seen = false; !seen; await new Promise((res) => setTimeout(res, 50))) {
      assert.ok(Date.now() < deadline, 'the push never reached tar2sqfs');
      for (const d of readdirSync(staging)) {
        const f = join(staging, d, 'fs/1-root.sqfs');
        if (existsSync(f) && (await stat(f)).size > 0) seen = true;
      }
    }
    await kb.kill9();
    const failed = await pushing;
    assert.equal(failed.exitCode, 1, 'the golden reports the failed push');
    const again = await startKaboot(lab, srv.ns, { dhcp: { mode: 'off' }, tftp: { enabled: false }, http: { port: 8080 } }, { dir: kb.dir });
    try {
      const list = await (await lab.exec(gold.ns, ['curl', '-sS', 'http://10.83.0.1:8080/api/images'])).stdout;
      assert.deepEqual((JSON.parse(String(list)) as { images: { name: string }[] }).images.map((i) => i.name), ['from-golden']);
      assert.deepEqual(readdirSync(staging), [], 'the dead appliance\'s staging folder is removed at start');
    } finally {
      await again.stop();
    }
  } finally {
    await lab.destroy();
  }
});
