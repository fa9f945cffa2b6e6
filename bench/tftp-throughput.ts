// One client, a 100 MiB file, blksize 1468: kaboot against tftpd-hpa, atftpd and
// dnsmasq (curl as the client), unpinned and pinned (server and client on CPU 0); then
// windowsize 16 (atftp as the client) for kaboot and atftpd, the only peer that grants it.
// Each server runs in its own namespace on 127.0.0.1:69; runs are interleaved, and the
// median of REPS runs is reported.
//   node --import tsx bench/tftp-throughput.ts          (REPS=5 by default)
import { allCpus, median, MiB, pinProcess, printTable, startBenchLab, timedFetch, verifyFetch, type PeerUnderTest } from './lib/tftp-bench.js';
import type { ClientName, FetchOptions, PeerName } from './lib/tftp-peers.js';

if (process.argv.includes('--help')) {
  console.log('One client, a 100 MiB file, blksize 1468: kaboot against tftpd-hpa, atftpd and\ndnsmasq (curl as the client), unpinned and pinned (server and client on CPU 0); then\nwindowsize 16 (atftp as the client) for kaboot and atftpd, the only peer that grants it.\nEach server runs in its own namespace on 127.0.0.1:69; runs are interleaved, and the\nmedian of REPS runs is reported.\n  node --import tsx bench/tftp-throughput.ts          (REPS=5 by default)');
  process.exit(0);
}

const REPS = Number(process.env.REPS ?? 5);
const FILE = 'file-100MiB.bin';
const SIZE = 100 * MiB;
const peersNames: PeerName[] = ['kaboot', 'tftpd-hpa', 'atftpd', 'dnsmasq'];
const modes = [
  { mode: 'unpinned', serverCpus: allCpus(), clientCpu: undefined },
  { mode: 'pinned', serverCpus: '0', clientCpu: '0' },
] as const;

interface Case { label: string; peer: PeerUnderTest; client: ClientName; opts: FetchOptions }

const bl = await startBenchLab(peersNames, { [FILE]: SIZE });
const summary: Record<string, Record<string, number>> = {};
try {
  const peer = (n: PeerName) => bl.peers.find((p) => p.name === n) as PeerUnderTest;
  for (const p of bl.peers) await verifyFetch(bl, p, 'curl', FILE, { blksize: 1468 });
  await verifyFetch(bl, peer('kaboot'), 'atftp', FILE, { blksize: 1468, windowsize: 16 });
  await verifyFetch(bl, peer('atftpd'), 'atftp', FILE, { blksize: 1468, windowsize: 16 });

  for (const m of modes) {
    for (const p of bl.peers) if (p.server.proc.pid) await pinProcess(p.server.proc.pid, m.serverCpus);
    const cases: Case[] = [
      ...bl.peers.map((p) => ({ label: `${p.name} curl blksize 1468`, peer: p, client: 'curl' as const, opts: { blksize: 1468 } })),
      { label: 'kaboot atftp blksize 1468', peer: peer('kaboot'), client: 'atftp', opts: { blksize: 1468 } },
      { label: 'kaboot atftp windowsize 16', peer: peer('kaboot'), client: 'atftp', opts: { blksize: 1468, windowsize: 16 } },
      { label: 'atftpd atftp windowsize 16', peer: peer('atftpd'), client: 'atftp', opts: { blksize: 1468, windowsize: 16 } },
    ];
    const rates = new Map<string, number[]>(cases.map((c) => [c.label, []]));
    for (let rep = 0; rep < REPS; rep++) {
      // rotate the order, so that no server always runs first or last
      const order = cases.map((_, i) => cases[(i + rep) % cases.length] as Case);
      for (const c of order) {
        const opts = { ...c.opts, ...(m.clientCpu !== undefined ? { cpu: m.clientCpu } : {}) };
        rates.get(c.label)?.push(await timedFetch(bl, c.peer, c.client, FILE, SIZE, opts));
      }
    }
    const med = Object.fromEntries([...rates].map(([k, v]) => [k, median(v)]));
    summary[m.mode] = med;
    const lockstep = bl.peers.map((p) => [p.name, med[`${p.name} curl blksize 1468`] as number] as const);
    const bestPeer = Math.max(...lockstep.filter(([n]) => n !== 'kaboot').map(([, r]) => r));
    printTable(
      `TFTP 100 MiB, blksize 1468, curl, ${m.mode} (median of ${REPS}, MB/s = 10^6 B/s)`,
      ['server', 'MB/s', 'runs', 'vs best peer'],
      lockstep.map(([n, r]) => [n, r, (rates.get(`${n} curl blksize 1468`) ?? []).map((x) => x.toFixed(0)).join(' '), `${(r / bestPeer).toFixed(2)}x`]),
    );
    const kw = med['kaboot atftp windowsize 16'] as number;
    const aw = med['atftpd atftp windowsize 16'] as number;
    const k1 = med['kaboot atftp blksize 1468'] as number;
    printTable(
      `TFTP 100 MiB, blksize 1468, atftp client, ${m.mode} (median of ${REPS})`,
      ['case', 'MB/s', 'runs'],
      [
        ['kaboot windowsize 16', kw, (rates.get('kaboot atftp windowsize 16') ?? []).map((x) => x.toFixed(0)).join(' ')],
        ['atftpd windowsize 16', aw, (rates.get('atftpd atftp windowsize 16') ?? []).map((x) => x.toFixed(0)).join(' ')],
        ['kaboot no window', k1, (rates.get('kaboot atftp blksize 1468') ?? []).map((x) => x.toFixed(0)).join(' ')],
        ['kaboot w16 / atftpd w16', `${(kw / aw).toFixed(2)}x`, ''],
        ['kaboot w16 / kaboot no window', `${(kw / k1).toFixed(2)}x`, ''],
      ],
    );
  }
  console.log(`\n${JSON.stringify({ bench: 'tftp-throughput', reps: REPS, medianMBps: summary })}`);
} finally {
  await bl.close();
}
