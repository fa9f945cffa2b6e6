// Where each relay's SHA-256 is computed. Node's built-in crypto here hashes at about
// 0.5 GB/s (its OpenSSL does not use the CPU's SHA instructions), while `openssl dgst`
// does about 1.7 GB/s, and on the other core: feeding it through a pipe costs less CPU
// than hashing in the event loop. 'auto' uses openssl when it is on PATH.
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
  if (choice === 'node') return undefined;
  if (choice === 'openssl' || onPath('openssl')) return opensslHasher;
  return undefined;
}
