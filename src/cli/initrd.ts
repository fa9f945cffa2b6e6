// kaboot initrd build: images/vmlinuz and images/all.rdz (kernel, drivers, busybox, the agent).
import { resolve } from 'node:path';
import { UsageError } from './main.js';
import { parseBuildVerb, intOption } from './build-verb.js';
import { buildInitrd } from '../agent/build/initrd.js';
import { defaultCacheDir } from '../agent/build/inputs.js';

const usage = `usage: kaboot initrd build [--kernel-version V] [--flavour generic|cloud] [--out DIR] [--cache DIR] [--zstd-level N]
  --kernel-version V   the kernel's release, e.g. 6.1.0-56-amd64 (default: what linux-image-amd64 depends on)
  --flavour F          generic (default: real NICs and disk controllers) or cloud (smaller, no e1000/ahci)
  --out DIR            where vmlinuz, all.rdz and all.rdz.manifest.json go (default ./images)
  --cache DIR          downloads (kernel package, Node runtime) (default ~/.cache/kaboot)
`;

export async function initrdCommand(argv: string[]): Promise<number> {
  const parsed = parseBuildVerb('initrd', argv, usage, {
    'kernel-version': { type: 'string' },
    flavour: { type: 'string', default: 'generic' },
    out: { type: 'string', default: 'images' },
    cache: { type: 'string' },
    'zstd-level': { type: 'string', default: '9' },
  });
  if ('exit' in parsed) return parsed.exit;
  const v = parsed.values;
  if (v.flavour !== 'generic' && v.flavour !== 'cloud') throw new UsageError(`initrd build: --flavour is generic or cloud, not ${v.flavour}`);
  const level = intOption('initrd', 'zstd-level', v['zstd-level'], 1, 19);
  const started = Date.now();
  const r = await buildInitrd({
    outDir: resolve(v.out),
    cacheDir: resolve(v.cache ?? defaultCacheDir()),
    flavour: v.flavour,
    kernelRelease: v['kernel-version'],
    zstdLevel: level,
    say: (l) => process.stderr.write(`initrd: ${l}\n`),
  });
  const m = r.manifest;
  if (m.inputs.modules.missing.length) process.stderr.write(`initrd: not in kernel ${m.inputs.kernel.release}: ${m.inputs.modules.missing.join(', ')}\n`);
  process.stdout.write(
    `${r.vmlinuz}\t${m.outputs.vmlinuz.size} bytes\n` +
      `${r.rdz}\t${m.outputs['all.rdz'].size} bytes\tsha256 ${m.outputs['all.rdz'].sha256}\n` +
      `${r.manifestFile}\t${m.files.length} files, kernel ${m.inputs.kernel.release}, node ${m.inputs.node.version}, ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );
  return 0;
}
