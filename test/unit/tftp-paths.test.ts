import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, symlink, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dirProvider, safeRelativePath } from '../../src/tftp/dir-provider.js';
import { isLookupError, type FileSource } from '../../src/tftp/provider.js';
import { FileCache, fileCacheOptions } from '../../src/tftp/file-cache.js';

const client = { address: '10.0.0.2', port: 1234, localAddress: '10.0.0.1' };

test('path rules: one leading slash is the root, escapes are refused', () => {
  assert.deepEqual(safeRelativePath('/X86PC/linux/linux.0'), { ok: true, segments: ['X86PC', 'linux', 'linux.0'] });
  assert.deepEqual(safeRelativePath('pxelinux.cfg/01-aa-bb'), { ok: true, segments: ['pxelinux.cfg', '01-aa-bb'] });
  assert.deepEqual(safeRelativePath('a//./b'), { ok: true, segments: ['a', 'b'] });
  for (const bad of ['', '/', '..', '../etc/passwd', 'a/../../b', 'a/..', '//etc/passwd', '/../x', 'a\\..\\b', '..\\x', 'a\x00b', 'a\nb', '.', './', 'x/'.repeat(600)]) {
    assert.equal(safeRelativePath(bad).ok, false, JSON.stringify(bad));
  }
});

async function withTree(fn: (root: string, outside: string) => Promise<void>) {
  const base = await mkdtemp(join(tmpdir(), 'kb-tftp-'));
  const root = join(base, 'root');
  const outside = join(base, 'outside');
  await mkdir(join(root, 'sub'), { recursive: true });
  await mkdir(outside);
  await writeFile(join(root, 'sub', 'file.txt'), 'inside');
  await writeFile(join(outside, 'secret'), 'secret');
  await symlink(join(outside, 'secret'), join(root, 'evil-link'));
  await symlink(outside, join(root, 'evil-dir'));
  await symlink('sub/file.txt', join(root, 'good-link'));
  try {
    await fn(root, outside);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

async function readAll(src: FileSource): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let off = 0; off < src.size; off += 7) parts.push(await src.read(off, 7));
  src.close();
  return Buffer.concat(parts);
}

test('directory provider serves below the root only', async () => {
  await withTree(async (root) => {
    const p = dirProvider(root);
    for (const ok of ['sub/file.txt', '/sub/file.txt', 'good-link']) {
      const r = await p.open(ok, client);
      assert.ok(!isLookupError(r), ok);
      assert.equal((await readAll(r)).toString(), 'inside');
    }
    const refused: [string, string][] = [
      ['evil-link', 'access-denied'],
      ['evil-dir/secret', 'access-denied'],
      ['../outside/secret', 'access-denied'],
      ['sub/../../outside/secret', 'access-denied'],
      ['//etc/passwd', 'access-denied'],
      ['sub\\file.txt', 'access-denied'],
      ['sub/file.txt\x00.png', 'access-denied'],
      ['sub', 'access-denied'],
      ['missing', 'not-found'],
    ];
    for (const [path, kind] of refused) {
      const r = await p.open(path, client);
      assert.ok(isLookupError(r), path);
      assert.equal(r.error, kind, path);
    }
  });
});

test('file cache: one disk read for many concurrent opens; new version after a change', async () => {
  await withTree(async (root) => {
    const cache = new FileCache({ idleMs: 50 });
    const p = dirProvider(root, { cache });
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    await writeFile(join(root, 'big'), big);
    const sources = await Promise.all(Array.from({ length: 100 }, () => p.open('big', client)));
    for (const s of sources) assert.ok(!isLookupError(s));
    assert.equal(cache.stats().diskBytesRead, big.length);
    assert.equal(cache.stats().loads, 1);
    for (const s of sources) if (!isLookupError(s)) s.close();
    await writeFile(join(root, 'big'), Buffer.alloc(10, 1));
    await utimes(join(root, 'big'), new Date(), new Date(Date.now() + 5000));
    const again = await p.open('big', client);
    assert.ok(!isLookupError(again));
    assert.equal(again.size, 10);
    again.close();
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(cache.stats().entries, 0);
  });
});

test('file cache streams files above the size limit, with the same bytes', async () => {
  await withTree(async (root) => {
    const cache = new FileCache({ maxFileBytes: 1000, streamChunkBytes: 4096 });
    const p = dirProvider(root, { cache });
    const data = Buffer.alloc(50_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    await writeFile(join(root, 'streamed'), data);
    const s = await p.open('streamed', client);
    assert.ok(!isLookupError(s));
    const parts: Buffer[] = [];
    for (let off = 0; off < s.size; off += 512) parts.push(await s.read(off, 512));
    // a jump back (retransmission) still gives the right bytes
    assert.deepEqual(await s.read(1024, 512), data.subarray(1024, 1536));
    s.close();
    assert.deepEqual(Buffer.concat(parts), data);
    assert.equal(cache.stats().streamed, 1);
  });
});

test('file cache sized from tftp.cache_mib / cache_file_max_mib: files above the file limit stream, cache_mib 0 streams all', async () => {
  await withTree(async (root) => {
    const MiB = 1024 * 1024;
    await writeFile(join(root, 'small'), Buffer.alloc(MiB / 2, 1));
    await writeFile(join(root, 'large'), Buffer.alloc(2 * MiB, 2));
    const openBoth = async (cache: FileCache) => {
      const p = dirProvider(root, { cache });
      for (const name of ['small', 'large']) {
        const s = await p.open(name, client);
        assert.ok(!isLookupError(s), name);
        s.close();
      }
      return cache.stats();
    };
    const sized = await openBoth(new FileCache(fileCacheOptions({ cache_mib: 4, cache_file_max_mib: 1 })));
    assert.equal(sized.loads, 1, 'the small file is cached');
    assert.equal(sized.streamed, 1, 'the large one is streamed');
    assert.equal(sized.cachedBytes, MiB / 2);
    const off = await openBoth(new FileCache(fileCacheOptions({ cache_mib: 0 })));
    assert.equal(off.loads, 0);
    assert.equal(off.streamed, 2);
    assert.equal(off.cachedBytes, 0);
  });
});
