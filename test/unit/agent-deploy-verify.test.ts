// verify's count against the image's: a real capture stream counted the way the image store
// counts it (TarScanner), unpacked by the receive consumer, counted on disk by countTree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { tarArgs } from '../../src/images/capture.js';
import { TarScanner } from '../../src/images/tar-scan.js';
import { receiveScript } from '../../src/agent/deploy/receive.js';
import { countTree, countListing, checkCounts, childMountCount, aclUrls } from '../../src/agent/deploy/verify.js';

test('a clone unpacked from a capture stream has as many entries as the stream and at least its data bytes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-verify-'));
  try {
    const golden = join(dir, 'golden');
    for (const d of ['etc', 'usr/bin', 'var/log', 'boot', 'empty']) mkdirSync(join(golden, d), { recursive: true });
    writeFileSync(join(golden, 'etc/hostname'), 'golden\n');
    writeFileSync(join(golden, 'usr/bin/tool'), Buffer.alloc(100_000, 1));
    await execa('ln', [join(golden, 'usr/bin/tool'), join(golden, 'usr/bin/tool-alias')]);
    symlinkSync('tool', join(golden, 'usr/bin/link'));
    await execa('truncate', ['-s', '10M', join(golden, 'var/log/sparse')]);
    writeFileSync(join(golden, 'var/log/sparse'), 'x', { flag: 'r+' });
    const stream = join(dir, 's.tar');
    await execa('tar', [...tarArgs(golden), '-f', stream]);
    let files = 0;
    let bytesUsed = 0;
    const scan = new TarScanner((e) => {
      files++;
      if (e.type === 'file') bytesUsed += e.stored;
    });
    scan.push(readFileSync(stream));
    scan.end();
    await execa('sh', ['-c', `zstd -q -f ${stream} -o ${stream}.zst`]);
    const clone = join(dir, 'clone');
    mkdirSync(clone);
    const r = await execa('sh', ['-c', receiveScript(clone, [], join(dir, 'rc'))], { inputFile: `${stream}.zst`, reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
    const c = await countTree(clone);
    assert.equal(c.entries, files, 'entries: root, dirs, files, the hard link, the symlink');
    assert.ok(c.fileBytes >= bytesUsed, `${c.fileBytes} >= ${bytesUsed}`);
    assert.deepEqual(checkCounts({ mount: '/', files, bytesUsed, exclude: [] }, c), []);
    // a missing file is seen
    rmSync(join(clone, 'etc/hostname'));
    assert.match(checkCounts({ mount: '/', files, bytesUsed, exclude: [] }, await countTree(clone)).join(), /fewer than the image's/);
    // what the node adds itself (lost+found, a new mount point) is allowed, more is not
    writeFileSync(join(clone, 'etc/hostname'), 'golden\n');
    mkdirSync(join(clone, 'lost+found'));
    mkdirSync(join(clone, 'efi'));
    assert.deepEqual(checkCounts({ mount: '/', files, exclude: [] }, await countTree(clone), 1), []);
    mkdirSync(join(clone, 'more'));
    assert.match(checkCounts({ mount: '/', files, exclude: [] }, await countTree(clone), 1).join(), /more than the image's/);
    // data missing
    assert.match(checkCounts({ mount: '/', bytesUsed: c.fileBytes + 1, exclude: [] }, c).join(), /less than/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('countListing: every line an entry, each inode\'s size once, only regular files; countTree says what find said', async () => {
  assert.deepEqual(countListing('d 2 5 4096\nf 12 2 100\nf 12 2 100\nf 13 1 7\nl 14 1 9\nd 15 2 4096\n'), { entries: 6, fileBytes: 107 });
  assert.deepEqual(countListing(''), { entries: 0, fileBytes: 0 });
  await assert.rejects(countTree('/nonexistent-kaboot-dir'), /counting \/nonexistent-kaboot-dir: find exited with 1: .*No such file/);
});

test('childMountCount and aclUrls', () => {
  assert.equal(childMountCount('/', ['/', '/boot', '/boot/efi', undefined]), 2);
  assert.equal(childMountCount('/boot', ['/', '/boot', '/boot/efi', '/bootx']), 1);
  assert.deepEqual(aclUrls('http://10.0.0.1:80', '/store/img/fs/1-root.acl'), ['http://10.0.0.1/store/img/fs/1-root.acl', 'http://10.0.0.1/api/store/img/fs/1-root.acl']);
  assert.deepEqual(aclUrls('http://10.0.0.1:8080', '/api/images/x.acl'), ['http://10.0.0.1:8080/api/images/x.acl']);
});
