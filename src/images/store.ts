// The image store: images_dir/store/<name>/ holds manifest.json and fs/*.sqfs (+ .acl).
// An image is built in images_dir/store/.staging/<name>.<pid>.<random>/ and appears by
// one rename once every file and the manifest are fsynced, so a kill -9 mid-capture
// leaves no half image in the store. Staging folders of dead processes are removed when
// a store is opened; rm renames an image into .trash/ first, so it vanishes at once.
import { mkdir, readdir, readFile, rename, rm, open, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { createWriteStream } from 'node:fs';
import { execa } from 'execa';
import { writeFileAtomic } from '../util/atomic-write.js';
import {
  type ImageManifest, type FilesystemRecord, type BootloaderName, parseManifest, chooseBootloader, checkImageName, squashfsFileName, MOUNT_RE,
} from './manifest.js';
import { tarToSquashfs, sha256File, CaptureError, type TarIngest } from './squashfs.js';
import { fanOut } from './fan-out.js';
import { numericAcl, parseIdFile } from './acl.js';
import { checkBootCode, sha256Hex, type BootCode } from './boot-code.js';
import { initramfsFacts } from './initramfs-facts.js';

export class ImageStoreError extends Error {
  override name = 'ImageStoreError';
  constructor(readonly code: 'bad-name' | 'exists' | 'not-found' | 'bad-request' | 'busy', message: string) {
    super(message);
  }
}

export interface ImageSummary {
  name: string;
  created?: string;
  filesystems?: { mount: string; fstype: string; bytes_used: number; squashfs_bytes: number }[];
  bytes?: number;
  error?: string;
}

export interface FilesystemMeta {
  mount: string;
  fstype?: string;
  label?: string;
  uuid?: string;
}

/** A file system's tar stream, plain (local capture) or zstd-compressed (as pushed over HTTP). */
export type TarSource = { tar: Readable } | { zstd: Readable };

export interface CommitMeta {
  source: ImageManifest['source'];
  desc?: string;
  bootloader?: BootloaderName;
  /** expected tar sha256 per mount point, from the sender */
  expect?: Record<string, string>;
  warnings?: string[];
  /** MBR boot code per golden drive (side files mbr/<drive>.bin) */
  bootCode?: Pick<BootCode, 'drive' | 'source' | 'bytes'>[];
}

const pidAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}

export class ImageStore {
  readonly root: string;
  private readonly stagingRoot: string;
  private readonly trashRoot: string;

  private constructor(readonly imagesDir: string) {
    this.root = join(imagesDir, 'store');
    this.stagingRoot = join(this.root, '.staging');
    this.trashRoot = join(this.root, '.trash');
  }

  /** Opens (creates) the store and removes what a killed capture or rm left behind. */
  static async open(imagesDir: string): Promise<ImageStore> {
    const s = new ImageStore(imagesDir);
    await mkdir(s.stagingRoot, { recursive: true });
    await mkdir(s.trashRoot, { recursive: true });
    for (const d of await readdir(s.stagingRoot)) {
      const parts = d.split('.');
      const pid = Number(parts[parts.length - 2]);
      const live = Number.isInteger(pid) && pid > 0 && (pid === process.pid || pidAlive(pid));
      if (!live) await rm(join(s.stagingRoot, d), { recursive: true, force: true });
    }
    for (const d of await readdir(s.trashRoot)) await rm(join(s.trashRoot, d), { recursive: true, force: true });
    return s;
  }

  private dirOf(name: string): string {
    const bad = checkImageName(name);
    if (bad) throw new ImageStoreError('bad-name', bad);
    return join(this.root, name);
  }

  /** Absolute path of a file of an image, for serving it; only names from its manifest. */
  fileOf(name: string, manifest: ImageManifest, rel: string): string {
    const known = [...manifest.filesystems.flatMap((f) => [f.squashfs, f.stream, f.acl_file]), ...(manifest.boot_code ?? []).map((b) => b.file)].includes(rel) || rel === 'manifest.json';
    if (!known) throw new ImageStoreError('not-found', `image ${name} has no file ${rel}`);
    return join(this.dirOf(name), rel);
  }

  async list(): Promise<ImageSummary[]> {
    const out: ImageSummary[] = [];
    for (const d of (await readdir(this.root, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      if (!d.isDirectory() || d.name.startsWith('.') || checkImageName(d.name)) continue;
      try {
        const m = await this.get(d.name);
        if (!m) continue;
        out.push({
          name: m.name,
          created: m.created,
          filesystems: m.filesystems.map((f) => ({ mount: f.mount, fstype: f.fstype, bytes_used: f.bytes_used, squashfs_bytes: f.squashfs_bytes })),
          bytes: m.filesystems.reduce((s, f) => s + f.squashfs_bytes, 0),
        });
      } catch (e) {
        out.push({ name: d.name, error: (e as Error).message });
      }
    }
    return out;
  }

  async get(name: string): Promise<ImageManifest | undefined> {
    const dir = this.dirOf(name);
    let text: string;
    try {
      text = await readFile(join(dir, 'manifest.json'), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw e;
    }
    return parseManifest(text, `image ${name}`);
  }

  /** The stored boot code of a golden drive, checked against the manifest's sha256. */
  async bootCode(manifest: ImageManifest, drive: string): Promise<Buffer> {
    const rec = manifest.boot_code?.find((b) => b.drive === drive);
    if (!rec) throw new ImageStoreError('not-found', `image ${manifest.name} holds no boot code of drive ${drive}`);
    const bytes = await readFile(this.fileOf(manifest.name, manifest, rec.file));
    if (sha256Hex(bytes) !== rec.sha256) throw new ImageStoreError('bad-request', `image ${manifest.name}: ${rec.file} does not have the sha256 its manifest says (the store is damaged)`);
    return bytes;
  }

  async remove(name: string): Promise<boolean> {
    const dir = this.dirOf(name);
    const trash = join(this.trashRoot, `${name}.${process.pid}.${randomBytes(4).toString('hex')}`);
    try {
      await rename(dir, trash);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    await fsyncDir(this.root);
    await rm(trash, { recursive: true, force: true });
    return true;
  }

  async begin(name: string): Promise<Staging> {
    const final = this.dirOf(name);
    if (await stat(final).then(() => true, () => false)) throw new ImageStoreError('exists', `image ${name} exists: remove it first (kaboot image rm ${name})`);
    const dir = join(this.stagingRoot, `${name}.${process.pid}.${randomBytes(6).toString('hex')}`);
    await mkdir(join(dir, 'fs'), { recursive: true });
    return new Staging(this, name, dir, final);
  }
}

/** An image being built: add file systems, then commit (or abort). */
export class Staging {
  private readonly filesystems: FilesystemRecord[] = [];
  private readonly ingests: TarIngest[] = [];
  private busy = false;
  private done = false;
  readonly id: string;

  constructor(readonly store: ImageStore, readonly name: string, readonly dir: string, private readonly final: string) {
    this.id = dir.slice(dir.lastIndexOf('.') + 1);
  }

  get receiving(): boolean {
    return this.busy;
  }

  get mounts(): string[] {
    return this.filesystems.map((f) => f.mount);
  }

  async addFilesystem(source: TarSource, meta: FilesystemMeta, signal?: AbortSignal): Promise<FilesystemRecord> {
    if (this.done) throw new ImageStoreError('bad-request', `the capture of ${this.name} is finished`);
    if (this.busy) throw new ImageStoreError('busy', `the capture of ${this.name} is receiving another file system`);
    if (!MOUNT_RE.test(meta.mount)) throw new ImageStoreError('bad-request', `mount point ${JSON.stringify(meta.mount)}: expected an absolute path like / or /boot/efi`);
    if (this.mounts.includes(meta.mount)) throw new ImageStoreError('exists', `the capture of ${this.name} already has ${meta.mount}`);
    this.busy = true;
    const index = this.filesystems.length;
    const squashfs = squashfsFileName(index, meta.mount);
    const aclFile = squashfs.replace(/\.sqfs$/, '.acl');
    const stream = squashfs.replace(/\.sqfs$/, '.tar.zst');
    const streamPath = join(this.dir, stream);
    // The deploy stream is the tar exactly as captured, kept zstd-compressed: sqfs2tar
    // would write sparse files out in full and drop the root's owner and mode, and the
    // node checks the tar's sha256 against the golden's.
    const zstd = execa('zstd', 'zstd' in source ? ['-d', '-q', '-c'] : ['-q', '-3', '-T0', '-c'], {
      stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', buffer: { stdout: false }, reject: false, cancelSignal: signal, forceKillAfterDelay: 2000,
    });
    const file = createWriteStream(streamPath, { mode: 0o644 });
    let tar: Readable;
    let sides: Promise<unknown>[];
    if ('zstd' in source) {
      tar = zstd.stdout!;
      sides = [fanOut(source.zstd, [file, zstd.stdin!])];
    } else {
      const toSquashfs = new PassThrough({ highWaterMark: 1 << 20 });
      tar = toSquashfs;
      sides = [fanOut(source.tar, [toSquashfs, zstd.stdin!]), fanOut(zstd.stdout!, [file])];
    }
    const sidesDone = Promise.all(sides).then(async () => {
      const r = await zstd;
      if (r.exitCode !== 0) throw new CaptureError('zstd' in source ? `the upload is not a complete zstd stream: ${String(r.stderr).trim() || `zstd exit ${r.exitCode}`}` : `zstd failed: ${String(r.stderr).trim()}`);
    });
    try {
      const building = tarToSquashfs(tar, join(this.dir, squashfs), {
        mount: meta.mount, keep: ['/etc/fstab', '/etc/passwd', '/etc/group'], aclPath: join(this.dir, aclFile), signal,
      });
      let ingest: TarIngest;
      try {
        [ingest] = await Promise.all([building, sidesDone]);
      } catch (e) {
        zstd.kill('SIGKILL');
        (tar as Readable).destroy();
        const [built] = await Promise.allSettled([building, sidesDone, zstd]);
        await rm(streamPath, { force: true });
        await rm(join(this.dir, squashfs), { force: true });
        await rm(join(this.dir, aclFile), { force: true });
        // the builder's error says what was wrong with the stream; the others only that it stopped
        throw built.status === 'rejected' && built.reason instanceof CaptureError ? built.reason : e;
      }
      const fh = await open(streamPath, 'r');
      try { await fh.sync(); } finally { await fh.close(); }
      const streamSize = (await stat(streamPath)).size;
      const rec: FilesystemRecord = {
        mount: meta.mount,
        fstype: meta.fstype ?? 'unknown',
        ...(meta.label ? { label: meta.label } : {}),
        ...(meta.uuid ? { uuid: meta.uuid } : {}),
        files: ingest.files,
        bytes_used: ingest.bytes_used,
        squashfs,
        squashfs_bytes: ingest.squashfs_bytes,
        squashfs_sha256: ingest.squashfs_sha256,
        tar_bytes: ingest.tar_bytes,
        tar_sha256: ingest.tar_sha256,
        stream,
        stream_bytes: streamSize,
        stream_sha256: await sha256File(streamPath),
        ...(ingest.acl_entries ? { acl_file: aclFile } : {}),
        acl_entries: ingest.acl_entries,
      };
      this.filesystems.push(rec);
      this.ingests.push(ingest);
      return rec;
    } finally {
      this.busy = false;
    }
  }

  async commit(meta: CommitMeta): Promise<ImageManifest> {
    if (this.done) throw new ImageStoreError('bad-request', `the capture of ${this.name} is finished`);
    if (this.busy) throw new ImageStoreError('busy', `the capture of ${this.name} is still receiving a file system`);
    if (!this.filesystems.length) throw new ImageStoreError('bad-request', `the capture of ${this.name} has no file system`);
    for (const [mount, sha] of Object.entries(meta.expect ?? {})) {
      const fs = this.filesystems.find((f) => f.mount === mount);
      if (!fs) throw new ImageStoreError('bad-request', `the sender sent ${mount} but the appliance never received it`);
      if (fs.tar_sha256 !== sha) throw new ImageStoreError('bad-request', `${mount}: the sender's tar stream has sha256 ${sha}, the appliance received ${fs.tar_sha256}`);
    }
    const order = this.filesystems.map((f, i) => ({ f, i })).sort((a, b) => a.f.mount.split('/').length - b.f.mount.split('/').length || a.f.mount.localeCompare(b.f.mount));
    const fstab = this.ingests.map((g) => g.kept.get('/etc/fstab')).find((b) => b !== undefined);
    const hints = new Set(this.ingests.flatMap((g) => [...g.bootloaderHints]));
    const esp = this.filesystems.some((f) => f.mount === '/boot/efi' || f.fstype === 'vfat');
    const guessed: BootloaderName = chooseBootloader(hints, esp);
    const manifest: ImageManifest = {
      format: 1,
      name: this.name,
      created: new Date().toISOString(),
      source: meta.source,
      filesystems: order.map((o) => o.f),
      ...(meta.desc ? { desc: meta.desc } : {}),
      bootloader: meta.bootloader ?? guessed,
      kernels: [...new Set(this.ingests.flatMap((g) => g.kernels))].sort(),
      ...(fstab ? { fstab: fstab.toString('utf8') } : {}),
      warnings: [...(meta.warnings ?? [])],
    };
    const kept = (path: string) => this.ingests.map((g) => g.kept.get(path)).find((b) => b !== undefined)?.toString('utf8') ?? '';
    const users = parseIdFile(kept('/etc/passwd'));
    const groups = parseIdFile(kept('/etc/group'));
    for (const f of this.filesystems) {
      if (!f.acl_file) continue;
      const path = join(this.dir, f.acl_file);
      const { text, unknown } = numericAcl(await readFile(path, 'utf8'), users, groups);
      await writeFileAtomic(path, text);
      if (unknown.length) manifest.warnings.push(`${f.mount}: ACL entries name ${unknown.join(', ')}, unknown to the golden's etc/passwd and etc/group: kept by name`);
    }
    if (meta.bootCode?.length) {
      const drives = new Set<string>();
      await mkdir(join(this.dir, 'mbr'), { recursive: true });
      manifest.boot_code = [];
      for (const b of meta.bootCode) {
        if (!/^[a-z][a-z0-9]{0,31}$/.test(b.drive)) throw new ImageStoreError('bad-request', `boot code of ${JSON.stringify(b.drive)}: not a drive name (sda, vda, nvme0n1)`);
        if (drives.has(b.drive)) throw new ImageStoreError('bad-request', `boot code of drive ${b.drive} given twice`);
        drives.add(b.drive);
        try {
          checkBootCode(b.bytes, b.source);
        } catch (e) {
          throw new ImageStoreError('bad-request', (e as Error).message);
        }
        const file = `mbr/${b.drive}.bin`;
        await writeFileAtomic(join(this.dir, file), b.bytes);
        manifest.boot_code.push({ drive: b.drive, source: b.source, file, sha256: sha256Hex(b.bytes) });
      }
      await fsyncDir(join(this.dir, 'mbr'));
    }
    const initramfs = await initramfsFacts(this.filesystems.map((f) => ({ mount: f.mount, squashfs: join(this.dir, f.squashfs) })), manifest.kernels, (l) => manifest.warnings.push(l))
      .catch((e: unknown) => {
        manifest.warnings.push(`initramfs not recorded, nodes read it themselves: ${(e as Error).message}`);
        return [];
      });
    if (initramfs.length) manifest.initramfs = initramfs;
    await writeFileAtomic(join(this.dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    await fsyncDir(join(this.dir, 'fs'));
    await fsyncDir(this.dir);
    try {
      await rename(this.dir, this.final);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new ImageStoreError('exists', `image ${this.name} appeared while capturing: remove it first`);
      throw e;
    }
    await fsyncDir(this.store.root);
    this.done = true;
    return manifest;
  }

  async abort(): Promise<void> {
    this.done = true;
    await rm(this.dir, { recursive: true, force: true });
  }
}
