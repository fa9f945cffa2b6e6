// Where each relay's SHA-256 is computed. Node's createHash('sha256') runs at about
// 1.1 GB/s here (OpenSSL 3 with the CPU's SHA instructions) over the ring's own views,
// with no copy; `openssl dgst` on a pipe (1.6 GB/s) costs a pipe write, a pipe read and
// another process per byte, which cost more CPU in total than they save (measured in
// docs/bench-ka.md). 'auto' is Node's own; 'openssl' stays for comparison.
import { spawn } from 'node:child_process';
import type { ExternalHasher } from './relay.js';
import { StdinSink } from './sinks.js';

export type HashChoice = 'auto' | 'node' | 'openssl';

export function opensslHasher(): ExternalHasher {
  const p = spawn('openssl', ['dgst', '-sha256', '-binary'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  p.stdout.on('data', (b: Buffer) => out.push(b));
  p.stderr.on('data', (b: Buffer) => err.push(b));
  p.stdin.on('error', () => {
    /* reported through the exit status */
  });
  const digest = new Promise<Buffer>((resolve, reject) => {
    p.once('error', (e) => reject(new Error(`openssl dgst: ${e.message}`)));
    p.once('close', (code, signal) => {
      const d = Buffer.concat(out);
      if (code !== 0 || d.length !== 32) reject(new Error(`openssl dgst exited ${code ?? signal}: ${Buffer.concat(err).toString().trim()}`));
      else resolve(d);
    });
  });
  return { sink: new StdinSink(p.stdin), digest };
}

/** The relay's hasher option for a choice; undefined means Node's own crypto. */
export function hasherFor(choice: HashChoice = 'auto'): (() => ExternalHasher) | undefined {
  return choice === 'openssl' ? opensslHasher : undefined;
}
