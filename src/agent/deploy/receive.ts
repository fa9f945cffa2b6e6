// receive: one KA session per file system; the consumer unpacks the zstd tar stream into the
// mounted file system with stage2's GNU tar (xattrs, ACLs, numeric owners, holes), and its
// error output is kept in a file and put in the log. Raw partitions (ka-d.sh -D) and the MBR
// (-m/-M) come the same way, written to the device.
import { mkdirSync, statfsSync } from 'node:fs';
import { join, posix } from 'node:path';
import { tarExtractArgs } from '../../images/capture.js';
import type { SessionRef } from '../../deploy/plan.js';
import { partitionDevice } from '../../images/layout.js';
import type { Step } from '../steps.js';
import { joinForPlan, sessionProblem } from './ka-join.js';
import { tailFile } from './tail.js';
import { shJoin, shq, targetDir } from './shell.js';
import { planOf, type DeployState } from './types.js';

/** An exclude (a path below the mount point) as tar patterns: its contents, whatever the archive's "./" prefix. */
export function excludePatterns(excludes: string[]): string[] {
  return excludes.flatMap((x) => {
    const rel = x.replace(/^\/+|\/+$/g, '');
    if (!rel || rel.split('/').includes('..')) return [];
    return [`--exclude=./${rel}/*`, `--exclude=${rel}/*`];
  });
}

/**
 * The tar that unpacks into `dir` (a path inside stage2: /target/boot), behind zstd -dc.
 * dash has no pipefail: zstd's status goes through a file, so a broken stream fails the
 * consumer even when tar took what came as a whole archive.
 */
export function receiveScript(dir: string, excludes: string[], rcFile: string): string {
  const tar = ['tar', ...tarExtractArgs(dir), '--anchored', ...excludePatterns(excludes)];
  return [
    `{ zstd -dc; echo $? > ${shq(rcFile)}; } | ${shJoin(tar)}`,
    't=$?',
    `z=$(cat ${shq(rcFile)} 2>/dev/null || echo none)`,
    'if [ "$z" != 0 ]; then echo "zstd -dc exited with $z" >&2; exit 97; fi',
    'exit $t',
  ].join('\n');
}

/** The consumer command (run by the initrd's sh): the script in stage2's chroot, stderr to errFile. */
export function chrootConsumer(busybox: string, stage2: string, script: string, errFile: string): string {
  return `${shq(busybox)} chroot ${shq(stage2)} /bin/sh -c ${shq(script)} 2> ${shq(errFile)}`;
}

/** A raw partition's stream (zstd-compressed by the appliance) onto its device. */
export function rawScript(device: string, rcFile: string): string {
  return [
    `{ zstd -dc; echo $? > ${shq(rcFile)}; } | dd of=${shq(device)} bs=4M conv=fsync iflag=fullblock status=none`,
    't=$?',
    `z=$(cat ${shq(rcFile)} 2>/dev/null || echo none)`,
    'if [ "$z" != 0 ]; then echo "zstd -dc exited with $z" >&2; exit 97; fi',
    'exit $t',
  ].join('\n');
}

/** The MBR's boot code: the session carries the 446 bytes as they are (ka-d.sh -M); the partition table after them stays. */
export function mbrScript(disk: string): string {
  return `dd of=${shq(disk)} bs=446 count=1 conv=notrunc,fsync iflag=fullblock status=none`;
}

/** Space used on a mounted file system, in bytes (statfs), or undefined. */
export function usedBytes(dir: string): number | undefined {
  try {
    const st = statfsSync(dir);
    return (st.blocks - st.bfree) * st.bsize;
  } catch {
    return undefined;
  }
}

async function receiveOne(ctx: Parameters<Step<DeployState>['run']>[0], ref: SessionRef, script: string, tag: string, progressDir?: string): Promise<void> {
  const s = ctx.state;
  const err = join(s.paths.run, `${tag}.err`);
  const tail = tailFile(err, (l) => ctx.say(`${tag} consumer: ${l}`));
  // progress for `kaboot logs -f`: what the file system holds, every 10 s
  const start = progressDir ? usedBytes(progressDir) : undefined;
  const progress = start === undefined ? undefined : setInterval(() => {
    const now = usedBytes(progressDir!);
    if (now !== undefined) ctx.say(`${tag}: ${((now - start) / 1e6).toFixed(0)} MB written so far${ref.live ? '' : ` (stream ${(ref.bytes / 1e6).toFixed(0)} MB compressed)`}`);
  }, 10_000);
  let r;
  try {
    r = await joinForPlan(ref, s.applianceHost, chrootConsumer(s.busybox, s.paths.stage2, script, err), ctx.say, s.mac);
  } finally {
    tail.stop();
    if (progress) clearInterval(progress);
  }
  const bad = sessionProblem(ref, r, true);
  if (bad) throw new Error(bad);
}

export const receiveStep: Step<DeployState> = {
  name: 'receive',
  async run(ctx) {
    const s = ctx.state;
    const plan = planOf(s);
    mkdirSync(s.paths.run, { recursive: true });
    for (const t of s.targets) {
      if (!t.session) continue;
      if (!t.mount) throw new Error(`${t.device}: the plan sends files (session ${t.session.name}) to a file system without a mount point`);
      const inside = posix.join('/target', t.mount);
      const tag = `receive-${t.session.name}`;
      ctx.say(`${t.mount}: receiving into ${t.device}${t.exclude.length ? `, leaving out ${t.exclude.join(' ')}` : ''}`);
      await receiveOne(ctx, t.session, receiveScript(inside, t.exclude, `/tmp/${tag}.zstd-rc`), tag, targetDir(s.paths.stage2, t.mount));
      for (const x of t.exclude) {
        const rel = x.replace(/^\/+|\/+$/g, '');
        if (rel && !rel.split('/').includes('..')) mkdirSync(join(targetDir(s.paths.stage2, t.mount), rel), { recursive: true });
      }
    }
    for (const d of plan.disks) {
      const disk = s.disks.find((x) => x.index === plan.disks.indexOf(d));
      if (!disk) continue;
      for (const raw of d.raw) {
        const dev = partitionDevice(disk.device, raw.partition);
        ctx.say(`partition ${raw.partition}: raw copy to ${dev}`);
        await receiveOne(ctx, raw.session, rawScript(dev, `/tmp/raw-${raw.session.name}.zstd-rc`), `raw-${raw.session.name}`);
      }
      if (d.mbr) {
        ctx.say(`${disk.device}: boot code (446 bytes) from session ${d.mbr.name}`);
        await receiveOne(ctx, d.mbr, mbrScript(disk.device), `mbr-${d.mbr.name}`);
      }
    }
  },
};
