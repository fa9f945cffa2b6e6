// The agent's steps: each has a name and a run(ctx). Commands run through ctx.exec, whose
// output goes line by line to the console and to the appliance's log for this node.
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import type { AgentLine } from './log-client.js';

export type LineSink = (l: AgentLine) => void;

export interface ExecOutcome {
  exitCode: number;
  stdout: string[];
  stderr: string[];
}

export class StepCommandError extends Error {
  constructor(readonly command: string, readonly outcome: ExecOutcome) {
    super(`${command} exited with ${outcome.exitCode}${outcome.stderr.length ? `: ${outcome.stderr.slice(-3).join(' | ')}` : ''}`);
  }
}

export interface StepContext<S> {
  step: string;
  state: S;
  /** runs a command, streams its lines; throws StepCommandError on a non-zero exit unless allowFailure */
  exec(cmd: string, args: string[], opts?: { allowFailure?: boolean; env?: Record<string, string>; timeoutMs?: number }): Promise<ExecOutcome>;
  say(line: string): void;
}

export interface Step<S> {
  name: string;
  run(ctx: StepContext<S>): Promise<void>;
}

export type StepsOutcome = { ok: true } | { ok: false; step: string; error: string };

export function consoleSink(write: (s: string) => void = (s) => process.stderr.write(s)): LineSink {
  return (l) => write(`[${l.step}]${l.stream === 'stderr' ? '!' : ' '} ${l.line}\n`);
}

export async function runSteps<S>(steps: Step<S>[], state: S, sinks: LineSink[]): Promise<StepsOutcome> {
  const emit = (step: string, stream: AgentLine['stream'], line: string) => {
    const l: AgentLine = { step, stream, line, ts: new Date().toISOString() };
    for (const s of sinks) s(l);
  };
  for (const step of steps) {
    const ctx: StepContext<S> = {
      step: step.name,
      state,
      say: (line) => emit(step.name, 'agent', line),
      exec: (cmd, args, opts = {}) => execStreamed(cmd, args, opts, (stream, line) => emit(step.name, stream, line)),
    };
    emit(step.name, 'agent', `step ${step.name}: start`);
    try {
      await step.run(ctx);
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      emit(step.name, 'agent', `step ${step.name}: failed: ${error}`);
      return { ok: false, step: step.name, error };
    }
    emit(step.name, 'agent', `step ${step.name}: done`);
  }
  return { ok: true };
}

async function execStreamed(cmd: string, args: string[], opts: { allowFailure?: boolean; env?: Record<string, string>; timeoutMs?: number }, line: (stream: 'stdout' | 'stderr', text: string) => void): Promise<ExecOutcome> {
  const command = [cmd, ...args].join(' ');
  const p = execa(cmd, args, { reject: false, buffer: false, stdin: 'ignore', env: opts.env, timeout: opts.timeoutMs });
  const out: ExecOutcome = { exitCode: -1, stdout: [], stderr: [] };
  const read = (stream: 'stdout' | 'stderr') => {
    const src = p[stream];
    if (!src) return Promise.resolve();
    const rl = createInterface({ input: src, crlfDelay: Infinity });
    rl.on('line', (text) => {
      out[stream].push(text);
      if (out[stream].length > 1000) out[stream].shift();
      line(stream, text);
    });
    return new Promise<void>((r) => rl.once('close', () => r()));
  };
  const [result] = await Promise.all([p, read('stdout'), read('stderr')]);
  out.exitCode = result.exitCode ?? (result.failed ? 127 : -1);
  if (result.failed && result.exitCode === undefined) line('stderr', result.shortMessage ?? `${command}: could not run`);
  if (out.exitCode !== 0 && !opts.allowFailure) throw new StepCommandError(command, out);
  return out;
}
