// One stream to N receivers, four ways, in network namespaces on one bridge with every
// veth end held to 1 Gbit/s (tbf): kaboot's KA relay (ka-server / ka-client), udpcast
// (udp-sender / udp-receiver), a naive unicast fan-out (one TCP connection per receiver
// from the source) and a plain TCP relay chain (socat and tee at each receiver). Every
// receiver checks the SHA-256 of what it got: `openssl dgst -sha256` after socat, tee or
// udp-receiver; kaboot's nodes hash the stream themselves, and the bench compares the
// digest each one reports (kaboot-openssl also feeds `openssl dgst` as consumer). Prints, per method and N, the
// time from the source's start to the last receiver's end, the rate per receiver, the
// digests that matched, and the CPU seconds per GiB each receiving node spent; then the
// ratios kaboot / chain and kaboot / udpcast, and kaboot's per-hop rate on unthrottled
// veth. Each run has a timeout; namespaces, processes and the source file are removed on
// exit and on failure.
//   node --import tsx bench/ka-broadcast.ts [--sizes 1G] [--n 1,2,4,8,16]
//     [--methods kaboot,kaboot-openssl,kaboot-running,udpcast,fanout,chain] [--unthrottled 1,2] [--json FILE]
import { parseArgs } from 'node:util';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { createBroadcastLab, hostCpu, killLabProcesses, readTimeFile, sleep, type BroadcastLab } from './lib/ka-lab.js';
import { chain, fanout, kaboot, kabootOpenssl, kabootRunning, udpcast, type Method } from './lib/ka-methods.js';

const REPO = resolve(import.meta.dirname, '..');
const GIB = 1024 ** 3;
/** udp-sender options beyond --min-receivers and --nokbd; see docs/bench-ka.md for why. */
const UDPCAST_SENDER_OPTS = process.env.UDPCAST_SENDER_OPTS ?? '--rexmit-hello-interval 100';
const UDPCAST_RECEIVER_OPTS = process.env.UDPCAST_RECEIVER_OPTS ?? '--exit-wait 100';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1G' },
    n: { type: 'string', default: '1,2,4,8,16' },
    methods: { type: 'string', default: 'kaboot,udpcast,fanout,chain' },
    unthrottled: { type: 'string', default: '1,2' },
    json: { type: 'string' },
    keep: { type: 'boolean', default: false },
    quiet: { type: 'string' },
    'quiet-wait': { type: 'string', default: '180' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('node --import tsx bench/ka-broadcast.ts [--sizes 1G,256M] [--n 1,2,4,8,16] [--methods kaboot,kaboot-openssl,kaboot-running,udpcast,fanout,chain] [--unthrottled 1,2|""] [--json FILE] [--keep] [--quiet PCT [--quiet-wait SEC]]');
  process.exit(0);
}

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)$/i.exec(s.trim());
  if (!m) throw new Error(`bad size "${s}" (e.g. 1G, 256M)`);
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: GIB }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Math.round(Number(m[1]) * unit);
}
const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);

const sizes = list(values.sizes).map(parseSize);
const counts = list(values.n).map(Number);
const unthrottledCounts = list(values.unthrottled).map(Number);
const methods: Record<string, Method> = { kaboot, 'kaboot-openssl': kabootOpenssl, 'kaboot-running': kabootRunning, udpcast: udpcast(UDPCAST_SENDER_OPTS, UDPCAST_RECEIVER_OPTS), fanout, chain };
const chosen = list(values.methods).map((m) => {
  const method = methods[m];
  if (!method) throw new Error(`unknown method "${m}" (kaboot, kaboot-openssl, kaboot-running, udpcast, fanout, chain)`);
  return method;
});

export interface RunResult {
  method: string;
  n: number;
  size: number;
  throttled: boolean;
  /** source start to last receiver's end, s */
  seconds: number | null;
  /** size / seconds, MB/s (10^6 bytes) */
  mbps: number | null;
  /** mean over receivers of size / (its own end - source start) */
  meanMbps: number | null;
  digestsOk: number;
  /** mean over the receivers whose digest matched of (user + system) / GiB moved */
  cpuPerGib: number | null;
  cpuPerGibMax: number | null;
  /** share of the machine's CPUs (all cores) busy during the run, % */
  hostBusy: number;
  /** 1-minute load average when the run started (other work on the machine skews every figure) */
  load: number;
  /** kaboot only: the session's own figure, bytes over ka-server's transferMs, MB/s */
  sessionMbps?: number;
  /** kaboot only, s from time zero: the coordinator's first log line, the last node's "stream complete" */
  phases?: { coordinatorUp: number; lastComplete: number };
  error?: string;
}

function timeoutFor(method: string, n: number, size: number): number {
  // Fan-out and udpcast slow down with N by design; the relays should not. Generous either way.
  const perGib = method === 'fanout' || method === 'udpcast' ? Math.max(n, 2) * 12 : Math.max(n, 2) * 8 + 20;
  return 45_000 + (perGib * 1000 * size) / GIB;
}

/**
 * On a shared machine: wait (at most `maxS` seconds) until the machine's CPUs were less
 * than `pct` % busy over one second, so a run does not start in the middle of someone
 * else's burst. Returns the busy share last seen.
 */
async function waitQuiet(pct: number, maxS: number): Promise<number> {
  const deadline = Date.now() + maxS * 1000;
  for (;;) {
    const a = hostCpu();
    await sleep(1000);
    const b = hostCpu();
    const busy = (100 * (b.busy - a.busy)) / Math.max(1, b.total - a.total);
    if (busy < pct || Date.now() > deadline) return busy;
  }
}

async function runOnce(bl: BroadcastLab, method: Method, file: string, size: number, expected: string, work: string): Promise<RunResult> {
  const n = bl.receivers.length;
  const dir = join(work, `${method.name}-n${n}-${bl.throttled ? 'tbf' : 'free'}-${size}`);
  mkdirSync(dir, { recursive: true });
  const load = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  const base = { method: method.name, n, size, throttled: bl.throttled, load };
  const cpu0 = hostCpu();
  let error: string | undefined;
  let ends: number[] = [];
  let t0 = 0;
  try {
    const run = await method.start({ bl, file, size, dir, repo: REPO });
    t0 = run.t0;
    const limit = timeoutFor(method.name, n, size);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), limit)));
    const all = Promise.all(run.receivers.map((r) => r.ended));
    const outcome = await Promise.race([all, timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      error = `timeout after ${(limit / 1000).toFixed(0)} s`;
    } else {
      ends = outcome;
    }
    // Let the source finish its goodbyes, then end whatever is left.
    await Promise.race([run.source, sleep(3000)]);
    await killLabProcesses(bl);
    const results = await Promise.all(run.receivers.map((r) => r.proc));
    const failed = results.map((r, i) => (r.exitCode !== 0 ? `r${i + 1} exit ${r.exitCode ?? r.signal}` : '')).filter(Boolean);
    if (failed.length && !error) error = failed.slice(0, 3).join(', ') + tail(join(dir, 'r1.log')) + tail(run.sourceLog);
    const digests = run.digestFiles.map((f) => readDigest(f));
    const digestsOk = digests.filter((d) => d === expected).length;
    if (!error && digestsOk < n) error = `${n - digestsOk} digest(s) wrong` + tail(run.sourceLog);
    // Only receivers that got the whole stream: a node that failed early spent little and would flatter the mean.
    const cpus = run.receivers.filter((_, i) => digests[i] === expected).map((r) => readTimeFile(r.timeFile)).filter((c) => c !== undefined);
    const perGib = cpus.map((c) => (c.user + c.system) / (size / GIB));
    const cpu1 = hostCpu();
    const session = run.resultFile ? readSession(run.resultFile) : undefined;
    if (session && !session.ok && !error) error = `kaboot session not ok: ${session.summary}`;
    const seconds = ends.length === n ? (Math.max(...ends) - t0) / 1000 : null;
    return {
      ...base,
      seconds,
      mbps: seconds ? size / seconds / 1e6 : null,
      meanMbps: ends.length === n ? mean(ends.map((e) => size / ((e - t0) / 1000) / 1e6)) : null,
      digestsOk,
      cpuPerGib: perGib.length ? mean(perGib) : null,
      cpuPerGibMax: perGib.length ? Math.max(...perGib) : null,
      hostBusy: (100 * (cpu1.busy - cpu0.busy)) / Math.max(1, cpu1.total - cpu0.total),
      ...(session?.mbps !== undefined ? { sessionMbps: session.mbps } : {}),
      ...(run.resultFile ? { phases: kabootPhases(dir, run.sourceLog, n, performance.timeOrigin + t0) } : {}),
      ...(error ? { error } : {}),
    };
  } catch (err) {
    await killLabProcesses(bl);
    const cpu1 = hostCpu();
    return {
      ...base,
      seconds: null,
      mbps: null,
      meanMbps: null,
      digestsOk: 0,
      cpuPerGib: null,
      cpuPerGibMax: null,
      hostBusy: (100 * (cpu1.busy - cpu0.busy)) / Math.max(1, cpu1.total - cpu0.total),
      error: err instanceof Error ? err.message : String(err),
    };
  }
}

/** ka-server's result: was every node ok, and the rate it reports (source's transfer time). */
function readSession(file: string): { ok: boolean; mbps?: number; summary: string } | undefined {
  let r: { ok?: boolean; total?: number; transferMs?: number; pipelineEmptiedMs?: number; nodes?: Array<{ ok: boolean; error: string | null }> };
  try {
    r = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
  const ms = (r.transferMs ?? 0) + (r.pipelineEmptiedMs ?? 0);
  const bad = (r.nodes ?? []).filter((x) => !x.ok).map((x) => x.error ?? 'failed');
  return { ok: r.ok === true, ...(r.total && ms > 0 ? { mbps: r.total / ms / 1000 } : {}), summary: bad.slice(0, 3).join('; ') };
}

/** Where a kaboot run's time went: pino lines carry epoch ms. */
function kabootPhases(dir: string, sourceLog: string, n: number, t0Epoch: number): { coordinatorUp: number; lastComplete: number } | undefined {
  const times = (file: string, match: string) => {
    try {
      return readFileSync(file, 'utf8').split('\n').filter((l) => l.includes(match)).map((l) => Number(/"time":(\d+)/.exec(l)?.[1]));
    } catch {
      return [];
    }
  };
  const up = times(sourceLog, '"time"')[0];
  const complete = Array.from({ length: n }, (_, i) => times(join(dir, `r${i + 1}.log`), 'stream complete')[0]);
  if (up === undefined || complete.some((c) => c === undefined)) return undefined;
  return { coordinatorUp: (up - t0Epoch) / 1000, lastComplete: (Math.max(...(complete as number[])) - t0Epoch) / 1000 };
}

/** A hasher's `HEX *FILE` line, or a kaboot node's JSON result (the digest it computed). */
function readDigest(file: string): string | undefined {
  try {
    const text = readFileSync(file, 'utf8');
    if (text.startsWith('{')) {
      const digest = (JSON.parse(text) as { digest?: unknown }).digest;
      return typeof digest === 'string' && /^[0-9a-f]{64}$/.test(digest) ? digest : undefined;
    }
    return /^[0-9a-f]{64}/.exec(text)?.[0];
  } catch {
    return undefined;
  }
}

function tail(file: string): string {
  try {
    const t = readFileSync(file, 'utf8').trim().split('\n').slice(-3).join(' | ');
    return t ? ` [${file.split('/').pop()}: ${t.slice(-300)}]` : '';
  } catch {
    return '';
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const fmt = (x: number | null, d = 1) => (x === null ? '—' : x.toFixed(d));
const sizeName = (s: number) => (s % GIB === 0 ? `${s / GIB} GiB` : `${(s / 1024 ** 2).toFixed(0)} MiB`);

/** A 1 GiB (or any size) pseudo-random file in tmpfs, so reading it costs the source nothing. */
async function makeSource(work: string, size: number): Promise<{ file: string; digest: string }> {
  const file = join(work, `source-${size}.bin`);
  await execa('bash', ['-c', `openssl enc -aes-128-ctr -nosalt -pass pass:kaboot-bench -in /dev/zero 2>/dev/null | head -c ${size} > '${file}'`]);
  const { stdout } = await execa('openssl', ['dgst', '-sha256', '-r', file]);
  return { file, digest: stdout.slice(0, 64) };
}

function printTable(rows: RunResult[]) {
  console.log('| method | N | size | link | seconds | MB/s per receiver (slowest) | MB/s (mean) | digests ok | CPU s/GiB per receiver (mean / max) | host CPU busy | load | note |');
  console.log('|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of rows) {
    console.log(
      `| ${r.method} | ${r.n} | ${sizeName(r.size)} | ${r.throttled ? '1 Gbit tbf' : 'unthrottled'} | ${fmt(r.seconds)} | ${fmt(r.mbps)} | ${fmt(r.meanMbps)} | ${r.digestsOk}/${r.n} | ${fmt(r.cpuPerGib, 2)} / ${fmt(r.cpuPerGibMax, 2)} | ${r.hostBusy.toFixed(0)}% | ${r.load.toFixed(1)} | ${[r.sessionMbps !== undefined ? `session ${r.sessionMbps.toFixed(1)} MB/s` : '', r.phases ? `coordinator up at ${r.phases.coordinatorUp.toFixed(2)} s, last stream complete at ${r.phases.lastComplete.toFixed(2)} s` : '', r.error ?? ''].filter(Boolean).join('; ')} |`,
    );
  }
}

function printRatios(rows: RunResult[]) {
  const find = (m: string, n: number, size: number) => rows.find((r) => r.method === m && r.n === n && r.size === size && r.throttled);
  const lines: string[] = [];
  for (const size of sizes) {
    for (const n of counts) {
      const k = find('kaboot', n, size)?.mbps;
      if (k === undefined) continue;
      const c = find('chain', n, size)?.mbps;
      const u = find('udpcast', n, size)?.mbps;
      const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? `${(a / b).toFixed(2)}×` : '—');
      lines.push(`| ${n} | ${sizeName(size)} | ${ratio(k, c)} | ${ratio(k, u)} | ${n > 4 ? '— (a target for N ≤ 4)' : k && k >= 113 ? 'yes' : `no (${k ? k.toFixed(2) : '—'})`} |`);
    }
  }
  if (!lines.length) return;
  console.log('\n| N | size | kaboot / chain | kaboot / udpcast | kaboot ≥ 113 MB/s |');
  console.log('|---:|---|---:|---:|---|');
  for (const l of lines) console.log(l);
}

async function main() {
  const work = mkdtempSync('/dev/shm/kaboot-bench-ka-');
  // --keep leaves the logs, digests and time files (not the source file) for a look afterwards.
  const cleanup = () => (values.keep ? console.error(`kept ${work}`) : rmSync(work, { recursive: true, force: true }));
  process.on('exit', cleanup);
  const rows: RunResult[] = [];
  try {
    console.log(`# ka-broadcast: ${new Date().toISOString()}, load ${readFileSync('/proc/loadavg', 'utf8').trim()}, ${(await execa('nproc')).stdout} CPUs`);
    if (chosen.some((m) => m.name.startsWith('kaboot'))) {
      // bin/kaboot.js runs dist/: compile the current source first. A failed build (someone's
      // work in progress elsewhere in src/) leaves the last dist/ in place; say so and go on.
      const build = await execa('npm', ['run', 'build', '--silent'], { cwd: REPO, reject: false, all: true });
      if (build.exitCode !== 0) console.error(`npm run build failed (exit ${build.exitCode}); kaboot runs the dist/ already there:\n${String(build.all).slice(-1000)}`);
    }
    for (const size of sizes) {
      const { file, digest } = await makeSource(work, size);
      const plan: Array<{ n: number; throttled: boolean; methods: Method[] }> = [
        ...counts.map((n) => ({ n, throttled: true, methods: chosen })),
        ...(chosen.includes(kaboot) ? unthrottledCounts.map((n) => ({ n, throttled: false, methods: [kaboot] })) : []),
      ];
      for (const step of plan) {
        const bl = await createBroadcastLab(step.n, step.throttled);
        try {
          for (const method of step.methods) {
            if (values.quiet) {
              const busy = await waitQuiet(Number(values.quiet), Number(values['quiet-wait']));
              if (busy >= Number(values.quiet)) console.error(`machine still ${busy.toFixed(0)}% busy after ${values['quiet-wait']} s; running anyway`);
            }
            const r = await runOnce(bl, method, file, size, digest, work);
            rows.push(r);
            console.error(
              `${r.method} N=${r.n} ${sizeName(size)} ${step.throttled ? 'tbf' : 'free'}: ${fmt(r.seconds)} s, ${fmt(r.mbps)} MB/s, ${r.digestsOk}/${r.n} ok, ${fmt(r.cpuPerGib, 2)} CPU s/GiB, host ${r.hostBusy.toFixed(0)}%, load ${r.load.toFixed(1)}${r.error ? ` — ${r.error}` : ''}`,
            );
            await sleep(500);
          }
        } finally {
          await bl.lab.destroy();
        }
      }
      rmSync(file, { force: true });
    }
  } finally {
    console.log('');
    printTable(rows);
    printRatios(rows);
    if (values.json) writeFileSync(values.json, JSON.stringify(rows, null, 2));
    cleanup();
  }
  process.exit(rows.some((r) => r.error) ? 1 : 0);
}

await main();
