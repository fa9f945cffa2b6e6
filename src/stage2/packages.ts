// Which Debian packages stage2 is made of: the tools a node needs to partition, format, receive
// and make bootable, and their dependency closure (Depends + Pre-Depends) as apt-cache reports
// it for this machine's apt sources, minus a few packages that only maintainer scripts or
// scripts stage2 never runs need.
import { execa } from 'execa';

/** What a node runs from stage2, and why each package is there. */
export const stage2Packages: Record<string, string> = {
  'util-linux': 'blkid, wipefs, mkswap, blockdev, partx, findmnt, lsblk',
  fdisk: 'sfdisk (partition from the desc), fdisk',
  mount: 'mount/umount for the clone\'s chroot (bind mounts, by UUID or label)',
  e2fsprogs: 'mkfs.ext2/3/4, tune2fs, e2label',
  xfsprogs: 'mkfs.xfs, xfs_admin',
  'btrfs-progs': 'mkfs.btrfs, btrfstune',
  dosfstools: 'mkfs.vfat for the EFI system partition',
  tar: 'receives the file systems (--xattrs --acls --sparse)',
  zstd: 'decompresses the stream',
  acl: 'getfacl/setfacl (verify that ACLs came through)',
  findutils: 'find -xdev -printf: verify counts what landed (entries, bytes in files)',
  coreutils: 'dd (MBR copy), sync, ls, cat, ... for the steps and kaboot exec',
  dash: '/bin/sh',
  bash: 'the scripts some packages ship (blkdeactivate, e2scrub, grub\'s modinfo.sh) and kaboot exec sessions',
  'grub-pc-bin': 'GRUB for BIOS (/usr/lib/grub/i386-pc)',
  'grub-efi-amd64-bin': 'GRUB for UEFI (/usr/lib/grub/x86_64-efi)',
  'grub-common': 'grub-probe, grub-mkimage, grub-editenv',
  'grub2-common': 'grub-install',
  extlinux: 'extlinux (the -r extlinux bootloader)',
  'syslinux-common': 'mbr.bin/gptmbr.bin and the syslinux modules',
  efibootmgr: 'the NVRAM boot entry grub-install makes on UEFI',
};

/**
 * Left out of the closure, with why. Debian packages name these for maintainer scripts
 * (dpkg, debconf, install-info) or for scripts stage2 never runs (python3: xfs_scrub_all;
 * perl: through mime-support); no binary stage2 runs links anything from them, which the
 * integration test checks (every ELF's libraries resolve inside the image).
 */
export const stage2Pruned: Record<string, string> = {
  dpkg: 'maintainer scripts and update-grub\'s version sort; nothing is installed in stage2',
  debconf: 'maintainer scripts (libpam0g)',
  cdebconf: 'maintainer scripts (the other debconf-2.0 provider)',
  'install-info': 'maintainer scripts (readline-common)',
  python3: 'xfsprogs: xfs_scrub_all, a cron script',
  perl: 'mime-support/mailcap, reached only through python3',
  'perl-base': 'maintainer scripts',
  libicu72: 'only xfs_scrub (an online checker a deployment never runs) links it; 36 MB of 129 unpacked, 13.6 MB of the image; xfs_scrub is left out of the tree',
};

export type DependencyGroup = { alternatives: { name: string; providers: string[] }[] };

/** `apt-cache depends` output → package → its dependency groups (an or-group has several alternatives). */
export function parseAptDepends(text: string): Map<string, DependencyGroup[]> {
  const out = new Map<string, DependencyGroup[]>();
  let groups: DependencyGroup[] | undefined;
  let open: DependencyGroup | undefined; // an or-group still taking alternatives
  let last: { name: string; providers: string[] } | undefined;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    if (!line.startsWith(' ')) {
      groups = [];
      out.set(stripArch(line.trim()), groups);
      open = undefined;
      last = undefined;
      continue;
    }
    const dep = /^ ([ |])(Depends|PreDepends):\s+(\S+)/.exec(line);
    if (dep && groups) {
      last = { name: stripArch(dep[3]!), providers: [] };
      if (open) open.alternatives.push(last);
      else groups.push((open = { alternatives: [last] }));
      if (dep[1] !== '|') open = undefined; // no "|": this alternative ends the group
      continue;
    }
    // "    provider": a package that provides the dependency named above it
    if (/^\s{4}\S/.test(line) && last) last.providers.push(stripArch(line.trim()));
  }
  return out;
}

function stripArch(name: string): string {
  return name.replace(/:(any|amd64|all)$/, '');
}

const isVirtual = (name: string) => name.startsWith('<') && name.endsWith('>');
const bare = (name: string) => name.replace(/^<|>$/g, '');

/**
 * The closure of `wanted` over the dependency graph, one package per group: a group already
 * met by a chosen (or pruned) package adds nothing; otherwise its first alternative that is a
 * real package, or for a virtual one its provider of highest `rank` (apt's choice: the
 * priority, so awk is mawk, priority required, not gawk), the first listed on a tie. Sorted.
 */
export function closeOver(wanted: string[], graph: (pkg: string) => DependencyGroup[] | undefined, pruned: Set<string>, rank: (pkg: string) => number = () => 0): string[] {
  const best = (providers: string[]) => providers.reduce<string | undefined>((a, p) => (a === undefined || rank(p) > rank(a) ? p : a), undefined);
  const chosen = new Set<string>();
  const queue = [...wanted];
  const meets = (alt: { name: string; providers: string[] }) => {
    const n = bare(alt.name);
    return chosen.has(n) || pruned.has(n) || queue.includes(n) || alt.providers.some((p) => chosen.has(p) || pruned.has(p) || queue.includes(p));
  };
  while (queue.length) {
    const pkg = queue.shift()!;
    if (chosen.has(pkg) || pruned.has(pkg)) continue;
    const groups = graph(pkg);
    if (!groups) throw new Stage2ResolveError(`apt-cache knows no package ${pkg}`);
    chosen.add(pkg);
    for (const g of groups) {
      if (g.alternatives.some(meets)) continue;
      const pick = g.alternatives.map((a) => (isVirtual(a.name) ? best(a.providers) : a.name)).find((n) => n !== undefined);
      if (!pick) throw new Stage2ResolveError(`${pkg}: nothing provides ${g.alternatives.map((a) => bare(a.name)).join(' | ')}`);
      queue.push(pick);
    }
  }
  return [...chosen].sort();
}

export class Stage2ResolveError extends Error {}

const dependsFlags = ['--no-recommends', '--no-suggests', '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances'];

/** closeOver with the graph read from apt-cache depends (one call per breadth of the walk). */
export async function resolveClosure(wanted: string[], pruned: Set<string>): Promise<string[]> {
  const graph = new Map<string, DependencyGroup[]>();
  // Fetch the graph level by level: every package named anywhere gets asked once.
  let frontier = [...new Set(wanted)];
  while (frontier.length) {
    const { stdout } = await execa('apt-cache', ['depends', ...dependsFlags, ...frontier], { env: { LC_ALL: 'C' } });
    for (const [k, v] of parseAptDepends(stdout)) graph.set(k, v);
    const next = new Set<string>();
    for (const p of frontier) {
      for (const g of graph.get(p) ?? []) {
        for (const a of g.alternatives) {
          for (const n of isVirtual(a.name) ? a.providers : [a.name]) if (!graph.has(n) && !pruned.has(n)) next.add(n);
        }
      }
    }
    frontier = [...next];
  }
  const providers = new Set<string>();
  for (const groups of graph.values()) for (const g of groups) for (const a of g.alternatives) if (isVirtual(a.name)) for (const p of a.providers) providers.add(p);
  const priority = await priorities([...providers]);
  return closeOver(wanted, (p) => graph.get(p), pruned, (p) => priorityRank[priority.get(p) ?? 'extra'] ?? 0);
}

const priorityRank: Record<string, number> = { required: 5, important: 4, standard: 3, optional: 2, extra: 1 };

async function priorities(names: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (!names.length) return out;
  const { stdout } = await execa('apt-cache', ['show', '--no-all-versions', ...names], { env: { LC_ALL: 'C' }, reject: false });
  for (const para of stdout.split(/\n\n+/)) {
    const name = /^Package: (\S+)$/m.exec(para)?.[1];
    const prio = /^Priority: (\S+)$/m.exec(para)?.[1];
    if (name && prio && !out.has(name)) out.set(name, prio);
  }
  return out;
}

export interface PackageVersion {
  name: string;
  version: string;
  architecture: string;
  /** the SHA-256 the archive's Packages index gives for the .deb */
  sha256: string;
}

/** The candidate version of each package (apt-cache show --no-all-versions), as apt-get download would fetch it. */
export async function candidateVersions(names: string[]): Promise<PackageVersion[]> {
  const { stdout } = await execa('apt-cache', ['show', '--no-all-versions', ...names], { env: { LC_ALL: 'C' } });
  const out = new Map<string, PackageVersion>();
  for (const para of stdout.split(/\n\n+/)) {
    const field = (f: string) => new RegExp(`^${f}: (.+)$`, 'm').exec(para)?.[1]?.trim();
    const name = field('Package');
    const version = field('Version');
    const architecture = field('Architecture');
    const sha256 = field('SHA256');
    if (name && version && architecture && sha256 && !out.has(name)) out.set(name, { name, version, architecture, sha256 });
  }
  const missing = names.filter((n) => !out.has(n));
  if (missing.length) throw new Stage2ResolveError(`apt-cache show gave no candidate for ${missing.join(', ')}`);
  return names.map((n) => out.get(n)!);
}
