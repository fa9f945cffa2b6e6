// Shared pieces of the TFTP benchmarks: a namespace per server (each peer owns port 69
// on its own loopback), test files, timing of client runs, CPU pinning, and the table.
import { randomFillSync } from 'node:crypto';
import { mkdtemp, writeFile, rm, chmod, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { NetLab } from '../../test/helpers/netns.js';
import { startPeer, sha256File, fetchCommand, type PeerName, type RunningTftpServer, type ClientName, type FetchOptions } from './tftp-peers.js';

export const MiB = 1024 * 1024;

export interface PeerUnderTest {
  name: PeerName;
  ns: string;
  server: RunningTftpServer;
}

export interface BenchLab {
  lab: NetLab;
  root: string;
  peers: PeerUnderTest[];
  close(): Promise<void>;
}

/** Files of random bytes in a fresh, world-readable folder (dnsmasq serves only those). */
export async function makeRoot(files: Record<string, number>): Promise<string> {
  const base = await mkdtemp(join(tmpdir(), 'kaboot-bench-'));
  await chmod(base, 0o755);
  const root = join(base, 'root');
  await mkdir(root, { mode: 0o755 });
  for (const [name, size] of Object.entries(files)) {
    const buf = Buffer.allocUnsafe(size);
    for (let off = 0; off < size; off += MiB) randomFillSync(buf, off, Math.min(MiB, size - off));
    await writeFile(join(root, name), buf, { mode: 0o644 });
  }
  return root;
}

export async function startBenchLab(names: PeerName[], files: Record<string, number>, kabootArgs: string[] = []): Promise<BenchLab> {
  const root = await makeRoot(files);
  const lab = await NetLab.create('tbch');
  const peers: PeerUnderTest[] = [];
  const close = async () => {
    for (const p of peers) await p.server.stop().catch(() => undefined);
    await lab.destroy();
    await rm(join(root, '..'), { recursive: true, force: true });
  };
  try {
    for (const name of names) {
      const host = await lab.host(name.replace(/[^a-z]/g, '').slice(0, 6));
      const server = await startPeer(name, lab, { ns: host.ns, root, address: '127.0.0.1', extraArgs: kabootArgs });
      peers.push({ name, ns: host.ns, server });
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { lab, root, peers, close };
}

/** Pin every thread of a running server (and its future children) to `cpus`. */
export async function pinProcess(pid: number, cpus: string): Promise<void> {
  await execa('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdout: 'ignore' });
}

export function allCpus(): string {
  return `0-${Math.max(0, (globalThis.navigator?.hardwareConcurrency ?? 2) - 1)}`;
}

/** Fetch once to a file and compare with the source: a benchmark of wrong bytes is worthless. */
export async function verifyFetch(bl: BenchLab, p: PeerUnderTest, client: ClientName, file: string, o: FetchOptions): Promise<void> {
  const out = join(bl.root, '..', `verify-${p.name}-${client}`);
  const r = await bl.lab.exec(p.ns, fetchCommand(client, '127.0.0.1', file, out, o), { reject: false, timeout: 300_000 });
  if (r.exitCode !== 0) throw new Error(`${client} from ${p.name}: exit ${r.exitCode} ${String(r.stderr)}`);
  const [a, b] = await Promise.all([sha256File(out), sha256File(join(bl.root, file))]);
  await rm(out, { force: true });
  if (a !== b) throw new Error(`${client} from ${p.name}: bytes differ`);
}

/** One timed fetch to /dev/null; MB/s (10^6 bytes per second). */
export async function timedFetch(bl: BenchLab, p: PeerUnderTest, client: ClientName, file: string, bytes: number, o: FetchOptions): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await bl.lab.exec(p.ns, fetchCommand(client, '127.0.0.1', file, '/dev/null', o), { reject: false, timeout: 300_000 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.exitCode !== 0) throw new Error(`${client} from ${p.name}: exit ${r.exitCode} ${String(r.stderr)}`);
  return bytes / 1e6 / seconds;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export function printTable(title: string, header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? c.toFixed(c >= 100 ? 0 : c >= 10 ? 1 : 2) : c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const line = (r: (string | number)[]) => '| ' + r.map((c, i) => String(c).padEnd(widths[i] as number)).join(' | ') + ' |';
  console.log(`\n${title}\n`);
  console.log(line(header));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const r of cells.slice(1)) console.log(line(r));
}
