// The broadcast bench's network: one source namespace and N receiver namespaces on one
// bridge, every veth end optionally held to 1 Gbit/s by tbf (eth0 in each host, and its
// port on the bridge in the switch namespace), and the small tools a run needs: a
// receiver wrapped in GNU time for its CPU, waiting for listeners, host CPU from
// /proc/stat, and ending every process left in the lab's namespaces.
import { execa, type ResultPromise } from 'execa';
import { readFileSync } from 'node:fs';
import { NetLab, type Host } from '../../test/helpers/netns.js';

export const TBF = 'tbf rate 1gbit burst 256kb latency 50ms';
const SUBNET = '10.77.0';

export interface BroadcastLab {
  lab: NetLab;
  source: Host;
  receivers: Host[];
  throttled: boolean;
  /** every namespace of the lab but the switch's */
  hostNamespaces: string[];
}

export async function createBroadcastLab(n: number, throttled: boolean): Promise<BroadcastLab> {
  const lab = await NetLab.create('kab');
  try {
    // `brd +` (NetLab adds it) matters: udpcast stalls on an interface without a broadcast address.
    const source = await lab.host('src', { cidr: `${SUBNET}.1/24` });
    const receivers: Host[] = [];
    for (let i = 0; i < n; i++) receivers.push(await lab.host(`r${i + 1}`, { cidr: `${SUBNET}.${10 + i}/24` }));
    const hosts = [source, ...receivers];
    if (throttled) {
      for (const h of hosts) await lab.sh(h.ns, `tc qdisc add dev eth0 root ${TBF}`);
      for (const port of await bridgePorts(lab)) await lab.sh(lab.switchNs, `tc qdisc add dev ${port} root ${TBF}`);
    }
    return { lab, source, receivers, throttled, hostNamespaces: hosts.map((h) => h.ns) };
  } catch (err) {
    await lab.destroy();
    throw err;
  }
}

async function bridgePorts(lab: NetLab): Promise<string[]> {
  const { stdout } = await lab.exec(lab.switchNs, ['ip', '-o', 'link', 'show', 'master', 'br0']);
  return String(stdout)
    .split('\n')
    .map((l) => /^\d+:\s+([^@:\s]+)/.exec(l)?.[1])
    .filter((p): p is string => Boolean(p));
}

/** Kills every process still inside the lab's host namespaces (a run that timed out or failed). */
export async function killLabProcesses(bl: BroadcastLab): Promise<void> {
  for (const ns of bl.hostNamespaces) {
    const { stdout } = await execa('ip', ['netns', 'pids', ns], { reject: false });
    for (const pid of stdout.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}

export interface TimedProcess {
  proc: ResultPromise;
  /** ms (performance.now()) when the process exited */
  ended: Promise<number>;
  /** file GNU time writes "elapsed user system" to */
  timeFile: string;
}

/**
 * Starts `script` under bash in `ns`, wrapped in GNU time: its user+system time covers the
 * shell and every descendant it waited for (scripts end with `wait`), which is the whole
 * receiving node's work in user space and in its own system calls.
 */
export function spawnTimed(lab: NetLab, ns: string, script: string, timeFile: string): TimedProcess {
  const proc = lab.spawn(ns, ['/usr/bin/time', '-f', '%e %U %S', '-o', timeFile, 'bash', '-c', script], {
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'pipe',
  });
  const ended = proc.then(() => performance.now());
  return { proc, ended, timeFile };
}

export interface CpuTimes {
  elapsed: number;
  user: number;
  system: number;
}

export function readTimeFile(file: string): CpuTimes | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  // GNU time prints "Command exited with non-zero status N" first when the command failed.
  const line = text.trim().split('\n').pop() ?? '';
  const [e, u, s] = line.split(' ').map(Number);
  if (e === undefined || u === undefined || s === undefined || [e, u, s].some(Number.isNaN)) return undefined;
  return { elapsed: e, user: u, system: s };
}

/** Waits until a TCP listener on `port` exists in `ns`. */
export async function waitListening(lab: NetLab, ns: string, port: number, timeoutMs = 10_000, proto: 'tcp' | 'udp' = 'tcp'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { stdout } = await lab.exec(ns, ['ss', proto === 'tcp' ? '-Hltn' : '-Huan', `sport = :${port}`], { reject: false });
    if (String(stdout).trim()) return;
    await sleep(20);
  }
  throw new Error(`nothing listens on port ${port} in ${ns} after ${timeoutMs} ms`);
}

/** Waits until `ns` holds an established TCP connection to remote port `port`. */
export async function waitConnected(lab: NetLab, ns: string, port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { stdout } = await lab.exec(ns, ['ss', '-Htn', 'state', 'established', `dport = :${port}`], { reject: false });
    if (String(stdout).trim()) return;
    await sleep(20);
  }
  throw new Error(`no connection to port ${port} from ${ns} after ${timeoutMs} ms`);
}

/** Busy and total jiffies of the whole machine (all CPUs), from /proc/stat. */
export function hostCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
