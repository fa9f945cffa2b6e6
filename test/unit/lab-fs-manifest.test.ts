// The lab's file-tree manifest (test/helpers/fs-manifest.ts) on real temporary trees:
// it sees xattrs, ACLs, sparse files, hard links, symlinks and FIFOs, a copy made with
// tar --xattrs --acls --sparse compares equal, and each kind of change shows up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, mkdirSync, symlinkSync, linkSync, chmodSync, rmSync, unlinkSync, truncateSync, openSync, writeSync, closeSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import {
  buildManifest, compareManifests, entriesWithXattr, formatDifferences, parseGetfattrDump, pathMatcher, splitDev,
} from '../helpers/fs-manifest.js';

async function makeTree(root: string): Promise<void> {
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc/fstab'), 'UUID=x / ext4 defaults 0 1\n');
  writeFileSync(join(root, 'xattr.txt'), 'with xattrs\n');
  await execa('setfattr', ['-n', 'user.kaboot.note', '-v', 'golden', join(root, 'xattr.txt')]);
  await execa('setfattr', ['-n', 'user.kaboot.binary', '-v', '0x00ff10', join(root, 'xattr.txt')]);
  mkdirSync(join(root, 'acl-dir'));
  await execa('setfacl', ['-m', 'u:1234:rwx,g:2345:r-x', join(root, 'acl-dir')]);
  await execa('setfacl', ['-d', '-m', 'u:1234:rwx', join(root, 'acl-dir')]);
  writeFileSync(join(root, 'acl-dir/inherited.txt'), 'inherits\n');
  writeFileSync(join(root, 'acl-file.txt'), 'acl\n');
  await execa('setfacl', ['-m', 'u:4321:r--', join(root, 'acl-file.txt')]);
  // 8 MiB with two islands of data
  const sparse = join(root, 'sparse.bin');
  writeFileSync(sparse, '');
  truncateSync(sparse, 8 << 20);
  const fd = openSync(sparse, 'r+');
  writeSync(fd, 'start', 0);
  writeSync(fd, 'end', (8 << 20) - 3);
  closeSync(fd);
  writeFileSync(join(root, 'hard-a'), 'one inode\n');
  linkSync(join(root, 'hard-a'), join(root, 'hard-b'));
  symlinkSync('xattr.txt', join(root, 'link'));
  await execa('mkfifo', [join(root, 'fifo')]);
  writeFileSync(join(root, 'setuid.sh'), '#!/bin/sh\n');
  chmodSync(join(root, 'setuid.sh'), 0o4755);
  writeFileSync(join(root, 'name with\nnewline and \\ backslash'), 'odd name\n');
  mkdirSync(join(root, 'var/log'), { recursive: true });
  writeFileSync(join(root, 'var/log/syslog'), 'log\n');
  // whole-second mtimes everywhere, so a copy's sub-second rounding is not a difference
  for (const p of ['etc/fstab', 'xattr.txt', 'acl-file.txt', 'sparse.bin', 'hard-a', 'setuid.sh', 'var/log/syslog']) utimesSync(join(root, p), 1700000000, 1700000000);
}

async function tarCopy(from: string, to: string): Promise<void> {
  mkdirSync(to, { recursive: true });
  await execa('bash', ['-c', 'set -o pipefail; tar -C "$1" --xattrs --xattrs-include="*" --acls --sparse --numeric-owner -cf - . | tar -C "$2" --xattrs --xattrs-include="*" --acls --numeric-owner -xpf -', '_', from, to]);
}

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'kaboot-manifest-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('manifest: sees types, modes, hard links, sparse files, symlinks, xattrs and ACLs', async (t) => {
  const root = join(tempDir(t), 'a');
  mkdirSync(root);
  await makeTree(root);
  const m = await buildManifest(root);
  const get = (p: string) => { const e = m.get(p); assert.ok(e, `no entry ${p}`); return e; };
  assert.equal(get('/').type, 'dir');
  assert.equal(get('/etc/fstab').type, 'file');
  assert.equal(get('/etc/fstab').size, 27);
  assert.match(get('/etc/fstab').sha256 ?? '', /^[0-9a-f]{64}$/);
  assert.equal(get('/xattr.txt').xattrs['user.kaboot.note'], '0x676f6c64656e');
  assert.equal(get('/xattr.txt').xattrs['user.kaboot.binary'], '0x00ff10');
  assert.ok(get('/acl-dir').xattrs['system.posix_acl_access'], 'access ACL of acl-dir');
  assert.ok(get('/acl-dir').xattrs['system.posix_acl_default'], 'default ACL of acl-dir');
  assert.ok(get('/acl-dir/inherited.txt').xattrs['system.posix_acl_access'], 'inherited ACL');
  assert.ok(get('/acl-file.txt').xattrs['system.posix_acl_access']);
  assert.equal(get('/sparse.bin').size, 8 << 20);
  assert.equal(get('/sparse.bin').sparse, true);
  assert.equal(get('/hard-a').nlink, 2);
  assert.equal(get('/hard-a').sha256, get('/hard-b').sha256);
  assert.equal(get('/link').type, 'symlink');
  assert.equal(get('/link').target, 'xattr.txt');
  assert.equal(get('/fifo').type, 'fifo');
  assert.equal(get('/setuid.sh').mode, 0o4755);
  assert.equal(get('/acl-dir').nlink, undefined, 'no link count for directories');
  assert.ok(get('/name with\nnewline and \\ backslash').sha256);
  assert.equal(entriesWithXattr(m, 'system.posix_acl_').length, 3);
  assert.equal(entriesWithXattr(m, 'user.').length, 1);
});

test('manifest: a tree walked twice, and a tar copy with --xattrs --acls --sparse, have no differences', async (t) => {
  const dir = tempDir(t);
  const a = join(dir, 'a');
  mkdirSync(a);
  await makeTree(a);
  const first = await buildManifest(a);
  const again = await buildManifest(a);
  assert.deepEqual(compareManifests(first, again), []);
  const b = join(dir, 'b');
  await tarCopy(a, b);
  const copy = await buildManifest(b);
  // the copy's top folder is new: only its mtime may differ
  const diffs = compareManifests(first, copy).filter((d) => !(d.path === '/' && d.field === 'mtime'));
  assert.deepEqual(diffs, [], formatDifferences(diffs));
  assert.equal(copy.get('/sparse.bin')?.sparse, true, 'tar --sparse keeps the holes');
});

test('manifest: every kind of change is a difference, and ignore rules leave out what they name', async (t) => {
  const dir = tempDir(t);
  const a = join(dir, 'a');
  mkdirSync(a);
  await makeTree(a);
  const b = join(dir, 'b');
  await tarCopy(a, b);
  const before = await buildManifest(a);
  writeFileSync(join(b, 'etc/fstab'), 'UUID=y / ext4 defaults 0 1\n');
  chmodSync(join(b, 'setuid.sh'), 0o755);
  await execa('setfattr', ['-n', 'user.kaboot.note', '-v', 'clone', join(b, 'xattr.txt')]);
  await execa('setfacl', ['-b', join(b, 'acl-file.txt')]);
  unlinkSync(join(b, 'hard-b'));
  writeFileSync(join(b, 'extra.txt'), 'new\n');
  writeFileSync(join(b, 'var/log/syslog'), 'more log\n');
  unlinkSync(join(b, 'link'));
  symlinkSync('elsewhere', join(b, 'link'));
  const after = await buildManifest(b);
  const diffs = compareManifests(before, after, { ignoreFields: ['mtime'] });
  const has = (path: string, kind: string, field?: string) =>
    assert.ok(diffs.some((d) => d.path === path && d.kind === kind && d.field === field), `expected ${kind} ${path} ${field ?? ''} in:\n${formatDifferences(diffs)}`);
  has('/etc/fstab', 'changed', 'sha256');
  has('/setuid.sh', 'changed', 'mode');
  has('/xattr.txt', 'changed', 'xattr:user.kaboot.note');
  has('/acl-file.txt', 'changed', 'xattr:system.posix_acl_access');
  has('/hard-b', 'missing');
  has('/hard-a', 'changed', 'nlink');
  has('/extra.txt', 'extra');
  has('/var/log/syslog', 'changed', 'size');
  has('/link', 'changed', 'target');
  assert.ok(!diffs.some((d) => d.field === 'mtime'), 'mtime ignored');

  const filtered = compareManifests(before, after, {
    ignoreFields: ['mtime', 'nlink'],
    ignore: ['/etc/fstab', '/var/log', '/hard-b', '/extra.*', '/link'],
    ignoreXattrs: ['user.*', 'system.posix_acl_*'],
  });
  assert.deepEqual(filtered.map((d) => `${d.path} ${d.field}`), ['/setuid.sh mode']);
});

test('manifest: ignore patterns', () => {
  const m = pathMatcher(['/var/log', '/var/lib/systemd/*', '**/*.pyc', '/etc/ssh/ssh_host_*_key']);
  assert.equal(m('/var/log'), true);
  assert.equal(m('/var/log/apt/history.log'), true);
  assert.equal(m('/var/logx'), false);
  assert.equal(m('/var/lib/systemd/random-seed'), true);
  assert.equal(m('/var/lib/systemd'), false);
  assert.equal(m('/usr/lib/python3/x/__pycache__/a.pyc'), true);
  assert.equal(m('/etc/ssh/ssh_host_rsa_key'), true);
  assert.equal(m('/etc/ssh/ssh_host_rsa_key.pub'), false);
});

test('manifest: getfattr dump parsing, with escaped names', () => {
  const dump = [
    '# file: /t/a\\012b\\\\c',
    'user.x=0x01',
    'security.capability=0x0100000200200000000000000000000000000000',
    '',
    '# file: /t/caf\\303\\251',
    'user.empty=',
    '',
  ].join('\n');
  const parsed = parseGetfattrDump(dump);
  assert.deepEqual(parsed.get('/t/a\nb\\c'), { 'user.x': '0x01', 'security.capability': '0x0100000200200000000000000000000000000000' });
  assert.deepEqual(parsed.get('/t/café'), { 'user.empty': '' });
});

test('manifest: device numbers split as glibc does', () => {
  assert.deepEqual(splitDev(0x0103), { major: 1, minor: 3 });
  // major 259, minor 0x12345: the high bits of both live above bit 20
  const major = 259, minor = 0x12345;
  const dev = (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12);
  assert.deepEqual(splitDev(dev), { major, minor });
});
