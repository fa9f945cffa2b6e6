// Where a node's CPU went during a step: the machine's /proc/stat (busy, idle, I/O wait,
// interrupts) and the agent's waited-for children (/proc/self/stat cutime + cstime: the
// consumer's zstd and tar). A receive that is slower than the link shows here whether the
// node's CPU, its disk or the network held it back.
import { readFileSync } from 'node:fs';

export interface CpuSnapshot {
  /** jiffies per /proc/stat column: user nice system idle iowait irq softirq steal */
  machine: number[];
  /** this process's reaped children, user + system, in jiffies */
  children: number;
}

const TICKS_PER_SECOND = 100;

/** The cpu line's first eight columns, or [] when it cannot be read. */
export function parseProcStat(text: string): number[] {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return [];
  const cols = line.trim().split(/\s+/).slice(1, 9).map(Number);
  return cols.length === 8 && cols.every(Number.isFinite) ? cols : [];
}

/** cutime + cstime from /proc/PID/stat (fields 16 and 17; the command name may hold spaces). */
export function parseChildTicks(text: string): number {
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): field n is rest[n - 3]
  const cu = Number(rest[13]);
  const cs = Number(rest[14]);
  return Number.isFinite(cu) && Number.isFinite(cs) ? cu + cs : 0;
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export function cpuSnapshot(): CpuSnapshot {
  return { machine: parseProcStat(read('/proc/stat')), children: parseChildTicks(read('/proc/self/stat')) };
}

/** "user 10.0 s, system 15.5 s, irq+softirq 0.4 s, idle 0.0 s, iowait 0.0 s; children 20.9 s" between two snapshots. */
export function describeCpu(a: CpuSnapshot, b: CpuSnapshot): string {
  const s = (t: number) => (t / TICKS_PER_SECOND).toFixed(1);
  const children = `children ${s(b.children - a.children)} s`;
  if (a.machine.length !== 8 || b.machine.length !== 8) return children;
  const d = b.machine.map((v, i) => v - a.machine[i]!);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = d as [number, number, number, number, number, number, number, number];
  return `user ${s(user + nice)} s, system ${s(system)} s, irq+softirq ${s(irq + softirq)} s, idle ${s(idle)} s, iowait ${s(iowait)} s${steal ? `, steal ${s(steal)} s` : ''}; ${children}`;
}
