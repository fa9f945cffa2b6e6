// getstage2: the stage2 squashfs comes by the getstage2 KA session into RAM (as in the seed).
// stage2: it is mounted read-only at /stage2 with the node's /dev, /proc and /sys bound in
// and tmpfs on /stage2/tmp and /stage2/run; the real tools run as `chroot /stage2 TOOL`
// (busybox's mkfs and tar know no ext4 -t and no xattrs: they are never used for the clone).
import { mkdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Step } from '../steps.js';
import { joinForPlan, sessionProblem } from './ka-join.js';
import { tailFile } from './tail.js';
import { shq } from './shell.js';
import { planOf, type DeployState, type Paths } from './types.js';

export function stage2File(paths: Paths): string {
  return join(paths.run, 'stage2.sqfs');
}

/** The consumer of the getstage2 stream: the bytes go to a file in RAM, errors beside it. */
export function stage2Consumer(busybox: string, file: string): string {
  return `${shq(busybox)} cat > ${shq(file)} 2> ${shq(`${file}.err`)}`;
}

/** busybox mount argv, in order: the squashfs, the kernel file systems bound, two tmpfs. */
export function stage2Mounts(paths: Paths, file: string): { target: string; args: string[] }[] {
  const r = paths.stage2;
  return [
    { target: r, args: ['mount', '-t', 'squashfs', '-o', 'ro,loop', file, r] },
    { target: join(r, 'dev'), args: ['mount', '-o', 'bind', paths.dev, join(r, 'dev')] },
    { target: join(r, 'proc'), args: ['mount', '-o', 'bind', paths.proc, join(r, 'proc')] },
    { target: join(r, 'sys'), args: ['mount', '-o', 'bind', paths.sys, join(r, 'sys')] },
    { target: join(r, 'tmp'), args: ['mount', '-t', 'tmpfs', '-o', 'mode=1777', 'tmpfs', join(r, 'tmp')] },
    { target: join(r, 'run'), args: ['mount', '-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', join(r, 'run')] },
  ];
}

/** The tools the deploy needs from stage2, by the paths Debian puts them at (usrmerge or not). */
export const stage2Tools = ['sh', 'sfdisk', 'wipefs', 'blkid', 'mkfs.ext4', 'mkswap', 'tar', 'zstd'];

export const getStage2Step: Step<DeployState> = {
  name: 'getstage2',
  async run(ctx) {
    const s = ctx.state;
    const ref = planOf(s).stage2;
    mkdirSync(s.paths.run, { recursive: true });
    const file = stage2File(s.paths);
    const tail = tailFile(`${file}.err`, (l) => ctx.say(`stage2 consumer: ${l}`));
    let r;
    try {
      r = await joinForPlan(ref, s.applianceHost, stage2Consumer(s.busybox, file), ctx.say, s.mac);
    } finally {
      tail.stop();
    }
    const bad = sessionProblem(ref, r, true);
    if (bad) throw new Error(bad);
    const size = statSync(file).size;
    if (size !== ref.bytes) throw new Error(`${file} holds ${size} bytes, the plan says ${ref.bytes}`);
    ctx.say(`stage2: ${size} bytes, SHA-256 ${ref.sha256} as planned`);
  },
};

export const mountStage2Step: Step<DeployState> = {
  name: 'stage2',
  async run(ctx) {
    const s = ctx.state;
    mkdirSync(s.paths.stage2, { recursive: true });
    for (const m of stage2Mounts(s.paths, stage2File(s.paths))) {
      await ctx.exec(s.busybox, m.args);
      s.mounted.push(m.target);
    }
    const missing = stage2Tools.filter((t) => !['usr/sbin', 'usr/bin', 'sbin', 'bin'].some((d) => existsSync(join(s.paths.stage2, d, t))));
    if (missing.length) throw new Error(`stage2 lacks ${missing.join(', ')}`);
    ctx.say(`stage2 mounted at ${s.paths.stage2}`);
  },
};
