// .deb files in a cache keyed by package, version and architecture (cacheDir/debs), fetched
// with apt-get download from this machine's apt sources and checked against the SHA-256 of
// the archive's Packages index, so a cached file is used only if it is the exact package.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { fileSha256 } from '../agent/build/sea.js';
import type { PackageVersion } from './packages.js';

export interface CachedDeb extends PackageVersion {
  file: string;
  size: number;
}

/** apt's own file name for a package: name_version_arch.deb, with ':' (epoch) written %3a. */
export function debFileName(p: PackageVersion): string {
  return `${p.name}_${p.version.replace(/:/g, '%3a')}_${p.architecture}.deb`;
}

export async function fetchDebs(cacheDir: string, packages: PackageVersion[], say: (l: string) => void = () => undefined): Promise<{ debs: CachedDeb[]; downloaded: number }> {
  const dir = join(cacheDir, 'debs');
  mkdirSync(dir, { recursive: true });
  const want = async (p: PackageVersion) => {
    const f = join(dir, debFileName(p));
    return existsSync(f) && (await fileSha256(f)) === p.sha256;
  };
  const missing: PackageVersion[] = [];
  for (const p of packages) if (!(await want(p))) missing.push(p);
  if (missing.length) {
    say(`apt-get download: ${missing.length} of ${packages.length} packages not in ${dir}`);
    const work = join(dir, `.download-${process.pid}`);
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work);
    try {
      await execa('apt-get', ['download', '-q', ...missing.map((p) => `${p.name}=${p.version}`)], { cwd: work, env: { LC_ALL: 'C' } });
      const got = new Set(readdirSync(work));
      for (const p of missing) {
        const name = debFileName(p);
        if (!got.has(name)) throw new Error(`apt-get download ${p.name}=${p.version} did not give ${name}`);
        const sum = await fileSha256(join(work, name));
        if (sum !== p.sha256) throw new Error(`${name}: sha256 ${sum}, the archive index says ${p.sha256}`);
        renameSync(join(work, name), join(dir, name));
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  const debs = packages.map((p) => {
    const file = join(dir, debFileName(p));
    return { ...p, file, size: statSync(file).size };
  });
  return { debs, downloaded: missing.length };
}
