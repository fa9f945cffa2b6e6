// The node's consumer and the source's command: `sh -c COMMAND` through
// node:child_process (execa costs 0.1 s of start-up per process, and every node pays
// it), with the exit as a promise that never rejects.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';

export interface ShellExit {
  /** null when it died by a signal or could not start */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  error?: string;
}

export interface ShellProcess {
  child: ChildProcess;
  exited: Promise<ShellExit>;
  /** true while it runs */
  running(): boolean;
}

export function runShell(command: string, stdio: StdioOptions): ShellProcess {
  const child = spawn('/bin/sh', ['-c', command], { stdio });
  let done = false;
  const exited = new Promise<ShellExit>((resolve) => {
    child.once('error', (e) => {
      if (done) return;
      done = true;
      resolve({ exitCode: null, signal: null, error: e.message });
    });
    child.once('close', (exitCode, signal) => {
      if (done) return;
      done = true;
      resolve({ exitCode, signal });
    });
  });
  return { child, exited, running: () => !done && child.exitCode === null && child.signalCode === null };
}
