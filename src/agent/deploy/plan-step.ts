// plan: GET /api/nodes/:mac/plan?firmware=bios|uefi with the deployment token → DeployPlan.
// A node with nothing to do (404, or a plan for another MAC) stops here with the reason.
import { parsePlan, type DeployPlan } from '../../deploy/plan.js';
import type { Firmware } from '../firmware.js';
import type { Step } from '../steps.js';
import type { DeployState } from './types.js';
import { httpRequest } from '../http.js';

export function planUrl(base: string, mac: string, firmware: Firmware): string {
  return `${base}/api/nodes/${mac}/plan?firmware=${firmware}`;
}

/** Reads a plan answer: the plan, or an error that says what the appliance said. */
export function readPlanAnswer(status: number, body: string, mac: string, firmware: Firmware): DeployPlan {
  if (status !== 200) {
    let message = body.trim().slice(0, 300);
    try {
      const j = JSON.parse(body) as { message?: unknown; error?: unknown };
      if (typeof j.message === 'string') message = j.message;
      else if (typeof j.error === 'string') message = j.error;
    } catch { /* not JSON: the text as it is */ }
    throw new Error(`the appliance gave no plan for ${mac}: HTTP ${status}${message ? `: ${message}` : ''}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    throw new Error('the plan is not JSON');
  }
  const plan = parsePlan(v);
  if (plan.mac.toLowerCase() !== mac.toLowerCase()) throw new Error(`the plan is for ${plan.mac}, this node is ${mac}`);
  if (plan.firmware !== firmware) throw new Error(`the plan is for ${plan.firmware}, this node booted ${firmware}`);
  return plan;
}

export const planStep: Step<DeployState> = {
  name: 'plan',
  async run(ctx) {
    const s = ctx.state;
    const url = planUrl(s.appliance, s.mac, s.firmware);
    // a refusal is an answer; an appliance that does not answer, or fails inside, is asked again
    let answer: { status: number; body: string } | undefined;
    for (let attempt = 1; !answer; attempt++) {
      try {
        const r = await httpRequest(url, { headers: { authorization: `Bearer ${s.token}` }, signal: AbortSignal.timeout(30_000) });
        const body = r.text();
        if (r.status < 500 || attempt >= 4) answer = { status: r.status, body };
        else ctx.say(`plan: HTTP ${r.status}; asking again`);
      } catch (e) {
        if (attempt >= 4) throw new Error(`no answer from ${url}: ${(e as Error).message}`);
        ctx.say(`plan: ${(e as Error).message}; asking again`);
      }
      if (!answer) await new Promise((res) => setTimeout(res, 2000 * attempt));
    }
    const plan = readPlanAnswer(answer.status, answer.body, s.mac, s.firmware);
    s.plan = plan;
    ctx.say(`deployment ${plan.deployment}: image ${plan.image}, ${plan.firmware}, ${plan.disks.length} disk(s), ` +
      `${plan.disks.reduce((n, d) => n + d.filesystems.length, 0)} file system(s), bootloader ${plan.bootloader.kind}${plan.hostname ? `, hostname ${plan.hostname}` : ''}${plan.reboot ? ', reboot at the end' : ''}`);
    s.onPlan?.(plan);
  },
};
