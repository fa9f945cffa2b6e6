// `kaboot initrd build` twice (the agent executable rebuilt the second time too): the same bytes,
// and a manifest that tells the truth about what is inside. Downloads (the kernel package, the
// Node runtime) are cached in ~/.cache/kaboot, so only the first run on a machine fetches them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { buildInitrd, type InitrdManifest } from '../../src/agent/build/initrd.js';
import { defaultCacheDir, repoRoot } from '../../src/agent/build/inputs.js';

test('two builds give the same vmlinuz, all.rdz and manifest; the manifest matches the archive', async () => {
  const base = mkdtempSync(join(tmpdir(), 'kaboot-initrd-'));
  try {
    const cacheDir = defaultCacheDir();
    const a = await buildInitrd({ outDir: join(base, 'a'), cacheDir });
    // Force the single executable to be made again from the bundle and the pinned runtime.
    rmSync(join(repoRoot(), 'initrd/out/kaboot-agent.inputs.json'), { force: true });
    const b = await buildInitrd({ outDir: join(base, 'b'), cacheDir });
    for (const f of ['vmlinuz', 'all.rdz', 'all.rdz.manifest.json']) {
      assert.ok(readFileSync(join(base, 'a', f)).equals(readFileSync(join(base, 'b', f))), `${f} differs between two builds`);
    }
    const m = JSON.parse(readFileSync(a.manifestFile, 'utf8')) as InitrdManifest;
    assert.equal(m.outputs['all.rdz'].sha256, createHash('sha256').update(readFileSync(a.rdz)).digest('hex'));
    assert.deepEqual(m.inputs.modules.missing, [], 'the generic kernel has every listed driver');
    assert.equal(m.inputs.node.version, '24.9.0');

    // Unpack and compare every file with the manifest.
    const x = join(base, 'x');
    await execa('sh', ['-c', `mkdir -p ${x} && cd ${x} && zstd -qdc ${a.rdz} | cpio -id --quiet --no-absolute-filenames`]);
    const listed = (await execa('sh', ['-c', `zstd -qdc ${a.rdz} | cpio -t --quiet`])).stdout.split('\n');
    assert.deepEqual(listed, m.files.map((f) => f.path));
    assert.deepEqual([...listed].sort(), listed, 'the archive is in sorted order');
    for (const f of m.files.filter((f) => f.type === 'file')) {
      const got = createHash('sha256').update(readFileSync(join(x, f.path))).digest('hex');
      assert.equal(got, f.sha256, f.path);
    }
    for (const need of ['init', 'bin/busybox', 'bin/kaboot-agent', 'etc/kaboot/modules', 'lib64/ld-linux-x86-64.so.2']) assert.ok(existsSync(join(x, need)), need);
    assert.ok(m.files.some((f) => /\/virtio_net\.ko$/.test(f.path)) && m.files.some((f) => /\/modules\.dep$/.test(f.path)));
    // The agent in the archive runs (its runtime and libraries are the ones it was built with).
    const help = await execa(join(x, 'bin/kaboot-agent'), ['--help']);
    assert.match(help.stdout, /^usage: kaboot-agent/);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
