// kill -9 during a burst of leases: every lease the server acknowledged is still there
// after a restart, for both lease_sync modes. The burst client records each ACK the
// moment it arrives; the restarted server must hold every one of them and offer each
// client the same address again. The server is `kaboot serve` itself.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { NetLab, type Host } from '../helpers/netns.js';
import { REPO, startServe, writeServeConfig } from '../helpers/dhcp-lab.js';
import { tempDir, type TempDir } from '../helpers/temp-dir.js';
import type { LeaseView } from '../../src/dhcp/leases.js';

let lab: NetLab;
let dir: TempDir;
let srv: Host;
let cli: Host;

before(async () => {
  dir = tempDir('dhcp-crash');
  lab = await NetLab.create('dcrsh');
  srv = await lab.host('srv', { cidr: '10.51.0.1/16' });
  cli = await lab.host('cli', { cidr: '10.51.0.2/16' });
});

after(async () => {
  await lab?.destroy();
  dir?.remove();
});

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

async function waitForLines(file: string, n: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (lines(file).length < n) {
    if (Date.now() > end) throw new Error(`only ${lines(file).length} ACKs recorded in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const sync of ['write', 'fsync'] as const) {
  test(`kill -9 during a burst loses no acknowledged lease (lease_sync ${sync})`, async () => {
    const base = join(dir.path, sync);
    mkdirSync(base, { recursive: true });
    const cfg = writeServeConfig(base, { mode: 'full', lease_sync: sync, subnets: [{ subnet: '10.51.0.0/16', range: ['10.51.1.0', '10.51.63.255'], lease_time: 3600 }] });
    const server = await startServe(lab, srv.ns, cfg);
    const acks = join(base, 'acks.jsonl');
    const burst = lab.spawn(cli.ns, [
      'node', '--import', 'tsx', join(REPO, 'test/helpers/dhcp-burst.ts'),
      '--server', '10.51.0.1', '--bind', '10.51.0.2', '--count', '12000', '--concurrency', '64', '--timeout', '400', '--max-failures', '200', '--out', acks,
      '--prefix', sync === 'write' ? '02:01' : '02:02',
    ], { cwd: REPO, reject: false, all: true });
    await waitForLines(acks, 1500, 180_000);
    server.kill('SIGKILL');
    await server.proc;
    const done = await burst;
    assert.equal(done.exitCode, 0, String(done.all));
    const acked = lines(acks).map((l) => JSON.parse(l) as { mac: string; ip: string });
    assert.ok(acked.length >= 1500, `ACKs recorded: ${acked.length}`);
    assert.ok(JSON.parse(String(done.stdout).trim().split('\n').pop()!).failed > 0, 'the burst was cut by the kill');

    // Restart: the lease table read from disk must hold every acknowledged lease.
    const again = await startServe(lab, srv.ns, cfg);
    const { leases } = (await again.api!('/api/leases')) as { leases: LeaseView[] };
    const byIp = new Map(leases.map((l) => [l.address, l]));
    const missing = acked.filter((a) => byIp.get(a.ip)?.mac !== a.mac || byIp.get(a.ip)?.state !== 'bound');
    assert.deepEqual(missing.slice(0, 5), [], `${missing.length} of ${acked.length} acknowledged leases lost`);

    // And over the wire: each client is offered its address again.
    const v = await lab.exec(cli.ns, ['node', '--import', 'tsx', join(REPO, 'test/helpers/dhcp-burst.ts'), '--mode', 'verify', '--server', '10.51.0.1', '--bind', '10.51.0.2', '--in', acks, '--timeout', '2000'], { cwd: REPO, reject: false, all: true });
    assert.equal(v.exitCode, 0, String(v.all));
    const res = JSON.parse(String(v.stdout).trim().split('\n').pop()!) as { checked: number; same: number; differCount: number; differ: unknown[] };
    assert.equal(res.same, acked.length, JSON.stringify(res));
    again.kill('SIGTERM');
    await again.proc;
  });
}
