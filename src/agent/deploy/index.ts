// The deploy steps, in order, after network and find-appliance (src/agent/main.ts).
import type { Step } from '../steps.js';
import { planStep } from './plan-step.js';
import { getStage2Step, mountStage2Step } from './stage2.js';
import { partitionStep } from './disk.js';
import { formatStep, mountStep } from './format.js';
import { receiveStep } from './receive.js';
import { verifyStep } from './verify.js';
import { prepareStep } from './prepare.js';
import { bootloaderStep } from './bootloader.js';
import { unmountStep, reportStep } from './finish.js';
import type { DeployState } from './types.js';

export const deploySteps: Step<DeployState>[] = [
  planStep, getStage2Step, mountStage2Step, partitionStep, formatStep, mountStep, receiveStep, verifyStep, prepareStep, bootloaderStep, unmountStep, reportStep,
];

/** Each step first tells the appliance where the node is (best effort: the log says the rest). */
export function withStatus(steps: Step<DeployState>[]): Step<DeployState>[] {
  return steps.map((st) => st.name === 'report' ? st : {
    name: st.name,
    async run(ctx) {
      await ctx.state.log.status('deploying', st.name).catch((e: unknown) => ctx.say(`status deploying/${st.name} not sent: ${(e as Error).message}`));
      await st.run(ctx);
    },
  });
}

export { type DeployState, defaultPaths } from './types.js';
export { unmountAll } from './finish.js';
