// kaboot stage2 build: images/stage2.sqfs, the tools a node chroots into, from Debian packages.
import { resolve } from 'node:path';
import { parseBuildVerb, intOption } from './build-verb.js';
import { buildStage2 } from '../stage2/build.js';
import { defaultCacheDir } from '../agent/build/inputs.js';

const usage = `usage: kaboot stage2 build [--out DIR] [--cache DIR] [--zstd-level N]
  --out DIR         where stage2.sqfs and stage2.manifest.json go (default ./images)
  --cache DIR       downloaded .deb files, by package and version (default ~/.cache/kaboot)
  --zstd-level N    squashfs zstd level 1..22 (default 15, mksquashfs's own; 19: 11% smaller, twice the CPU)
`;

export async function stage2Command(argv: string[]): Promise<number> {
  const parsed = parseBuildVerb('stage2', argv, usage, {
    out: { type: 'string', default: 'images' },
    cache: { type: 'string' },
    'zstd-level': { type: 'string', default: '15' },
  });
  if ('exit' in parsed) return parsed.exit;
  const v = parsed.values;
  const level = intOption('stage2', 'zstd-level', v['zstd-level'], 1, 22);
  const started = Date.now();
  const r = await buildStage2({
    outDir: resolve(v.out),
    cacheDir: resolve(v.cache ?? defaultCacheDir()),
    zstdLevel: level,
    say: (l) => process.stderr.write(`stage2: ${l}\n`),
  });
  const m = r.manifest;
  const s = r.seconds;
  process.stdout.write(
    `${r.image}\t${m.squashfs.size} bytes\tsha256 ${m.squashfs.sha256}\n` +
      `${r.manifestFile}\t${m.packages.length} packages, ${m.tools.length} tools, tree ${r.treeBytes} bytes\n` +
      `time ${((Date.now() - started) / 1000).toFixed(1)} s (resolve ${s.resolve.toFixed(1)}, fetch ${s.fetch.toFixed(1)}, unpack ${s.unpack.toFixed(1)}, mksquashfs ${s.squashfs.toFixed(1)})\n`,
  );
  return 0;
}
