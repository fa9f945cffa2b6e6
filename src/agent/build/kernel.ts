// A Debian kernel package unpacked into the cache (apt-get download + dpkg -x, never installed),
// with depmod run on the tree, and the modules an initrd needs, resolved through modules.dep.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, basename } from 'node:path';
import { execa } from 'execa';

export type Flavour = 'generic' | 'cloud';

export interface KernelTree {
  /** uname -r, e.g. 6.1.0-56-amd64 */
  release: string;
  package: string;
  /** the Debian package version */
  packageVersion: string;
  debSha256: string;
  dir: string;
  vmlinuz: string;
}

export async function defaultKernelRelease(flavour: Flavour): Promise<string> {
  const meta = flavour === 'cloud' ? 'linux-image-cloud-amd64' : 'linux-image-amd64';
  const { stdout } = await execa('apt-cache', ['depends', meta]);
  const suffix = flavour === 'cloud' ? '-cloud-amd64' : '-amd64';
  const m = stdout.split('\n').map((l) => /Depends: linux-image-(\d\S*)$/.exec(l.trim())?.[1]).find((r) => r?.endsWith(suffix));
  if (!m) throw new Error(`apt-cache depends ${meta} names no linux-image-<version>${suffix}`);
  return m;
}

export async function fetchKernel(cacheDir: string, release: string): Promise<KernelTree> {
  const pkg = `linux-image-${release}`;
  const dir = join(cacheDir, 'kernel', release);
  const info = join(dir, '.kaboot-kernel.json');
  if (!existsSync(info)) {
    const work = join(cacheDir, 'kernel', `.fetch-${process.pid}`);
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    try {
      await execa('apt-get', ['download', pkg], { cwd: work });
      const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
      if (!deb) throw new Error(`apt-get download ${pkg} gave no .deb`);
      const debPath = join(work, deb);
      const packageVersion = (await execa('dpkg-deb', ['-f', debPath, 'Version'])).stdout.trim();
      const debSha256 = (await execa('sha256sum', [debPath])).stdout.split(' ')[0]!;
      const tree = join(work, 'tree');
      await execa('dpkg', ['-x', debPath, tree]);
      if (!existsSync(join(tree, 'boot', `vmlinuz-${release}`))) throw new Error(`${deb} has no boot/vmlinuz-${release}`);
      await execa('depmod', ['-b', tree, release]);
      writeFileSync(join(tree, '.kaboot-kernel.json'), JSON.stringify({ release, package: pkg, packageVersion, debSha256, deb: basename(deb) }));
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(join(cacheDir, 'kernel'), { recursive: true });
      renameSync(tree, dir);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  const meta = JSON.parse(readFileSync(info, 'utf8')) as { release: string; package: string; packageVersion: string; debSha256: string };
  return { ...meta, dir, vmlinuz: join(dir, 'boot', `vmlinuz-${release}`) };
}

/** modules.dep as a map: module name (with _) → its .ko path and the paths it needs. */
export function parseModulesDep(text: string): Map<string, { path: string; deps: string[] }> {
  const out = new Map<string, { path: string; deps: string[] }>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const path = line.slice(0, colon).trim();
    const deps = line.slice(colon + 1).trim().split(/\s+/).filter(Boolean);
    out.set(moduleName(path), { path, deps });
  }
  return out;
}

/** softdep lines ("softdep ext4 pre: crc32c") as name → names */
export function parseSoftdeps(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const w = line.trim().split(/\s+/);
    if (w[0] !== 'softdep' || !w[1]) continue;
    const name = normalizeName(w[1]);
    out.set(name, [...(out.get(name) ?? []), ...w.slice(2).filter((x) => !x.endsWith(':'))]);
  }
  return out;
}

/** modules.alias without wildcards: alias → module names (softdeps name aliases such as crypto-crc32c) */
export function parseAliases(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const w = line.trim().split(/\s+/);
    if (w[0] !== 'alias' || !w[1] || !w[2] || /[*?[]/.test(w[1])) continue;
    out.set(w[1], [...(out.get(w[1]) ?? []), normalizeName(w[2])]);
  }
  return out;
}

export function moduleName(path: string): string {
  return normalizeName(basename(path).replace(/\.ko(\.(xz|zst|gz))?$/, ''));
}

function normalizeName(n: string): string {
  return n.replace(/-/g, '_');
}

export interface ModuleSelection {
  /** .ko paths relative to lib/modules/<release>, every dependency included, sorted */
  files: string[];
  builtin: string[];
  /** wanted names neither built in nor present in this kernel (the cloud flavour lacks e1000, ahci) */
  missing: string[];
}

export function selectModules(wanted: string[], dep: Map<string, { path: string; deps: string[] }>, builtinText: string, softdeps: Map<string, string[]>, aliases: Map<string, string[]> = new Map()): ModuleSelection {
  const builtins = new Set(builtinText.split('\n').filter(Boolean).map(moduleName));
  const files = new Set<string>();
  const builtin: string[] = [];
  const missing: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string, required: boolean) => {
    const n = normalizeName(name);
    if (seen.has(n)) return;
    seen.add(n);
    const m = dep.get(n);
    if (!m) {
      if (builtins.has(n)) builtin.push(n);
      else if (required) missing.push(n);
      return;
    }
    files.add(m.path);
    for (const d of m.deps) {
      files.add(d);
      visit(moduleName(d), true);
    }
    // A soft dependency names a module or an alias (crypto-crc32c); optional either way.
    for (const s of softdeps.get(n) ?? []) for (const target of aliases.get(s) ?? [s]) visit(target, false);
  };
  for (const w of wanted) visit(w, true);
  return { files: [...files].sort(), builtin: builtin.sort(), missing: missing.sort() };
}
