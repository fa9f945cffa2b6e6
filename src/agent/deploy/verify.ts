// verify: what landed on disk against what the image's manifest counted in the stream:
// entries (tar counts every path, hard links and the root "./" included; a mount point
// below is an entry but not its contents) and data bytes (the stream carries each file's
// data once and no holes, so the files' sizes must add up to at least that). Then the ACL
// file, when the plan names one, restored with setfacl --restore in the mount point.
import { lstatSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Step } from '../steps.js';
import { targetDir } from './shell.js';
import { chrootEnv, type DeployState, type TargetFs } from './types.js';

export interface TreeCount {
  entries: number;
  /** sum of the sizes of regular files, each inode once */
  fileBytes: number;
}

/** Counts a tree as tar --one-file-system would list it. */
export function countTree(root: string): TreeCount {
  const rootDev = lstatSync(root).dev;
  const seen = new Set<number>();
  let entries = 0;
  let fileBytes = 0;
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const st = lstatSync(p, { bigint: false });
      entries++;
      if (st.isDirectory()) {
        if (st.dev === rootDev) walk(p);
      } else if (st.isFile() && !seen.has(st.ino)) {
        if (st.nlink > 1) seen.add(st.ino);
        fileBytes += st.size;
      }
    }
  };
  entries++; // the root itself, "./" in the stream
  walk(root);
  return { entries, fileBytes };
}

/**
 * What is wrong with a received tree, or nothing. Entries may exceed the stream's by what the
 * node adds itself: lost+found from mkfs, mount points of file systems the golden did not
 * have (an ESP on a UEFI node), excluded directories made again empty.
 */
export function checkCounts(t: Pick<TargetFs, 'mount' | 'files' | 'bytesUsed' | 'exclude'>, c: TreeCount, childMounts = 0): string[] {
  const problems: string[] = [];
  if (t.files !== undefined) {
    const extra = 1 + childMounts + t.exclude.length;
    if (t.exclude.length === 0 && c.entries < t.files) problems.push(`${t.mount}: ${c.entries} entries on disk, fewer than the image's ${t.files}`);
    else if (c.entries > t.files + extra) problems.push(`${t.mount}: ${c.entries} entries on disk, more than the image's ${t.files} (+${extra})`);
  }
  if (t.bytesUsed !== undefined && t.exclude.length === 0 && c.fileBytes < t.bytesUsed) {
    problems.push(`${t.mount}: ${c.fileBytes} bytes of file data on disk, less than the ${t.bytesUsed} the image carries`);
  }
  return problems;
}

/** Mount points of other targets directly or deeper below this one (each adds a directory). */
export function childMountCount(mount: string, all: (string | undefined)[]): number {
  const prefix = mount === '/' ? '/' : `${mount}/`;
  return all.filter((m) => m !== undefined && m !== mount && m.startsWith(prefix)).length;
}

export const verifyStep: Step<DeployState> = {
  name: 'verify',
  async run(ctx) {
    const s = ctx.state;
    const problems: string[] = [];
    for (const t of s.targets) {
      if (!t.session || !t.mount) continue;
      const dir = targetDir(s.paths.stage2, t.mount);
      const c = countTree(dir);
      const p = checkCounts(t, c, childMountCount(t.mount, s.targets.map((x) => x.mount)));
      ctx.say(`${t.mount}: ${c.entries} entries (image ${t.files ?? '?'}), ${c.fileBytes} bytes in files (image ${t.bytesUsed ?? '?'} bytes of data)${p.length ? '' : ': ok'}`);
      problems.push(...p);
      if (t.aclUrl) {
        const url = new URL(t.aclUrl, s.appliance).toString();
        const r = await fetch(url, { headers: { authorization: `Bearer ${s.token}` }, signal: AbortSignal.timeout(60_000) });
        if (!r.ok) throw new Error(`${t.mount}: ACL file ${url}: HTTP ${r.status}`);
        const file = `acl-${t.partition}-${t.disk}.txt`;
        writeFileSync(join(s.paths.stage2, 'tmp', file), Buffer.from(await r.arrayBuffer()));
        await ctx.exec(s.busybox, ['chroot', s.paths.stage2, 'sh', '-c', `cd /target${t.mount === '/' ? '' : t.mount} && setfacl --restore=/tmp/${file}`], { env: chrootEnv });
        ctx.say(`${t.mount}: ACLs restored from ${url}`);
      }
    }
    if (problems.length) throw new Error(problems.join('; '));
  },
};
