// Where each relay's SHA-256 is computed. Node's createHash('sha256') runs at about
// 1.1 GB/s here (OpenSSL 3 with the CPU's SHA instructions) over the ring's own views,
// with no copy; `openssl dgst` on a pipe (1.6 GB/s) costs a pipe write, a pipe read and
// another process per byte, which cost more CPU in total than they save (measured in
// docs/bench-ka.md). 'auto' is Node's own; 'openssl' stays for comparison.
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { execa } from 'execa';
import type { ExternalHasher } from './relay.js';
import { StdinSink } from './sinks.js';

export type HashChoice = 'auto' | 'node' | 'openssl';

export function onPath(cmd: string, env = process.env): boolean {
  return (env.PATH ?? '').split(delimiter).some((d) => d && existsSync(join(d, cmd)));
}

export function opensslHasher(): ExternalHasher {
  const p = execa('openssl', ['dgst', '-sha256', '-binary'], { stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', encoding: 'buffer', reject: false });
  const stdin = p.stdin;
  if (!stdin) throw new Error('openssl has no stdin');
  stdin.on('error', () => {
    /* reported through the exit status */
  });
  const digest = p.then((r) => {
    const out = Buffer.from(r.stdout as Uint8Array);
    if (r.exitCode !== 0 || out.length !== 32) throw new Error(`openssl dgst exited ${r.exitCode ?? r.signal}: ${Buffer.from(r.stderr as Uint8Array).toString().trim()}`);
    return out;
  });
  return { sink: new StdinSink(stdin), digest };
}

/** The relay's hasher option for a choice; undefined means Node's own crypto. */
export function hasherFor(choice: HashChoice = 'auto'): (() => ExternalHasher) | undefined {
  return choice === 'openssl' ? opensslHasher : undefined;
}
