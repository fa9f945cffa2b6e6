// How the agent insists on finding its appliance, as the seed's stage1 did: a few tries with
// a growing pause, then a clear message and a reboot (the node PXE boots again, and kaboot
// gets another chance to answer).
export interface RetryPolicy {
  attempts: number;
  firstDelayMs: number;
  maxDelayMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { attempts: 5, firstDelayMs: 2000, maxDelayMs: 15000 };

export type AfterFailure = { kind: 'retry'; delayMs: number; message: string } | { kind: 'reboot'; message: string };

/** `attempt` counts from 1: what to do after that attempt failed. */
export function afterFailedAttempt(attempt: number, tried: string[], policy: RetryPolicy = defaultRetryPolicy): AfterFailure {
  const where = tried.length > 0 ? tried.join(', ') : 'no address (no kaboot.server= on the kernel command line and no DHCP next-server)';
  const base = `can't reach a kaboot appliance at ${where} (attempt ${attempt} of ${policy.attempts})`;
  if (attempt >= policy.attempts) return { kind: 'reboot', message: `${base}; rebooting` };
  const delayMs = Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** (attempt - 1));
  return { kind: 'retry', delayMs, message: `${base}; trying again in ${Math.round(delayMs / 1000)} s` };
}
