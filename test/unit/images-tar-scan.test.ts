// The tar header reader on streams GNU tar wrote: the same entries whatever the chunking,
// truncation and corruption found, and never an exception other than TarFormatError.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir, symlink, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { TarScanner, TarFormatError, aclBlock, quoteAclPath, type TarEntry } from '../../src/images/tar-scan.js';
import { numericAcl, parseIdFile } from '../../src/images/acl.js';

let dir: string;
let archive: Buffer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kaboot-tarscan-'));
  const t = join(dir, 'tree');
  await mkdir(join(t, 'etc'), { recursive: true });
  await writeFile(join(t, 'etc/fstab'), 'LABEL=root / ext4 defaults 0 1\n');
  await writeFile(join(t, 'big'), Buffer.alloc(70000, 1));
  await writeFile(join(t, 'sparse'), 'x');
  await truncate(join(t, 'sparse'), 10 * 1024 * 1024);
  await symlink('etc/fstab', join(t, 'link'));
  const deep = join(t, 'a'.repeat(90), 'b'.repeat(90));
  await mkdir(deep, { recursive: true });
  await writeFile(join(deep, 'c'.repeat(120)), 'long path');
  await execa('setfacl', ['-m', 'u:1234:rw', join(t, 'big')]);
  archive = Buffer.from((await execa('tar', ['--create', '--format=posix', '--sparse', '--acls', '--xattrs', '--numeric-owner', '--blocking-factor=1', '-C', t, '.'], { encoding: 'buffer' })).stdout);
});
after(() => rm(dir, { recursive: true, force: true }));

function scan(chunks: Buffer[], keep?: Set<string>): TarEntry[] {
  const out: TarEntry[] = [];
  const s = new TarScanner((e) => out.push(e), { keep });
  for (const c of chunks) s.push(c);
  s.end();
  return out;
}

function chop(buf: Buffer, seed: number): Buffer[] {
  let x = seed;
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length;) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const n = 1 + (x % 1500);
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  return out;
}

test('entries of a GNU tar posix stream: long paths, sparse real size, symlink, ACL, kept content', () => {
  const entries = scan([archive], new Set(['etc/fstab']));
  const by = new Map(entries.map((e) => [e.path, e]));
  assert.ok(by.has(''), 'the root entry');
  assert.equal(by.get('big')?.size, 70000);
  assert.match(by.get('big')?.aclAccess ?? '', /user:1234:rw-/);
  assert.equal(by.get('sparse')?.size, 10 * 1024 * 1024);
  assert.ok((by.get('sparse')?.stored ?? Infinity) < 16384, 'a hole costs no data');
  assert.equal(by.get('link')?.type, 'symlink');
  assert.equal(by.get('link')?.linkname, 'etc/fstab');
  assert.equal(by.get(`${'a'.repeat(90)}/${'b'.repeat(90)}/${'c'.repeat(120)}`)?.size, 9);
  assert.equal(by.get('etc/fstab')?.content?.toString(), 'LABEL=root / ext4 defaults 0 1\n');
  assert.equal(by.get('big')?.content, undefined);
});

test('any chunking gives the same entries', () => {
  const whole = scan([archive]);
  for (let seed = 1; seed < 40; seed++) assert.deepEqual(scan(chop(archive, seed)), whole);
  assert.deepEqual(scan([...archive].map((b) => Buffer.from([b]))).length, whole.length);
});

test('a truncated stream and a corrupt header are TarFormatErrors', () => {
  for (const cut of [100, 512, 1024 + 7, archive.length - 1024, archive.length - 1]) {
    assert.throws(() => scan([archive.subarray(0, cut)]), TarFormatError, `cut at ${cut}`);
  }
  const bad = Buffer.from(archive);
  bad[10] = bad[10]! ^ 0xff;
  assert.throws(() => scan([bad]), /checksum/);
  assert.throws(() => scan([Buffer.from('not a tar at all'.repeat(64))]), TarFormatError);
});

test('2,000 mutated streams: entries or a TarFormatError, nothing else', () => {
  let x = 7;
  const rnd = () => (x = (x * 1103515245 + 12345) & 0x7fffffff);
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(archive.subarray(0, Math.min(archive.length, 4096 + (rnd() % archive.length))));
    for (let k = 0; k < 1 + (rnd() % 8); k++) b[rnd() % b.length] = rnd() & 0xff;
    try {
      scan(chop(b, i));
    } catch (e) {
      if (!(e instanceof TarFormatError)) throw new Error(`mutation ${i} threw ${String(e)}`);
    }
  }
});

test('ACL blocks in getfacl text, names turned into the golden ids', () => {
  const e: TarEntry = { path: 'a b\\é', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, stored: 0, linkname: '', aclAccess: 'user::rw-\nuser:bob:r--\ngroup::r--\ngroup:staff:r--\nmask::r--\nother::---\n', aclDefault: 'user::rwx,user:7:rwx' };
  const block = aclBlock(e);
  assert.equal(quoteAclPath('a b\\\u00e9'), 'a\\040b\\134\\351');
  assert.equal(block, '# file: a\\040b\\134\\351\nuser::rw-\nuser:bob:r--\ngroup::r--\ngroup:staff:r--\nmask::r--\nother::---\ndefault:user::rwx\ndefault:user:7:rwx\n\n');
  const users = parseIdFile('root:x:0:0::/root:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n');
  const groups = parseIdFile('root:x:0:\nstaff:x:50:\n');
  const r = numericAcl(block + '# file: x\nuser:carol:r--\n', users, groups);
  assert.match(r.text, /^user:1001:r--$/m);
  assert.match(r.text, /^group:50:r--$/m);
  assert.match(r.text, /^default:user:7:rwx$/m);
  assert.deepEqual(r.unknown, ['user carol']);
});

test('ACL blocks keep setuid, setgid and sticky through a real setfacl --restore', async () => {
  const { mkdtempSync, mkdirSync, writeFileSync, statSync, chmodSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { execa } = await import('execa');
  const dir = mkdtempSync(join(tmpdir(), 'kaboot-aclflags-'));
  try {
    mkdirSync(join(dir, 'sticky'));
    chmodSync(join(dir, 'sticky'), 0o1777);
    const acl = 'user::rwx\nuser:1234:rwx\ngroup::r-x\nmask::rwx\nother::rwx\n';
    const base = { type: 'dir', uid: 0, gid: 0, size: 0, stored: 0, linkname: '', aclAccess: acl } as const;
    assert.match(aclBlock({ ...base, path: 'sticky', mode: 0o1777 }), /^# flags: --t$/m);
    assert.match(aclBlock({ ...base, path: 'x', mode: 0o6755 }), /^# flags: ss-$/m);
    assert.doesNotMatch(aclBlock({ ...base, path: 'x', mode: 0o755 }), /flags/);
    writeFileSync(join(dir, 'acl.txt'), aclBlock({ ...base, path: 'sticky', mode: 0o1777 }));
    await execa('setfacl', ['--restore=acl.txt'], { cwd: dir });
    assert.equal(statSync(join(dir, 'sticky')).mode & 0o7777, 0o1777);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
