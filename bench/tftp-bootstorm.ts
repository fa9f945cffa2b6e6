// Boot storm: CLIENTS curl clients at once, each fetching the same 30 MiB file with
// blksize 1468, from kaboot, tftpd-hpa, atftpd and dnsmasq (each on 127.0.0.1:69 of
// its own namespace). Reports failures (exit code or short size) and the aggregate
// rate; for kaboot also how much it read from disk (the shared file cache).
//   node --import tsx bench/tftp-bootstorm.ts          (CLIENTS=100, REPS=2 by default)
import { readFile, readdir, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { median, MiB, printTable, startBenchLab, type PeerUnderTest, type BenchLab } from './lib/tftp-bench.js';
import type { PeerName } from './lib/tftp-peers.js';

if (process.argv.includes('--help')) {
  console.log('Boot storm: CLIENTS curl clients at once, each fetching the same 30 MiB file with\nblksize 1468, from kaboot, tftpd-hpa, atftpd and dnsmasq (each on 127.0.0.1:69 of\nits own namespace). Reports failures (exit code or short size) and the aggregate\nrate; for kaboot also how much it read from disk (the shared file cache).\n  node --import tsx bench/tftp-bootstorm.ts          (CLIENTS=100, REPS=2 by default)');
  process.exit(0);
}

const CLIENTS = Number(process.env.CLIENTS ?? 100);
const REPS = Number(process.env.REPS ?? 2);
const FILE = 'file-30MiB.bin';
const SIZE = 30 * MiB;
const names: PeerName[] = ['kaboot', 'tftpd-hpa', 'atftpd', 'dnsmasq'];

interface StormResult { ok: number; failed: number; seconds: number; mbps: number; diskMiB?: number }

async function diskBytes(p: PeerUnderTest): Promise<number | undefined> {
  const s = (await p.server.stats?.()) as { cache: { diskBytesRead: number } } | undefined;
  return s?.cache.diskBytesRead;
}

async function storm(bl: BenchLab, p: PeerUnderTest, rep: number): Promise<StormResult> {
  const dir = join(bl.root, '..', `storm-${p.name}-${rep}`);
  await mkdir(dir);
  const script = `for i in $(seq ${CLIENTS}); do
    ( curl -sS --max-time 600 -o /dev/null -w '%{size_download}\\n' --tftp-blksize 1468 tftp://127.0.0.1/${FILE}; echo "rc=$?" ) > ${dir}/c.$i 2>&1 &
  done; wait`;
  const disk0 = await diskBytes(p);
  const t0 = process.hrtime.bigint();
  await bl.lab.sh(p.ns, script, { timeout: 900_000 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const disk1 = await diskBytes(p);
  const diskMiB = disk0 !== undefined && disk1 !== undefined ? (disk1 - disk0) / MiB : undefined;
  let ok = 0;
  for (const f of await readdir(dir)) {
    const text = await readFile(join(dir, f), 'utf8');
    if (text.includes('rc=0') && text.split('\n').includes(String(SIZE))) ok++;
  }
  await rm(dir, { recursive: true, force: true });
  return { ok, failed: CLIENTS - ok, seconds, mbps: (ok * SIZE) / 1e6 / seconds, ...(diskMiB !== undefined ? { diskMiB } : {}) };
}

const bl = await startBenchLab(names, { [FILE]: SIZE });
try {
  const kaboot = bl.peers.find((p) => p.name === 'kaboot') as PeerUnderTest;
  const results = new Map<PeerName, StormResult[]>(names.map((n) => [n, []]));
  for (let rep = 0; rep < REPS; rep++) {
    for (let i = 0; i < bl.peers.length; i++) {
      const p = bl.peers[(i + rep) % bl.peers.length] as PeerUnderTest;
      const r = await storm(bl, p, rep);
      results.get(p.name)?.push(r);
      const disk = r.diskMiB !== undefined ? `, read ${r.diskMiB.toFixed(1)} MiB from disk` : '';
      console.log(`rep ${rep + 1} ${p.name}: ${r.ok}/${CLIENTS} ok, ${r.seconds.toFixed(1)} s, ${r.mbps.toFixed(0)} MB/s${disk}`);
    }
  }
  const after = (await kaboot.server.stats?.()) as { rssBytes: number };
  const agg = (n: PeerName) => median((results.get(n) ?? []).map((r) => r.mbps));
  const failures = (n: PeerName) => (results.get(n) ?? []).reduce((s, r) => s + r.failed, 0);
  const best = Math.max(...names.filter((n) => n !== 'kaboot').map(agg));
  printTable(
    `TFTP boot storm: ${CLIENTS} curl clients x 30 MiB, blksize 1468, unpinned (median of ${REPS}; MB/s = 10^6 B/s)`,
    ['server', 'aggregate MB/s', 'runs', 'failed transfers', 'vs best peer'],
    names.map((n) => [n, agg(n), (results.get(n) ?? []).map((r) => r.mbps.toFixed(0)).join(' '), String(failures(n)), `${(agg(n) / best).toFixed(2)}x`]),
  );
  const diskMiB = (results.get('kaboot') ?? []).map((r) => (r.diskMiB ?? NaN).toFixed(1));
  console.log(`\nkaboot read ${diskMiB.join(' / ')} MiB from disk per storm of ${CLIENTS} transfers of a 30 MiB file; RSS at the end ${(after.rssBytes / MiB).toFixed(0)} MiB`);
  console.log(JSON.stringify({ bench: 'tftp-bootstorm', clients: CLIENTS, reps: REPS, medianMBps: Object.fromEntries(names.map((n) => [n, agg(n)])), failed: Object.fromEntries(names.map((n) => [n, failures(n)])), kabootDiskMiB: diskMiB }));
} finally {
  await bl.close();
}
