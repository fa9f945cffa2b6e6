// Files shared between transfers. A boot storm has every client fetch the same kernel
// and initrd: each file up to `maxFileBytes` is read from disk once into one Buffer,
// which every transfer of that file version (path, inode, size, mtime) reads from.
// An entry stays while a transfer uses it and for `idleMs` after the last one ends;
// when the total would pass `maxTotalBytes`, idle entries go first (least recently
// used), and a file that still does not fit is streamed from disk for that transfer.
import { open as openFile, stat, type FileHandle } from 'node:fs/promises';
import type { FileSource } from './provider.js';
import { bufferSource } from './provider.js';
import { defaults } from '../config/schema.js';

export interface FileCacheOptions {
  maxFileBytes?: number;
  maxTotalBytes?: number;
  idleMs?: number;
  /** read-ahead unit of streamed (uncached) files */
  streamChunkBytes?: number;
}

export interface FileCacheStats {
  entries: number;
  cachedBytes: number;
  hits: number;
  loads: number;
  streamed: number;
  /** bytes read from disk, cached and streamed */
  diskBytesRead: number;
}

interface Entry {
  key: string;
  data: Buffer | null;
  loading: Promise<Buffer> | null;
  users: number;
  lastUsed: number;
  evictTimer: NodeJS.Timeout | null;
}

const MiB = 1024 * 1024;

/** Largest file one Buffer may hold here (Node 20: 4 GiB less a byte; see the config's limit). */
const MAX_FILE_MIB = 4095;

/** The cache's limits from the config's tftp section (sizes in MiB there); a file may take half the cache unless told. */
export function fileCacheOptions(tftp: { cache_mib: number; cache_file_max_mib?: number | undefined }): Required<Pick<FileCacheOptions, 'maxTotalBytes' | 'maxFileBytes'>> {
  const fileMib = tftp.cache_file_max_mib ?? Math.min(MAX_FILE_MIB, Math.floor(tftp.cache_mib / 2));
  return { maxTotalBytes: tftp.cache_mib * MiB, maxFileBytes: fileMib * MiB };
}

export class FileCache {
  private readonly maxFileBytes: number;
  private readonly maxTotalBytes: number;
  private readonly idleMs: number;
  private readonly chunkBytes: number;
  private readonly entries = new Map<string, Entry>();
  private cachedBytes = 0;
  private counters = { hits: 0, loads: 0, streamed: 0, diskBytesRead: 0 };

  constructor(opts: FileCacheOptions = {}) {
    const configured = fileCacheOptions(defaults.tftp);
    this.maxFileBytes = opts.maxFileBytes ?? configured.maxFileBytes;
    this.maxTotalBytes = opts.maxTotalBytes ?? configured.maxTotalBytes;
    this.idleMs = opts.idleMs ?? 30_000;
    this.chunkBytes = opts.streamChunkBytes ?? 4 * MiB;
  }

  /** Open a regular file by its real path. Throws fs errors (ENOENT...) to the caller. */
  async open(realPath: string): Promise<FileSource> {
    const st = await stat(realPath, { bigint: true });
    // A FIFO or device would block or never end; a directory is no file.
    if (!st.isFile()) throw Object.assign(new Error(`${realPath}: not a regular file`), { code: 'EISDIR' });
    const size = Number(st.size);
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${realPath}`;
    const existing = this.entries.get(key);
    if (existing) {
      this.counters.hits++;
      return this.use(existing);
    }
    if (size > this.maxFileBytes || !this.makeRoom(size)) return this.stream(realPath);

    const entry: Entry = { key, data: null, loading: null, users: 0, lastUsed: Date.now(), evictTimer: null };
    this.entries.set(key, entry);
    this.cachedBytes += size;
    this.counters.loads++;
    entry.loading = this.readWhole(realPath, size).then(
      (buf) => {
        entry.data = buf;
        entry.loading = null;
        // The file may have changed size between stat and read: account what was read.
        this.cachedBytes += buf.length - size;
        return buf;
      },
      (err: unknown) => {
        this.entries.delete(key);
        this.cachedBytes -= size;
        throw err;
      },
    );
    return this.use(entry);
  }

  stats(): FileCacheStats {
    return { entries: this.entries.size, cachedBytes: this.cachedBytes, ...this.counters };
  }

  /** Drop every idle entry now (tests, shutdown). */
  clear(): void {
    for (const e of [...this.entries.values()]) if (e.users === 0 && !e.loading) this.evict(e);
  }

  private async use(entry: Entry): Promise<FileSource> {
    entry.users++;
    if (entry.evictTimer) {
      clearTimeout(entry.evictTimer);
      entry.evictTimer = null;
    }
    let data: Buffer;
    try {
      data = entry.data ?? (await (entry.loading as Promise<Buffer>));
    } catch (err) {
      entry.users--;
      throw err;
    }
    return bufferSource(data, () => this.release(entry));
  }

  private release(entry: Entry): void {
    entry.users--;
    entry.lastUsed = Date.now();
    if (entry.users > 0 || !this.entries.has(entry.key)) return;
    entry.evictTimer = setTimeout(() => this.evict(entry), this.idleMs);
    entry.evictTimer.unref();
  }

  private evict(entry: Entry): void {
    if (entry.users > 0 || this.entries.get(entry.key) !== entry) return;
    if (entry.evictTimer) clearTimeout(entry.evictTimer);
    this.entries.delete(entry.key);
    this.cachedBytes -= entry.data?.length ?? 0;
  }

  /** Evict idle entries, oldest first, until `size` more bytes fit. */
  private makeRoom(size: number): boolean {
    if (this.cachedBytes + size <= this.maxTotalBytes) return true;
    const idle = [...this.entries.values()].filter((e) => e.users === 0 && !e.loading).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const e of idle) {
      this.evict(e);
      if (this.cachedBytes + size <= this.maxTotalBytes) return true;
    }
    return false;
  }

  private async readWhole(path: string, size: number): Promise<Buffer> {
    const fh = await openFile(path, 'r');
    try {
      const buf = Buffer.allocUnsafe(size);
      let got = 0;
      while (got < size) {
        const { bytesRead } = await fh.read(buf, got, size - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      this.counters.diskBytesRead += got;
      return got === size ? buf : buf.subarray(0, got);
    } finally {
      await fh.close();
    }
  }

  private async stream(path: string): Promise<FileSource> {
    this.counters.streamed++;
    const fh = await openFile(path, 'r');
    const { size } = await fh.stat();
    return new StreamedSource(fh, size, this.chunkBytes, (n) => (this.counters.diskBytesRead += n));
  }
}

interface Chunk {
  start: number;
  data: Buffer | null;
  ready: Promise<Buffer>;
}

/**
 * A file too big to cache, read sequentially in chunks with one chunk of read-ahead,
 * so that reads are answered from memory (synchronously) nearly always.
 */
class StreamedSource implements FileSource {
  private current: Chunk | null = null;
  private next: Chunk | null = null;
  private chunkLen: number;
  private closed = false;

  constructor(private readonly fh: FileHandle, readonly size: number, chunkBytes: number, private readonly counted: (n: number) => void) {
    this.chunkLen = chunkBytes;
  }

  read(offset: number, length: number): Buffer | Promise<Buffer> {
    const end = Math.min(offset + length, this.size);
    if (end <= offset) return Buffer.alloc(0);
    // Chunks hold whole blocks, so that no block spans two chunks.
    if (this.current === null) this.chunkLen = Math.max(length, Math.floor(this.chunkLen / length) * length);
    for (const c of [this.current, this.next]) {
      if (c && offset >= c.start && end <= c.start + this.chunkLen) {
        if (c === this.next) this.advance();
        if (c.data && end <= c.start + c.data.length) return c.data.subarray(offset - c.start, end - c.start);
        return c.ready.then((d) => d.subarray(offset - c.start, end - c.start));
      }
    }
    // A jump (retransmission far back, or first read): start over at this offset.
    this.current = this.load(offset);
    this.next = this.load(offset + this.chunkLen);
    const c = this.current;
    return c.ready.then((d) => d.subarray(offset - c.start, end - c.start));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const pending = [this.current?.ready, this.next?.ready].filter(Boolean);
    void Promise.allSettled(pending).then(() => this.fh.close()).catch(() => undefined);
  }

  private advance(): void {
    this.current = this.next;
    const start = (this.current as Chunk).start + this.chunkLen;
    this.next = start < this.size ? this.load(start) : null;
  }

  private load(start: number): Chunk {
    const len = Math.max(0, Math.min(this.chunkLen, this.size - start));
    const chunk: Chunk = { start, data: null, ready: Promise.resolve(Buffer.alloc(0)) };
    chunk.ready = (async () => {
      const buf = Buffer.allocUnsafe(len);
      let got = 0;
      while (got < len) {
        const { bytesRead } = await this.fh.read(buf, got, len - got, start + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      this.counted(got);
      chunk.data = buf.subarray(0, got);
      return chunk.data;
    })();
    chunk.ready.catch(() => undefined); // a failed read surfaces when a transfer awaits it
    return chunk;
  }
}
