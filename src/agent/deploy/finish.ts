// The end: everything written out and unmounted (in the reverse order of mounting), then the
// appliance told, which flips the node to local boot; then the reboot, when the plan asks.
import { mkdirSync } from 'node:fs';
import type { Step, StepContext } from '../steps.js';
import type { DeployState } from './types.js';

/**
 * `mount ARGS… dir` once per deploy, recorded in s.mounted so unmountAll undoes it. False
 * when the mount failed and `allowFailure` was given (otherwise the failure throws).
 */
export async function mountOnce(ctx: StepContext<DeployState>, dir: string, args: string[], opts: { allowFailure?: boolean } = {}): Promise<boolean> {
  const s = ctx.state;
  if (s.mounted.includes(dir)) return true;
  mkdirSync(dir, { recursive: true });
  const r = await ctx.exec(s.busybox, ['mount', ...args, dir], opts);
  if (r.exitCode !== 0) return false;
  s.mounted.push(dir);
  return true;
}

export async function unmountAll(ctx: StepContext<DeployState>): Promise<string[]> {
  const s = ctx.state;
  const left: string[] = [];
  await ctx.exec(s.busybox, ['sync'], { allowFailure: true });
  while (s.mounted.length > 0) {
    const dir = s.mounted.pop()!;
    const r = await ctx.exec(s.busybox, ['umount', dir], { allowFailure: true });
    if (r.exitCode !== 0) {
      const lazy = await ctx.exec(s.busybox, ['umount', '-l', dir], { allowFailure: true });
      if (lazy.exitCode !== 0) left.push(dir);
    }
  }
  return left;
}

/** Leaves stage2 mounted when `keepStage2` (a node that stays up for `kaboot exec`). */
export const unmountStep: Step<DeployState> = {
  name: 'unmount',
  async run(ctx) {
    const left = await unmountAll(ctx);
    if (left.length) throw new Error(`could not unmount ${left.join(', ')}`);
    ctx.say('all file systems written and unmounted');
  },
};

export const reportStep: Step<DeployState> = {
  name: 'report',
  async run(ctx) {
    const s = ctx.state;
    const plan = s.plan;
    const message = plan ? `image ${plan.image}, deployment ${plan.deployment}` : undefined;
    // the disk is done: a moment without the appliance must not turn that into a failure
    for (let attempt = 1; ; attempt++) {
      try {
        await s.log.status('deployed', 'report', message);
        break;
      } catch (e) {
        if (attempt >= 5) throw e;
        ctx.say(`status deployed not taken (${(e as Error).message}); trying again`);
        await new Promise((r) => setTimeout(r, 2000 * attempt));
      }
    }
    ctx.say('reported deployed');
  },
};
