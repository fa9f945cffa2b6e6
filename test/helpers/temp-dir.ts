// Temporary folders for tests, under the system's tmpdir, named kaboot-<tag>-XXXXXX.
import { after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  path: string;
  remove(): void;
}

export function tempDir(tag: string): TempDir {
  const path = mkdtempSync(join(tmpdir(), `kaboot-${tag}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

const atExit = new Set<string>();
let hooked = false;

/**
 * A folder that is removed when the test file's process exits after its tests passed, and
 * kept (for the logs and disks in it) when one failed. For folders made inside hooks and
 * tests, where node:test's after() would run at once or after that one test.
 */
export function tempDirRemovedOnPass(tag: string): string {
  const d = tempDir(tag);
  removeOnPass(d.path);
  return d.path;
}

/** Removes `path` when the test file's process exits with status 0. */
export function removeOnPass(path: string): void {
  atExit.add(path);
  if (hooked) return;
  hooked = true;
  process.on('exit', (code) => {
    if (code !== 0) return;
    for (const p of atExit) rmSync(p, { recursive: true, force: true });
  });
}

/** A folder that is removed when the calling test file's tests are done. */
export function tempDirForFile(tag: string): string {
  const d = tempDir(tag);
  after(() => d.remove());
  return d.path;
}
