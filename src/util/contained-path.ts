// "Nothing escapes images/": a path a client names is served only if it resolves,
// symlinks followed, to a file below the root.
import { realpath } from 'node:fs/promises';
import { sep } from 'node:path';

export async function isInside(root: string, candidate: string): Promise<boolean> {
  try {
    const [r, c] = await Promise.all([realpath(root), realpath(candidate)]);
    return c === r || c.startsWith(r.endsWith(sep) ? r : r + sep);
  } catch {
    return false;
  }
}
