// Remote commands (`kaboot exec NODE -- CMD`): the agent long-polls the appliance for a
// command, runs its argv in the initrd (stage2's tools as `chroot /stage2 TOOL`), streams
// its lines to the node's log under step `exec:<id>`, and posts the exit code. It runs from
// the moment the plan is known for the whole life of the agent, so a failed node can be looked at.
import { createInterface } from 'node:readline';
import { constants } from 'node:os';
import { execa } from 'execa';
import type { AgentLine } from './log-client.js';
import type { LineSink } from './steps.js';
import { httpRequest } from './http.js';

export interface RemoteCommand {
  id: string;
  argv: string[];
  timeout_s?: number;
}

export class CommandFormatError extends Error {
  override name = 'CommandFormatError';
}

/** A command answer checked: an id fit for a step name, a non-empty argv of strings. */
export function parseRemoteCommand(v: unknown): RemoteCommand {
  if (!v || typeof v !== 'object') throw new CommandFormatError('not an object');
  const o = v as Record<string, unknown>;
  if (typeof o.id !== 'string' || !/^[A-Za-z0-9._-]{1,48}$/.test(o.id)) throw new CommandFormatError('id: expected 1-48 letters, digits, ".", "_" or "-"');
  if (!Array.isArray(o.argv) || o.argv.length === 0 || !o.argv.every((a) => typeof a === 'string') || !(o.argv[0] as string)) {
    throw new CommandFormatError('argv: expected a non-empty list of strings');
  }
  const out: RemoteCommand = { id: o.id, argv: o.argv as string[] };
  if (o.timeout_s !== undefined && o.timeout_s !== null) {
    if (typeof o.timeout_s !== 'number' || !(o.timeout_s > 0)) throw new CommandFormatError('timeout_s: expected a positive number');
    out.timeout_s = o.timeout_s;
  }
  return out;
}

export function commandsUrl(base: string, mac: string, waitS: number): string {
  return `${base}/api/nodes/${mac}/commands?wait=${waitS}`;
}

export function resultUrl(base: string, mac: string, id: string): string {
  return `${base}/api/nodes/${mac}/commands/${id}/result`;
}

/** Exit code as a shell would give it: 124 on the timeout, 128+N for a signal, 127 when it could not start. */
export function exitCodeOf(r: { exitCode?: number; signal?: string; timedOut?: boolean; failed?: boolean }, signals: Record<string, number>): number {
  if (r.timedOut) return 124;
  if (typeof r.exitCode === 'number') return r.exitCode;
  if (r.signal && signals[r.signal] !== undefined) return 128 + signals[r.signal]!;
  return 127;
}

/** Pause after the n-th failure in a row of the poll itself (appliance away, route missing). */
export function pollBackoffMs(failures: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.min(failures - 1, 5));
}

export interface PollerOptions {
  base: string;
  mac: string;
  token: string;
  sinks: LineSink[];
  waitS?: number;
  cwd?: string;
  env?: Record<string, string>;
  /** sends the queued log lines: the command's output must be in the node's log before its result */
  flush?: () => Promise<unknown>;
}

export interface ExecPoller {
  /** resolves when stop() was called and the current poll or command ended */
  done: Promise<void>;
  stop(): void;
}

export function startExecPoller(o: PollerOptions): ExecPoller {
  const waitS = o.waitS ?? 20;
  const ctl = new AbortController();
  const emit = (step: string, stream: AgentLine['stream'], line: string) => {
    const l: AgentLine = { step, stream, line, ts: new Date().toISOString() };
    for (const s of o.sinks) s(l);
  };
  const auth = { authorization: `Bearer ${o.token}` };
  const sleep = (ms: number) => new Promise<void>((r) => {
    const t = setTimeout(r, ms);
    ctl.signal.addEventListener('abort', () => { clearTimeout(t); r(); }, { once: true });
  });

  const loop = async () => {
    let failures = 0;
    let lastComplaint = '';
    while (!ctl.signal.aborted) {
      let cmd: RemoteCommand | undefined;
      try {
        const r = await httpRequest(commandsUrl(o.base, o.mac, waitS), { headers: auth, signal: AbortSignal.any([ctl.signal, AbortSignal.timeout((waitS + 15) * 1000)]) });
        if (r.status === 204) {
          failures = 0;
          continue;
        }
        const text = r.text();
        if (r.status !== 200) throw new Error(`HTTP ${r.status} ${text.slice(0, 200)}`);
        cmd = parseRemoteCommand(JSON.parse(text));
        failures = 0;
      } catch (e) {
        if (ctl.signal.aborted) break;
        failures++;
        const why = `remote commands: ${(e as Error).message}`;
        if (why !== lastComplaint) emit('exec', 'agent', `${why}; trying again`);
        lastComplaint = why;
        await sleep(pollBackoffMs(failures));
        continue;
      }
      await runRemote(cmd);
    }
  };

  const runRemote = async (cmd: RemoteCommand) => {
    const step = `exec:${cmd.id}`;
    emit(step, 'agent', `$ ${cmd.argv.join(' ')}`);
    const p = execa(cmd.argv[0]!, cmd.argv.slice(1), {
      reject: false, buffer: false, stdin: 'ignore', cwd: o.cwd ?? '/', env: o.env,
      ...(cmd.timeout_s ? { timeout: cmd.timeout_s * 1000 } : {}),
    });
    const read = (stream: 'stdout' | 'stderr') => {
      const src = p[stream];
      if (!src) return Promise.resolve();
      const rl = createInterface({ input: src, crlfDelay: Infinity });
      rl.on('line', (text) => emit(step, stream, text.slice(0, 60_000)));
      return new Promise<void>((r) => rl.once('close', () => r()));
    };
    const [r] = await Promise.all([p, read('stdout'), read('stderr')]);
    const code = exitCodeOf({ exitCode: r.exitCode, signal: r.signal, timedOut: r.timedOut, failed: r.failed }, constants.signals as Record<string, number>);
    if (r.failed && r.exitCode === undefined) emit(step, 'stderr', r.shortMessage ?? 'could not run');
    emit(step, 'agent', `exit ${code}`);
    await o.flush?.().catch(() => undefined);
    for (let attempt = 1; attempt <= 5 && !ctl.signal.aborted; attempt++) {
      try {
        const res = await httpRequest(resultUrl(o.base, o.mac, cmd.id), {
          method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ exit_code: code }), signal: AbortSignal.timeout(10_000),
        });
        if (res.ok || (res.status >= 400 && res.status < 500)) {
          if (!res.ok) emit(step, 'agent', `result refused: HTTP ${res.status} ${res.text().slice(0, 200)}`);
          return;
        }
      } catch { /* the appliance away for a moment: try again */ }
      await sleep(pollBackoffMs(attempt));
    }
    emit(step, 'agent', 'could not deliver the result');
  };

  const done = loop();
  return { done, stop: () => ctl.abort() };
}
