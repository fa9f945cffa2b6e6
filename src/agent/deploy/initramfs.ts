// Whether a clone's initramfs must be rebuilt for this node. Rebuilding it under an
// emulated or slow CPU takes minutes (update-initramfs with MODULES=most), and it is only
// needed when the image's initramfs lacks a driver this node's disks, NICs or root file
// system need, or embeds the name of a file system that prepare gave a new UUID (the
// resume device, crypttab, dracut's host-only root=). Anything not known for sure — an
// initramfs that cannot be read, a compression with no decompressor — means rebuild.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { PassThrough, Readable } from 'node:stream';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { CpioReader, isRegular } from './cpio.js';

export type Compression = 'gzip' | 'zstd' | 'xz' | 'lzma' | 'lz4' | 'bzip2' | 'lzop';

/** The compression a stream starts with, by its magic bytes (what the kernel's unpacker accepts). */
export function compressionOf(head: Buffer): Compression | undefined {
  const starts = (...b: number[]) => b.every((x, i) => head[i] === x);
  if (starts(0x1f, 0x8b)) return 'gzip';
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
  if (starts(0x02, 0x21, 0x4c, 0x18)) return 'lz4';
  if (starts(0x42, 0x5a, 0x68)) return 'bzip2';
  if (starts(0x89, 0x4c, 0x5a, 0x4f)) return 'lzop';
  if (starts(0x5d, 0x00, 0x00)) return 'lzma';
  return undefined;
}

/** What decides a rebuild: the modules inside, and the small config files that may name devices. */
export interface InitramfsContents {
  /** module names, '-' written '_' (virtio_blk, dm_mod) */
  modules: Set<string>;
  /** path → text of small files under conf/, etc/ and cryptroot/ */
  texts: Map<string, string>;
}

/** Turns a compressed stream into its decompressed bytes, or undefined when there is no tool for it. */
export type Decompress = (format: Compression, input: Readable) => Readable | undefined;

const MODULE_FILE = /([^/]+)\.ko(\.[a-z]+)?$/;
const TEXT_DIRS = /^(conf|etc|cryptroot)\//;
const TEXT_MAX = 64 * 1024;

/** A module's name from its file ("kernel/drivers/md/dm-mod.ko.xz" → dm_mod). */
export const moduleName = (file: string): string | undefined => MODULE_FILE.exec(file)?.[1]?.replace(/-/g, '_');

/** Module names in a modules.dep or modules.builtin text ("kernel/drivers/net/e1000/e1000.ko.xz: ..." → e1000). */
export function moduleNamesIn(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const m = moduleName(line.split(':')[0]?.trim() ?? '');
    if (m) out.add(m);
  }
  return out;
}

function contentsOf(readers: CpioReader[]): InitramfsContents {
  const modules = new Set<string>();
  const texts = new Map<string, string>();
  for (const r of readers) {
    for (const e of r.entries) {
      const m = moduleName(e.name);
      if (m) modules.add(m);
      if (e.data) texts.set(e.name, e.data.toString('utf8'));
    }
  }
  return { modules, texts };
}

const keepText = (name: string, size: number, mode: number) => TEXT_DIRS.test(name) && size <= TEXT_MAX && isRegular({ name, mode, size });

/**
 * Reads an initramfs image: uncompressed archives first (early microcode), then at most
 * one compressed stream holding the main archive(s). Resolves to its contents, or to
 * the reason it could not be read.
 */
export async function readInitramfs(file: string, decompress: Decompress): Promise<InitramfsContents | { unreadable: string }> {
  let image: Buffer;
  try {
    image = readFileSync(file);
  } catch (e) {
    return { unreadable: `${file}: ${(e as Error).message}` };
  }
  const readers: CpioReader[] = [];
  let rest = image;
  if (compressionOf(rest) === undefined) {
    const plain = new CpioReader(keepText);
    plain.push(rest);
    readers.push(plain);
    if (plain.otherDataAt === undefined) {
      return plain.complete ? contentsOf(readers) : { unreadable: `${file}: ${plain.fault ?? 'the cpio archive ends early'}` };
    }
    rest = rest.subarray(plain.otherDataAt);
  }
  const format = compressionOf(rest);
  if (!format) return { unreadable: `${file}: neither cpio nor a known compression at byte ${image.length - rest.length}` };
  const out = decompress(format, Readable.from([rest]));
  if (!out) return { unreadable: `${file}: no ${format} decompressor here` };
  const main = new CpioReader(keepText);
  try {
    for await (const chunk of out) main.push(chunk as Buffer);
  } catch (e) {
    return { unreadable: `${file}: ${format}: ${(e as Error).message}` };
  }
  if (!main.complete && main.otherDataAt === undefined) {
    return { unreadable: `${file}: ${main.fault ?? `the ${format} archive ends early`}` };
  }
  readers.push(main);
  return contentsOf(readers);
}

/**
 * Decompression with Node's zlib where it can (gzip; zstd from Node 22.15/23.8), else
 * with a command: `command(format)` gives its argv (reading stdin, writing stdout), or
 * undefined when there is none. A command that fails makes the stream error.
 */
export function decompressor(command: (format: Compression) => string[] | undefined): Decompress {
  const z = zlib as unknown as { createZstdDecompress?: () => NodeJS.ReadWriteStream };
  return (format, input) => {
    if (format === 'gzip') return input.pipe(zlib.createGunzip());
    if (format === 'zstd' && typeof z.createZstdDecompress === 'function') return input.pipe(z.createZstdDecompress()) as unknown as Readable;
    const argv = command(format);
    if (!argv) return undefined;
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = new PassThrough();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-500)));
    child.on('error', (e) => out.destroy(e));
    child.stdin.on('error', () => {});
    input.pipe(child.stdin);
    child.stdout.pipe(out, { end: false });
    child.on('close', (code) => (code === 0 ? out.end() : out.destroy(new Error(`${argv.join(' ')} exited ${code}: ${stderr.trim()}`))));
    return out;
  };
}

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

/** Where initramfs-tools and dracut put the initramfs of kernel `v`. */
export const INITRAMFS_NAMES = (v: string) => [`boot/initrd.img-${v}`, `boot/initramfs-${v}.img`, `boot/initrd-${v}`];

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

/** Every module the clone's kernels have, loadable or built in (undefined: no kernel to ask). */
export function knownModules(kernels: CloneKernel[]): Set<string> | undefined {
  if (kernels.length === 0) return undefined;
  return new Set(kernels.flatMap((k) => [...k.loadable, ...k.builtin]));
}

/** Reads the initramfs of each of the clone's kernels and says why it must be rebuilt (nothing: keep it). */
export async function initramfsRebuildReasons(root: string, clone: CloneKernel[], wanted: string[], renamed: string[], decompress: Decompress): Promise<string[]> {
  const kernels: RebuildInputs['kernels'] = [];
  for (const kernel of clone) {
    const contents = kernel.initramfs ? await readInitramfs(join(root, kernel.initramfs), decompress) : undefined;
    kernels.push({ kernel, contents });
  }
  return rebuildReasons({ kernels, wanted, renamed });
}
