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

/** A folder that is removed when the calling test file's tests are done. */
export function tempDirForFile(tag: string): string {
  const d = tempDir(tag);
  after(() => d.remove());
  return d.path;
}
