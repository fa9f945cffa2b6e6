// Whether a clone's initramfs must be rebuilt for this node. Rebuilding it under an
// emulated or slow CPU takes minutes (update-initramfs with MODULES=most), and it is only
// needed when the image's initramfs lacks a driver this node's disks, NICs or root file
// system need, or embeds the name of a file system that prepare gave a new UUID (the
// resume device, crypttab, dracut's host-only root=). Anything not known for sure — an
// initramfs that cannot be read, a compression with no decompressor — means rebuild.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { INITRAMFS_NAMES, moduleNamesIn, readInitramfs, type Decompress, type InitramfsContents } from '../../initramfs/read.js';
import type { InitramfsRecord } from '../../images/manifest.js';

/** One kernel of the clone: the modules it has, built in or as files, and its initramfs. */
export interface CloneKernel {
  version: string;
  /** modules.dep names ('_' form) */
  loadable: Set<string>;
  /** modules.builtin names ('_' form) */
  builtin: Set<string>;
  /** its initramfs image, relative to the clone's root; undefined when it has none */
  initramfs?: string;
}


function moduleSet(path: string): Set<string> {
  try {
    return moduleNamesIn(readFileSync(path, 'utf8'));
  } catch {
    return new Set();
  }
}

/** The kernels under the clone's /lib/modules that have a modules.dep. */
export function cloneKernels(root: string): CloneKernel[] {
  let versions: string[];
  try {
    versions = readdirSync(join(root, 'lib/modules')).sort();
  } catch {
    return [];
  }
  const out: CloneKernel[] = [];
  for (const version of versions) {
    const dir = join(root, 'lib/modules', version);
    const loadable = moduleSet(join(dir, 'modules.dep'));
    if (loadable.size === 0) continue;
    const initramfs = INITRAMFS_NAMES(version).find((rel) => {
      try {
        return statSync(join(root, rel)).isFile();
      } catch {
        return false;
      }
    });
    out.push({ version, loadable, builtin: moduleSet(join(dir, 'modules.builtin')), ...(initramfs ? { initramfs } : {}) });
  }
  return out;
}

export interface RebuildInputs {
  kernels: { kernel: CloneKernel; contents: InitramfsContents | { unreadable: string } | undefined }[];
  /** modules this node needs at boot (drivers of its disks and NICs, its root's file system, the plan's own) */
  wanted: string[];
  /** names of file systems that prepare replaced (UUID=…, /dev/sda1), as in the golden's files */
  renamed: string[];
}

/** The spellings of an old file system name that an initramfs's config might hold. */
function spellings(spec: string): string[] {
  const m = /^(UUID|PARTUUID)=(.+)$/i.exec(spec);
  return m ? [m[2]!.toLowerCase()] : [spec.toLowerCase()];
}

/** Why the initramfs must be rebuilt; none when every kernel's initramfs already serves this node. Pure. */
export function rebuildReasons(inp: RebuildInputs): string[] {
  const reasons: string[] = [];
  if (inp.kernels.length === 0) reasons.push('the clone has no kernel with a modules.dep');
  for (const { kernel, contents } of inp.kernels) {
    if (!kernel.initramfs) {
      reasons.push(`${kernel.version}: no initramfs in the image`);
      continue;
    }
    if (!contents) {
      reasons.push(`${kernel.version}: ${kernel.initramfs} not read`);
      continue;
    }
    if ('unreadable' in contents) {
      reasons.push(`${kernel.version}: ${contents.unreadable}`);
      continue;
    }
    const missing = inp.wanted
      .map((m) => m.replace(/-/g, '_'))
      .filter((m) => kernel.loadable.has(m) && !kernel.builtin.has(m) && !contents.modules.has(m));
    if (missing.length) reasons.push(`${kernel.version}: ${kernel.initramfs} lacks ${[...new Set(missing)].join(' ')}`);
    for (const [path, text] of contents.texts) {
      const lower = text.toLowerCase();
      const named = inp.renamed.filter((spec) => spellings(spec).some((s) => lower.includes(s)));
      if (named.length) reasons.push(`${kernel.version}: ${kernel.initramfs}'s ${path} names ${named.join(' ')}, which this clone renames`);
    }
  }
  return reasons;
}

/**
 * Every module the clone's kernels have, loadable or built in (undefined: no kernel to ask).
 * The node's drivers are named by the initrd's kernel, and the image may run another flavour
 * (cloud kernels have no e1000).
 */
export function knownModules(kernels: CloneKernel[]): Set<string> | undefined {
  if (kernels.length === 0) return undefined;
  return new Set(kernels.flatMap((k) => [...k.loadable, ...k.builtin]));
}

/**
 * Reads the initramfs of each of the clone's kernels and says why it must be rebuilt (nothing:
 * keep it). An image's record of one (the plan's initramfs_contents) stands for reading it when
 * it names the same file with the same size: the stream that put it there was checked against
 * the image's digest. `note` hears which way each was known.
 */
export async function initramfsRebuildReasons(root: string, clone: CloneKernel[], wanted: string[], renamed: string[], decompress: Decompress, recorded: InitramfsRecord[] = [], note: (line: string) => void = () => {}): Promise<string[]> {
  const kernels: RebuildInputs['kernels'] = [];
  for (const kernel of clone) {
    let contents: RebuildInputs['kernels'][number]['contents'];
    if (kernel.initramfs) {
      const file = join(root, kernel.initramfs);
      const rec = recorded.find((r) => r.path === `/${kernel.initramfs}`);
      const size = sizeOf(file);
      if (rec && size === rec.bytes) {
        contents = { modules: new Set(rec.modules), texts: new Map(Object.entries(rec.texts)) };
        note(`${kernel.initramfs}: known from the image's record (${rec.modules.length} modules)`);
      } else {
        contents = await readInitramfs(file, decompress);
        note(`${kernel.initramfs}: read${rec ? ` (the image's record says ${rec.bytes} bytes, the clone's file has ${size ?? 'none'})` : ''}`);
      }
    }
    kernels.push({ kernel, contents });
  }
  return rebuildReasons({ kernels, wanted, renamed });
}

function sizeOf(file: string): number | undefined {
  try {
    return statSync(file).size;
  } catch {
    return undefined;
  }
}
