// Persisted state (leases, nodes) is replaced whole: write a temporary file, fsync it,
// rename it over the old one, fsync the directory. A kill -9 at any point leaves either
// the old file or the new one, never a torn one.
import { open, rename, unlink } from 'node:fs/promises';
import { openSync, writeSync, fsyncSync, closeSync, renameSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

let counter = 0;
const tmpName = (path: string) => join(dirname(path), `.${basename(path)}.${process.pid}.${counter++}.tmp`);

export interface AtomicWriteOptions {
  /** fsync file and directory (survives power loss). Without it the data is in the page cache, which survives kill -9. */
  fsync?: boolean;
}

export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = { fsync: true }): Promise<void> {
  const tmp = tmpName(path);
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(data);
    if (opts.fsync) await fh.sync();
  } catch (e) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  await rename(tmp, path);
  if (opts.fsync) {
    const dir = await open(dirname(path), 'r');
    try { await dir.sync(); } finally { await dir.close(); }
  }
}

export function writeFileAtomicSync(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = { fsync: true }): void {
  const tmp = tmpName(path);
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    if (opts.fsync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  if (opts.fsync) {
    const dfd = openSync(dirname(path), 'r');
    try { fsyncSync(dfd); } finally { closeSync(dfd); }
  }
}
