// 100,000+ random and mutated datagrams at kaboot's TFTP server (its port 69 and the
// port of a live transfer), from a host in a namespace; then the live transfer must
// have completed byte-exact, curl must still fetch a file byte-exact, and the server
// process must still be running.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { mkdtemp, mkdir, writeFile, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetLab, type Host } from '../helpers/netns.js';
import { fetchCommand, sha256File, startKaboot, type RunningTftpServer } from '../../bench/lib/tftp-peers.js';

const PACKETS = 120_000;

let lab: NetLab;
let srv: Host;
let cli: Host;
let fuzzer: Host;
let server: RunningTftpServer;
let base: string;
let root: string;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'kb-tftp-fuzz-'));
  root = join(base, 'root');
  await mkdir(root);
  await chmod(base, 0o755);
  const small = Buffer.allocUnsafe(5000);
  randomFillSync(small);
  await writeFile(join(root, 'small.bin'), small);
  const big = Buffer.allocUnsafe(30 * 1024 * 1024);
  randomFillSync(big);
  await writeFile(join(root, 'big.bin'), big);
  lab = await NetLab.create('tfuz');
  srv = await lab.host('srv', { cidr: '10.78.0.1/24' });
  cli = await lab.host('cli', { cidr: '10.78.0.2/24' });
  fuzzer = await lab.host('fuzz', { cidr: '10.78.0.3/24' });
  server = await startKaboot(lab, { ns: srv.ns, root, address: srv.ip!, extraArgs: ['--retries', '2'] });
});

after(async () => {
  await server?.stop();
  await lab?.destroy();
  if (base) await rm(base, { recursive: true, force: true });
});

// Plain JavaScript run with node -e inside the fuzzer's namespace.
// argv: server ip, packet count, seed, then live transfer ports.
const fuzzScript = `
const dgram = require('node:dgram');
const [server, countArg, seedArg, ...live] = process.argv.slice(1);
const count = Number(countArg);
let seed = Number(seedArg) >>> 0;
const rnd = (n) => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed % n; };
const str = (s) => Buffer.from(s, 'latin1');
const z = Buffer.from([0]);
const op = (n) => Buffer.from([0, n]);
const rrq = (name, mode, opts) => Buffer.concat([op(1), str(name), z, str(mode), z, ...opts.flatMap(([k, v]) => [str(k), z, str(v), z])]);
const seeds = [
  rrq('small.bin', 'octet', []),
  rrq('small.bin', 'octet', [['blksize', '1468'], ['tsize', '0'], ['windowsize', '16'], ['timeout', '1']]),
  rrq('small.bin', 'netascii', [['blksize', '65464'], ['windowsize', '65535']]),
  rrq('/small.bin', 'OCTET', [['BLKSIZE', '8']]),
  rrq('../../etc/passwd', 'octet', []),
  rrq('missing', 'mail', []),
  Buffer.concat([op(2), str('up.bin'), z, str('octet'), z]),
  Buffer.concat([op(3), Buffer.from([0, 1]), Buffer.alloc(512, 0x41)]),
  Buffer.from([0, 4, 0, 0]),
  Buffer.from([0, 4, 255, 255]),
  Buffer.concat([op(5), Buffer.from([0, 5]), str('oops'), z]),
  Buffer.concat([op(6), str('blksize'), z, str('512'), z]),
];
function mutate(b) {
  b = Buffer.from(b);
  switch (rnd(9)) {
    case 0: return b.subarray(0, rnd(b.length + 1));                        // truncated
    case 1: for (let i = rnd(8) + 1; i > 0; i--) b[rnd(b.length)] = rnd(256); return b; // flipped bytes
    case 2: return Buffer.concat([b, Buffer.alloc(rnd(2000), rnd(256))]);    // extended
    case 3: { const i = rnd(b.length); return Buffer.concat([b.subarray(0, i), z, b.subarray(i)]); } // NUL inserted
    case 4: return Buffer.from(b.filter((c) => c !== 0));                   // NULs removed
    case 5: { const opts = []; for (let i = rnd(40); i > 0; i--) opts.push(['blksize', String(rnd(1e9))], ['windowsize', '-' + rnd(9)]);
              return rrq('small.bin', 'octet', opts); }                      // many, bad options
    case 6: b[1] = rnd(256); b[0] = rnd(3) === 0 ? rnd(256) : 0; return b;    // odd opcode
    case 7: return Buffer.concat([b, b, b]);                                // repeated
    default: return b;
  }
}
function randomPacket() {
  const r = rnd(10);
  if (r < 3) { const b = Buffer.alloc(rnd(r === 0 ? 65000 : 600)); for (let i = 0; i < b.length; i++) b[i] = rnd(256); if (rnd(2) && b.length > 1) { b[0] = 0; b[1] = rnd(8); } return b; }
  return mutate(seeds[rnd(seeds.length)]);
}
const sockets = [];
let ready = 0;
let sent = 0;
let replies = 0;
for (let i = 0; i < 16; i++) {
  const s = dgram.createSocket('udp4');
  s.on('message', () => replies++);
  s.on('error', () => {});
  s.bind(0, () => { if (++ready === 16) pump(); });
  sockets.push(s);
}
function pump() {
  for (let i = 0; i < 200 && sent < count; i++, sent++) {
    // The first 20,000 go half to the live transfer, while it surely still runs.
    const toLive = live.length > 0 && (sent < 20000 ? rnd(2) === 0 : rnd(10) === 0);
    const port = toLive ? Number(live[rnd(live.length)]) : 69;
    sockets[rnd(sockets.length)].send(randomPacket(), port, server);
  }
  if (sent < count) setTimeout(pump, 1);
  else setTimeout(() => { console.log(JSON.stringify({ sent, replies })); for (const s of sockets) s.close(); }, 1000);
}
`;

test('fuzzing: 120,000 random and mutated datagrams, then real clients are still served', { timeout: 600_000 }, async (t) => {
  const liveOut = join(base, 'live.out');
  // A slow live transfer (512-byte lock-step) that runs through the fuzzing.
  const liveTransfer = lab.exec(cli.ns, fetchCommand('tftp-hpa', srv.ip!, 'big.bin', liveOut, { mode: 'binary' }), { reject: false, timeout: 500_000 });
  let ports: string[] = [];
  for (let i = 0; i < 100 && ports.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const ss = await lab.exec(srv.ns, ['ss', '-Hun', 'state', 'all'], { reject: false });
    ports = String(ss.stdout).split('\n').map((l) => l.trim().split(/\s+/)[3] ?? '').map((a) => a.split(':').pop() ?? '').filter((p) => p !== '' && p !== '69');
  }
  assert.ok(ports.length > 0, 'the live transfer has no socket');

  const fuzz = await lab.exec(fuzzer.ns, [process.execPath, '-e', fuzzScript, srv.ip!, String(PACKETS), '20261122', ...ports], { timeout: 500_000 });
  const report = JSON.parse(String(fuzz.stdout)) as { sent: number; replies: number };
  assert.ok(report.sent >= 100_000);

  assert.equal(server.proc.exitCode, null, 'the server process died');
  const stats = (await server.stats!()) as { stats: { requests: number; malformed: number; wrongTid: number } };
  t.diagnostic(`fuzzer ${JSON.stringify(report)}; server ${JSON.stringify(stats.stats)}`);
  assert.ok(stats.stats.malformed > 1000, `malformed counted: ${stats.stats.malformed}`);
  assert.ok(stats.stats.wrongTid > 1000, 'packets at the live transfer got ERROR 5');

  const live = await liveTransfer;
  assert.equal(live.exitCode, 0, `live transfer: ${String(live.stderr)}`);
  assert.equal(await sha256File(liveOut), await sha256File(join(root, 'big.bin')));

  const out = join(base, 'after.out');
  const r = await lab.exec(cli.ns, fetchCommand('curl', srv.ip!, 'small.bin', out, { blksize: 1468 }), { reject: false });
  assert.equal(r.exitCode, 0, String(r.stderr));
  assert.equal(await sha256File(out), await sha256File(join(root, 'small.bin')));
  assert.equal(server.proc.exitCode, null, 'the server process died');
});
