// Shared by the ka-*.test.ts integration tests: a coordinator and N nodes, each in
// its own namespace on one bridge, running the real `kaboot ka-server` and
// `kaboot ka-client` (compiled dist/), with seeded test data in /dev/shm.
import { existsSync, readFileSync, statSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { NetLab, type Host } from '../helpers/netns.js';
import { kabootBin, repoRoot } from '../helpers/kaboot-process.js';
import type { NodeResult } from '../../src/ka/node.js';

export const SECRET = 'kaboot-ka-test-secret';
export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;

export function requireBuild(): void {
  if (!existsSync(join(repoRoot, 'dist/src/cli/ka-server.js'))) throw new Error('dist/ is missing: run npm run build first');
}

/** A scratch folder in /dev/shm (RAM: the test data and spool must not measure the disk). */
export function scratch(tag: string): string {
  const dir = `/dev/shm/kaboot-ka-${tag}-${process.pid}`;
  mkdirSync(dir, { recursive: true });
  // a gigabyte of RAM must not outlive an interrupted run
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `size` bytes of seeded pseudo-random data (AES-CTR keystream) and its SHA-256. */
export async function makeData(dir: string, size: number, seed = 'kaboot'): Promise<{ file: string; sha256: string }> {
  const file = join(dir, `data-${size}-${seed}`);
  await execa('bash', ['-c', `openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass pass:${seed} < /dev/zero 2>/dev/null | head -c ${size} > ${file}`]);
  if (statSync(file).size !== size) throw new Error('test data generation failed');
  const { stdout } = await execa('openssl', ['dgst', '-sha256', '-r', file]);
  return { file, sha256: stdout.split(' ')[0] as string };
}

export interface KaProc {
  proc: ResultPromise;
  logFile: string;
  log(): string;
  logLines(): Record<string, unknown>[];
}

function wrap(proc: ResultPromise, logFile: string): KaProc {
  const log = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  return {
    proc,
    logFile,
    log,
    logLines: () =>
      log()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .flatMap((l) => {
          try {
            return [JSON.parse(l) as Record<string, unknown>];
          } catch {
            return [];
          }
        }),
  };
}

export interface KaLab {
  lab: NetLab;
  dir: string;
  srv: Host;
  nodes: Host[];
  server(args: string[]): KaProc;
  client(i: number, args: string[], extra?: { consumer?: string; secret?: string }): KaProc;
  /** the consumer used by default: openssl writes the SHA-256 of what it read to out-<i> */
  outFile(i: number): string;
  digestOf(i: number): string;
  destroy(): Promise<void>;
}

export async function kaLab(tag: string, n: number, subnet: number): Promise<KaLab> {
  requireBuild();
  const lab = await NetLab.create(tag);
  const dir = scratch(tag);
  const srv = await lab.host('srv', { cidr: `10.${subnet}.0.1/24` });
  const nodes: Host[] = [];
  for (let i = 0; i < n; i++) nodes.push(await lab.host(`n${i}`, { cidr: `10.${subnet}.0.${11 + i}/24` }));
  const outFile = (i: number) => join(dir, `out-${i}`);
  return {
    lab,
    dir,
    srv,
    nodes,
    outFile,
    digestOf: (i) => (existsSync(outFile(i)) ? (readFileSync(outFile(i), 'utf8').split(' ')[0] ?? '') : ''),
    server(args) {
      const logFile = join(dir, `server-${Date.now()}.log`);
      const proc = lab.spawn(srv.ns, ['node', kabootBin, 'ka-server', '--secret', SECRET, '--spool', dir, ...args], { stdout: 'pipe', stderr: { file: logFile } });
      return wrap(proc, logFile);
    },
    client(i, args, extra = {}) {
      const logFile = join(dir, `client-${i}-${Date.now()}.log`);
      const consumer = extra.consumer ?? `openssl dgst -sha256 -r > ${outFile(i)}`;
      const proc = lab.spawn((nodes[i] as Host).ns, ['node', kabootBin, 'ka-client', '--name', `n${i}`, '--secret', extra.secret ?? SECRET, '-e', consumer, ...args], { stdout: 'pipe', stderr: { file: logFile } });
      return wrap(proc, logFile);
    },
    async destroy() {
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Wait until `cond` holds, polling; throws with `what` after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function serverReady(s: KaProc): Promise<void> {
  await until(() => s.log().includes('listening, control port') || s.proc.exitCode !== null, 20_000, 'ka-server to listen');
  if (s.proc.exitCode !== null) throw new Error(`ka-server exited early:\n${s.log()}`);
}

export interface ServerJson {
  ok: boolean;
  total: number;
  digest: string;
  transferMs: number;
  throughput: number;
  refused: number;
  droppedPeers: number;
  spoolGapBytes: number;
  cpuMs: number;
  nodes: { id: number; name: string; state: string; ok: boolean; bytes: number; rate: number; digestOk: boolean | null; exitCode: number | null; finishedAfterMs: number | null; movedToTail: number; parent: number | null; mode: string; error: string | null }[];
  events: { atMs: number; kind: string; node?: number; detail?: Record<string, unknown> }[];
}

export async function serverResult(s: KaProc): Promise<{ exitCode: number | undefined; json: ServerJson }> {
  const r = await s.proc;
  const out = String(r.stdout ?? '');
  try {
    return { exitCode: r.exitCode, json: JSON.parse(out) as ServerJson };
  } catch {
    throw new Error(`ka-server printed no JSON (exit ${r.exitCode}):\n${out}\n${s.log().slice(-4000)}`);
  }
}

/** What `kaboot ka-client` prints: its NodeResult as JSON. */
export type ClientJson = Pick<NodeResult, 'ok' | 'bytes' | 'rate' | 'digestOk' | 'digest' | 'exitCode' | 'error' | 'cpuMs' | 'childGapBytes'>;

export async function clientResult(c: KaProc): Promise<{ exitCode: number | undefined; json: ClientJson | null }> {
  const r = await c.proc;
  const out = String(r.stdout ?? '').trim();
  try {
    return { exitCode: r.exitCode, json: JSON.parse(out.split('\n').pop() ?? '') as ClientJson };
  } catch {
    return { exitCode: r.exitCode, json: null };
  }
}

export const mbps = (bytesPerSec: number) => (bytesPerSec / MiB).toFixed(1);

/**
 * Rejects as soon as one of `clients` exits non-zero, with its log: a client that dies
 * before joining (a dist/ rebuilt under it, say) leaves a session waiting for N nodes
 * forever, and the test would only see its own timeout.
 */
export function anyClientFails(clients: KaProc[]): Promise<never> {
  return new Promise<never>((_, reject) => {
    clients.forEach((c, i) => {
      void clientResult(c).then((r) => {
        if (r.exitCode !== 0) reject(new Error(`client ${i} exited with ${r.exitCode} before the session ended:\n${c.log().slice(-2000)}`));
      });
    });
  });
}
