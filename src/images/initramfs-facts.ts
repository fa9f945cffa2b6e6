// When an image is stored, the appliance reads each of its kernels' initramfs once (from the
// squashfs, with the host's decompressors) and records what it holds in the manifest. A node
// then decides whether to rebuild it without decompressing it under its own CPU: 3.3 s of a
// deploy in the lab. An initramfs that cannot be read here gets no record; the node reads it.
import { posix } from 'node:path';
import { execa } from 'execa';
import { INITRAMFS_NAMES, decompressor, readInitramfsImage, type Compression } from '../initramfs/read.js';
import { MODULE_NAME_RE, type InitramfsRecord } from './manifest.js';

export interface StoredFilesystem {
  /** mount point on the golden */
  mount: string;
  /** its squashfs on this machine */
  squashfs: string;
}

const hostTools = decompressor((format) => ({ zstd: ['zstd', '-dcq'], xz: ['xz', '-dc'], lzma: ['xz', '-dc', '--format=lzma'], lz4: ['lz4', '-dcq'], bzip2: ['bzip2', '-dc'], lzop: ['lzop', '-dc'] } as Partial<Record<Compression, string[]>>)[format]);

/** The file system holding an absolute path: the one with the longest mount point above it. */
export function holderOf(path: string, filesystems: StoredFilesystem[]): { fs: StoredFilesystem; rel: string } | undefined {
  const above = filesystems.filter((f) => f.mount === '/' || path === f.mount || path.startsWith(`${f.mount}/`));
  const fs = above.sort((a, b) => b.mount.length - a.mount.length)[0];
  return fs ? { fs, rel: posix.relative(fs.mount, path) } : undefined;
}

/** Records of the kernels' initramfs images; `warn` hears of those that could not be read. */
export async function initramfsFacts(filesystems: StoredFilesystem[], kernels: string[], warn: (line: string) => void = () => {}): Promise<InitramfsRecord[]> {
  const out: InitramfsRecord[] = [];
  for (const version of kernels) {
    for (const rel of INITRAMFS_NAMES(version)) {
      const path = `/${rel}`;
      const at = holderOf(path, filesystems);
      if (!at) continue;
      const r = await execa('unsquashfs', ['-cat', at.fs.squashfs, at.rel], { encoding: 'buffer', reject: false, stripFinalNewline: false, maxBuffer: 2 * 1024 ** 3 });
      if (r.exitCode !== 0) continue; // not this name
      const image = Buffer.from(r.stdout);
      const c = await readInitramfsImage(image, path, hostTools);
      if ('unreadable' in c) {
        warn(`${path}: not recorded, nodes read it themselves (${c.unreadable})`);
        break;
      }
      // a name the manifest cannot hold is left out: the node then finds it "missing" and rebuilds, the safe side
      out.push({ path, bytes: image.length, modules: [...c.modules].filter((m) => MODULE_NAME_RE.test(m)).sort(), texts: Object.fromEntries(c.texts) });
      break;
    }
  }
  return out;
}
