// Joining a KA session from the agent: the coordinator runs in `kaboot serve` on the
// appliance (its port is in the plan), the consumer is a shell command fed with the stream.
// The session library logs through pino's interface; here its lines go to the step's log.
import type { Logger } from 'pino';
import { joinSession, type NodeResult } from '../../ka/node.js';
import type { SessionRef } from '../../deploy/plan.js';
import { cpuSnapshot, describeCpu } from '../cpu-account.js';

type Say = (line: string) => void;

/** "msg key=value key=value" from pino's (obj, msg) or (msg) call forms. */
export function formatLogCall(args: unknown[]): string {
  const [a, b] = args;
  if (typeof a === 'string') return a;
  const msg = typeof b === 'string' ? b : '';
  if (a instanceof Error) return `${msg ? `${msg}: ` : ''}${a.message}`;
  if (a && typeof a === 'object') {
    const kv = Object.entries(a as Record<string, unknown>).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
    return [msg, ...kv].filter(Boolean).join(' ');
  }
  return msg;
}

/** A pino-shaped logger that writes info and above through `say` (debug and trace dropped). */
export function sayLogger(say: Say): Logger {
  const at = (level: string) => (...args: unknown[]) => say(`ka${level === 'info' ? '' : ` ${level}`}: ${formatLogCall(args)}`);
  const quiet = () => undefined;
  const l: Record<string, unknown> = {
    level: 'info',
    info: at('info'), warn: at('warn'), error: at('error'), fatal: at('fatal'),
    debug: quiet, trace: quiet, silent: quiet,
    isLevelEnabled: (lvl: string) => !['debug', 'trace'].includes(lvl),
  };
  l.child = () => l;
  return l as unknown as Logger;
}

/** Why a session's result is not what the plan said, or undefined when it is. */
export function sessionProblem(ref: SessionRef, r: NodeResult, hasConsumer: boolean): string | undefined {
  if (r.error) return `session ${ref.name}: ${r.error}`;
  if (!r.digestOk) return `session ${ref.name}: the stream's SHA-256 does not match the coordinator's`;
  // a live golden's stream has no size or digest before it ends: the coordinator's digest (checked above) is the proof
  if (!ref.live && r.bytes !== ref.bytes) return `session ${ref.name}: received ${r.bytes} bytes, the plan says ${ref.bytes}`;
  if (!ref.live && r.digest !== ref.sha256) return `session ${ref.name}: SHA-256 ${r.digest ?? 'none'}, the plan says ${ref.sha256}`;
  if (hasConsumer && r.exitCode !== 0) return `session ${ref.name}: the consumer exited with ${r.exitCode ?? 'a signal'}`;
  if (!r.ok) return `session ${ref.name}: failed`;
  return undefined;
}

export async function joinForPlan(ref: SessionRef, host: string, command: string, say: Say, name: string): Promise<NodeResult> {
  say(`joining session ${ref.name} at ${host}:${ref.port} (${ref.live ? 'live from the golden' : `${ref.bytes} bytes`})`);
  const cpu0 = cpuSnapshot();
  const r = await joinSession({
    session: ref.name,
    // the hex text itself is the secret, as `kaboot ka-client --secret` and startSession take a string
    secret: ref.secret,
    coordinator: { host, port: ref.port },
    command,
    dataPort: 0,
    hash: 'node',
    name,
    logger: sayLogger(say),
  });
  say(`session ${ref.name}: ${r.bytes} bytes in ${(r.durationMs / 1000).toFixed(1)} s (${(r.rate / 1e6).toFixed(1)} MB/s), digest ${r.digestOk ? 'ok' : 'BAD'}, consumer exit ${r.exitCode ?? '-'}`);
  say(`session ${ref.name} cpu: agent ${(r.cpuMs / 1000).toFixed(1)} s; node ${describeCpu(cpu0, cpuSnapshot())}`);
  return r;
}
