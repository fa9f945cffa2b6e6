// Where one KA relay node's CPU goes: a source and N receivers on unthrottled veth
// (bench/lib/ka-lab.ts), ka-server sending a file, every ka-client feeding
// `openssl dgst` as in bench/ka-broadcast.ts, and receiver 1 (a relay node when N ≥ 2)
// run under `node --cpu-prof`. Prints that node's self time by function and by
// category (GC, native, kaboot, node internals, idle), its wall time and rusage.
// --node 0 profiles ka-server (the source) instead. --tool picks how: `cpu-prof` (V8's
// sampling profiler, the default), `strace` (`strace -c -f`: system calls of the node,
// its threads and its consumer), `perf` (`perf stat`: task clock, context switches,
// system calls and the busiest ones), `perf-record` (`perf record`, by process, object
// and symbol, kernel included), or `none` (CPU figures only, nothing slowed down).
// --throttled holds every veth end to 1 Gbit/s as bench/ka-broadcast.ts does.
//   node --import tsx bench/ka-profile.ts [--n 2] [--size 1G] [--node 1] [--tool cpu-prof|strace|perf|perf-record|none]
//        [--throttled] [--strace-args '-c -f'] [--perf-args '-F 2000 -g'] [--hash auto|node|openssl] [--client-args '…'] [--keep]
import { parseArgs } from 'node:util';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { createBroadcastLab, killLabProcesses, readTimeFile, spawnTimed } from './lib/ka-lab.js';

const REPO = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '2' },
    size: { type: 'string', default: '1G' },
    node: { type: 'string', default: '1' },
    hash: { type: 'string', default: 'auto' },
    tool: { type: 'string', default: 'cpu-prof' },
    throttled: { type: 'boolean', default: false },
    'strace-args': { type: 'string', default: '-c -f' },
    'perf-args': { type: 'string', default: '-F 2000 -g' },
    'client-args': { type: 'string', default: '' },
    top: { type: 'string', default: '25' },
    keep: { type: 'boolean', default: false },
  },
});
const n = Number(values.n);
const tool = values.tool;
if (!['cpu-prof', 'strace', 'perf', 'perf-record', 'none'].includes(tool)) throw new Error('--tool cpu-prof, strace, perf, perf-record or none');
const PERF_EVENTS = ['task-clock', 'context-switches', 'page-faults', 'raw_syscalls:sys_enter', 'syscalls:sys_enter_read', 'syscalls:sys_enter_write', 'syscalls:sys_enter_writev', 'syscalls:sys_enter_epoll_wait', 'syscalls:sys_enter_recvfrom', 'syscalls:sys_enter_futex', 'syscalls:sys_enter_madvise', 'syscalls:sys_enter_mmap', 'syscalls:sys_enter_munmap'];
const profiled = Number(values.node);
const m = /^(\d+)([MG])$/i.exec(values.size);
if (!m) throw new Error('--size like 1G or 256M');
const size = Number(m[1]) * (m[2]!.toUpperCase() === 'G' ? 1024 ** 3 : 1024 ** 2);
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function category(f: ProfileNode['callFrame']): string {
  if (f.functionName === '(garbage collector)') return 'GC';
  if (f.functionName === '(idle)') return 'idle';
  if (f.functionName === '(program)') return 'program (native, outside JS)';
  if (f.url.includes('/src/ka/') || f.url.includes('/dist/src/')) return 'kaboot';
  if (f.url.startsWith('node:')) return 'node internals (JS)';
  if (f.url.includes('node_modules')) return 'dependencies';
  if (f.url === '') return 'native (builtins)';
  return 'other';
}

function summarize(p: CpuProfile, top: number) {
  const byId = new Map(p.nodes.map((nd) => [nd.id, nd]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const byFn = new Map<string, number>();
  const byCat = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const name = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    byFn.set(name, (byFn.get(name) ?? 0) + us);
    const c = category(f);
    byCat.set(c, (byCat.get(c) ?? 0) + us);
    total += us;
  }
  const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1e6).toFixed(2).padStart(6)} s`;
  console.log(`profile: ${(total / 1e6).toFixed(2)} s of samples`);
  console.log('\nby category:');
  for (const [c, us] of [...byCat].sort((a, b) => b[1] - a[1])) console.log(`  ${pct(us)}  ${c}`);
  console.log(`\ntop ${top} functions by self time:`);
  for (const [f, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(us)}  ${f}`);
}

const work = mkdtempSync('/dev/shm/kaboot-prof-ka-');
const file = join(work, 'stream');
const bl = await createBroadcastLab(n, values.throttled);
try {
  await execa('bash', ['-c', `openssl enc -aes-128-ctr -nosalt -pass pass:kaboot-bench -in /dev/zero 2>/dev/null | head -c ${size} > ${q(file)}`]);
  const bin = join(REPO, 'bin/kaboot.js');
  const secret = `--secret prof-${process.pid}`;
  const session = `prof${process.pid}`;
  const t0 = performance.now();
  /** the command that starts node for the profiled process */
  const nodeFor = (i: number) => {
    if (i !== profiled || tool === 'none') return 'node ';
    if (tool === 'cpu-prof') return `node --cpu-prof --cpu-prof-dir=${q(join(work, 'prof'))} `;
    if (tool === 'strace') return `strace ${values['strace-args']} -o ${q(join(work, 'strace.txt'))} node `;
    if (tool === 'perf-record') return `perf record ${values['perf-args']} -o ${q(join(work, 'perf.data'))} node --perf-basic-prof `;
    return `perf stat -x, -o ${q(join(work, 'perf.txt'))} ${PERF_EVENTS.map((e) => `-e ${e}`).join(' ')} node `;
  };
  const server = bl.lab.spawn(bl.source.ns, ['bash', '-c', `${nodeFor(0)}${q(bin)} ka-server -s ${session} -n ${n} -f ${q(file)} ${secret} > ${q(join(work, 'session.json'))} 2>${q(join(work, 'server.log'))}`], { stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', reject: false });
  const clients = bl.receivers.map((r, i) => {
    const consumer = `openssl dgst -sha256 -r -out ${q(join(work, `r${i + 1}.digest`))}`;
    const script = `${nodeFor(i + 1)}${q(bin)} ka-client -s ${session} ${secret} --hash ${values.hash} ${values['client-args']} -e ${q(consumer)} > ${q(join(work, `r${i + 1}.log`))} 2>&1; wait`;
    return spawnTimed(bl.lab, r.ns, script, join(work, `r${i + 1}.time`));
  });
  const ends = await Promise.all(clients.map((c) => c.ended));
  await server;
  const want = (await execa('openssl', ['dgst', '-sha256', '-r', file])).stdout.split(' ')[0];
  for (let i = 0; i < n; i++) {
    const got = readFileSync(join(work, `r${i + 1}.digest`), 'utf8').split(' ')[0];
    const t = readTimeFile(join(work, `r${i + 1}.time`));
    const wall = (ends[i]! - t0) / 1000;
    const gib = size / 1024 ** 3;
    const perGib = t ? ((t.user + t.system) / gib).toFixed(2) : '?';
    let own = '';
    try {
      const res = JSON.parse(readFileSync(join(work, `r${i + 1}.log`), 'utf8').split('\n').find((l) => l.startsWith('{') && l.includes('"cpuMs"')) ?? '{}') as { cpuMs?: number };
      if (res.cpuMs !== undefined) own = `, ka-client cpuMs ${(res.cpuMs / 1000 / gib).toFixed(2)} s/GiB`;
    } catch {
      /* no result line */
    }
    console.log(`r${i + 1}${i + 1 === profiled && tool !== 'none' ? ` (${tool})` : ''}: ${wall.toFixed(1)} s, ${(size / wall / 1e6).toFixed(0)} MB/s, digest ${got === want ? 'ok' : 'BAD'}, cpu user ${t?.user} s sys ${t?.system} s = ${perGib} s/GiB (node + openssl consumer)${own}`);
  }
  // start-up: when each node joined and when data first moved, from ka-server's start
  try {
    const session = JSON.parse(readFileSync(join(work, 'session.json'), 'utf8')) as { events: { atMs: number; kind: string; node?: number }[]; transferMs: number };
    const at = (k: string) => session.events.filter((e) => e.kind === k).map((e) => `${e.node ?? ''}@${e.atMs}ms`).join(' ');
    console.log(`ka-server events: joined ${at('joined')}; started ${at('started')}; linked ${at('linked')}; transfer ${session.transferMs} ms`);
  } catch (e) {
    console.log(`no session result: ${String(e)}`);
  }
  if (tool === 'cpu-prof') {
    const profDir = join(work, 'prof');
    const pf = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (!pf) throw new Error('no .cpuprofile written');
    summarize(JSON.parse(readFileSync(join(profDir, pf), 'utf8')) as CpuProfile, Number(values.top));
  } else if (tool === 'strace') {
    console.log(`\nstrace ${values['strace-args']} of ${profiled === 0 ? 'ka-server' : `r${profiled}`} (node, its threads and its consumer):`);
    console.log(readFileSync(join(work, 'strace.txt'), 'utf8').split('\n').slice(0, Number(values.top) + 4).join('\n'));
  } else if (tool === 'perf-record') {
    const { stdout } = await execa('perf', ['report', '-i', join(work, 'perf.data'), '--stdio', '--sort', 'comm,dso', '--percent-limit', '0.5'], { reject: false });
    console.log(`\nperf record of ${profiled === 0 ? 'ka-server' : `r${profiled}`}, by process and object:\n${stdout.split('\n').filter((l) => l && !l.startsWith('#')).join('\n')}`);
    const sym = await execa('perf', ['report', '-i', join(work, 'perf.data'), '--stdio', '--sort', 'comm,sym', '--percent-limit', '0.4'], { reject: false });
    console.log(`\nby symbol:\n${sym.stdout.split('\n').filter((l) => l && !l.startsWith('#')).slice(0, Number(values.top)).join('\n')}`);
  } else if (tool === 'perf') {
    console.log(`\nperf stat of ${profiled === 0 ? 'ka-server' : `r${profiled}`} (node, its threads and its consumer), per GiB:`);
    const gib = size / 1024 ** 3;
    for (const line of readFileSync(join(work, 'perf.txt'), 'utf8').split('\n')) {
      const [value, unit, event] = line.split(',');
      if (!event || value === undefined || Number.isNaN(Number(value))) continue;
      console.log(`  ${(Number(value) / gib).toFixed(0).padStart(12)} ${unit || ''}  ${event}`);
    }
  }
  if (values.keep) console.log(`\nkept: ${work}`);
} finally {
  await killLabProcesses(bl);
  await bl.lab.destroy();
  if (!values.keep) rmSync(work, { recursive: true, force: true });
}
