// What is inside an initramfs image, without unpacking it: the module names and the small
// config files that may name devices. The agent reads a clone's (prepare); the appliance
// reads an image's once when it is stored, so nodes need not (images/initramfs-facts.ts).
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { PassThrough, Readable } from 'node:stream';
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
  return readInitramfsImage(image, file, decompress);
}

/** readInitramfs of an image already in memory; `file` names it in the reasons. */
export async function readInitramfsImage(image: Buffer, file: string, decompress: Decompress): Promise<InitramfsContents | { unreadable: string }> {
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

/** Where initramfs-tools and dracut put the initramfs of kernel `v`. */
export const INITRAMFS_NAMES = (v: string) => [`boot/initrd.img-${v}`, `boot/initramfs-${v}.img`, `boot/initrd-${v}`];
