// 100,000+ random and mutated datagrams to ports 67 and 4011, in full mode and in
// proxy mode; then the server process (`kaboot serve`) is alive and a real client is
// still served.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { NetLab, type Host } from '../helpers/netns.js';
import { probePxe, REPO, startServe, udhcpc, writeServeConfig } from '../helpers/dhcp-lab.js';
import { tempDir, type TempDir } from '../helpers/temp-dir.js';
import { MessageType } from '../../src/dhcp/packet.js';

let lab: NetLab;
let dir: TempDir;
let srv: Host;
let fuzzer: Host;

before(async () => {
  dir = tempDir('dhcp-fuzz');
  lab = await NetLab.create('dfuzz');
  srv = await lab.host('srv', { cidr: '10.61.0.1/16' });
  fuzzer = await lab.host('fuzz', { cidr: '10.61.0.2/16' });
});

after(async () => {
  await lab?.destroy();
  dir?.remove();
});

async function fuzz(count: number) {
  const r = await lab.exec(fuzzer.ns, ['node', '--import', 'tsx', join(REPO, 'test/helpers/dhcp-fuzz.ts'), '--server', '10.61.0.1', '--count', String(count)], { cwd: REPO, reject: false, all: true });
  assert.equal(r.exitCode, 0, String(r.all));
  const res = JSON.parse(String(r.stdout).trim().split('\n').pop()!) as { sent: number; errors: number; seed: number };
  assert.ok(res.sent >= count, JSON.stringify(res));
  return res;
}

test('full mode: 100,000 bad datagrams, then udhcpc still gets a lease from a live server', async () => {
  const base = join(dir.path, 'full');
  mkdirSync(base, { recursive: true });
  const cfg = writeServeConfig(base, { mode: 'full', offer_hold: 5, subnets: [{ subnet: '10.61.0.0/16', range: ['10.61.1.0', '10.61.255.254'], routers: ['10.61.0.254'] }] });
  const server = await startServe(lab, srv.ns, cfg);
  const res = await fuzz(100_000);
  assert.ok(server.alive(), 'the server survived');
  const stats = await server.stats();
  assert.ok(stats.decodeErrors > 10_000, `decode errors counted: ${JSON.stringify(stats)} (seed ${res.seed})`);
  const c = await lab.host('client');
  const r = await udhcpc(lab, c.ns, { tries: 8 });
  assert.equal(r.exitCode, 0, `${r.output} (fuzz seed ${res.seed})`);
  assert.equal(r.env?.serverid, '10.61.0.1');
  assert.equal(r.env?.router, '10.61.0.254');
  assert.ok(server.alive());
  server.kill('SIGTERM');
  await server.proc;
});

test('proxy mode: 100,000 bad datagrams, then a PXE client still gets its boot file', async () => {
  const base = join(dir.path, 'proxy');
  mkdirSync(base, { recursive: true });
  const cfg = writeServeConfig(base, { mode: 'proxy' });
  const server = await startServe(lab, srv.ns, cfg);
  const res = await fuzz(100_000);
  assert.ok(server.alive(), 'the server survived');
  const stats = await server.stats();
  assert.ok(stats.decodeErrors > 10_000, JSON.stringify(stats));
  const c = await lab.host('pxe');
  const r = await probePxe(lab, c.ns, ['--vendor', 'PXEClient:Arch:00000:UNDI:002001', '--arch', '0']);
  assert.equal(r.exitCode, 0, r.output);
  const offer = r.replies.find((x) => x.serverId === '10.61.0.1' && x.type === MessageType.Offer);
  assert.ok(offer, `no proxy offer after fuzzing (seed ${res.seed}): ${r.output}`);
  assert.equal(offer.file, 'pxelinux.0');
  assert.ok(server.alive());
  server.kill('SIGTERM');
  await server.proc;
});
