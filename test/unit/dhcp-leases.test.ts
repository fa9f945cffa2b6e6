import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, appendFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LeaseTable } from '../../src/dhcp/leases.js';
import { LeaseJournal } from '../../src/dhcp/lease-journal.js';
import { buildSubnet } from '../../src/dhcp/subnets.js';
import { ipToInt, intToIp } from '../../src/dhcp/pool.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'kaboot-leases-'));
const subnetCfg = { subnet: '10.1.0.0/24', range: ['10.1.0.10', '10.1.0.19'] as [string, string] };
const T0 = 1_700_000_000_000;

test('leases: a bound lease is in the journal when bind() resolves, and a restart resumes it', async () => {
  const dir = tmp();
  try {
    const s = buildSubnet(subnetCfg);
    const t = new LeaseTable({ subnets: [s], stateDir: dir, sync: 'write', now: T0 });
    const a = t.allocate(s, T0)!;
    await t.bind(s, 'mac:aa', 'aa', a, T0, T0 + 3600_000, 'node1');
    const text = readFileSync(join(dir, 'dhcp-leases.journal'), 'utf8');
    assert.match(text, /"address":"10\.1\.0\.10".*"state":"bound"/);
    await t.close();

    const s2 = buildSubnet(subnetCfg);
    const t2 = new LeaseTable({ subnets: [s2], stateDir: dir, now: T0 + 1000 });
    const l = t2.forClient(s2, 'mac:aa');
    assert.equal(l?.address, '10.1.0.10');
    assert.equal(l?.state, 'bound');
    assert.equal(l?.hostname, 'node1');
    assert.equal(s2.pool!.isFree(a), false, 'a live lease keeps its address out of the pool');
    assert.equal(intToIp(t2.allocate(s2, T0 + 1000)!), '10.1.0.11');
    await t2.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('leases: a torn last journal line (crash mid-write) is skipped, the rest is read', async () => {
  const dir = tmp();
  try {
    const s = buildSubnet(subnetCfg);
    const t = new LeaseTable({ subnets: [s], stateDir: dir, now: T0 });
    await t.bind(s, 'mac:aa', 'aa', ipToInt('10.1.0.12'), T0, T0 + 3600_000);
    await t.close();
    appendFileSync(join(dir, 'dhcp-leases.journal'), '{"address":"10.1.0.13","sub');
    const t2 = new LeaseTable({ subnets: [buildSubnet(subnetCfg)], stateDir: dir, now: T0 });
    assert.equal(t2.size, 1);
    assert.equal(t2.skippedLines, 1);
    await t2.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('leases: expired leases are reused, and a returning client gets its previous address', async () => {
  const s = buildSubnet({ subnet: '10.1.0.0/24', range: ['10.1.0.10', '10.1.0.11'] });
  const t = new LeaseTable({ subnets: [s] });
  const a = t.allocate(s, T0)!;
  const b = t.allocate(s, T0)!;
  await t.bind(s, 'mac:aa', 'aa', a, T0, T0 + 1000);
  await t.bind(s, 'mac:bb', 'bb', b, T0, T0 + 1000);
  assert.equal(t.allocate(s, T0 + 500), undefined, 'full while both leases live');
  // Both ran out. The old holder may have its address back at once...
  assert.equal(t.availableFor(s, 'mac:aa', a, T0 + 2000), true);
  assert.equal(t.availableFor(s, 'mac:cc', a, T0 + 500), false);
  // ...and a new client gets one of them (sweep on apparent exhaustion).
  const c = t.allocate(s, T0 + 2000);
  assert.ok(c === a || c === b);
});

test('leases: a declined address stays out of the pool until its quarantine ends', async () => {
  const s = buildSubnet({ subnet: '10.1.0.0/24', range: ['10.1.0.10', '10.1.0.10'] });
  const t = new LeaseTable({ subnets: [s] });
  const a = t.allocate(s, T0)!;
  await t.bind(s, 'mac:aa', 'aa', a, T0, T0 + 3600_000);
  await t.decline(t.get(a)!, T0, T0 + 600_000);
  assert.equal(t.forClient(s, 'mac:aa'), undefined);
  assert.equal(t.allocate(s, T0 + 599_000), undefined);
  assert.equal(t.availableFor(s, 'mac:bb', a, T0 + 1000), false);
  assert.equal(t.allocate(s, T0 + 600_001), a);
});

test('leases: a released address goes back to the pool at once, remembered for its client', async () => {
  const s = buildSubnet({ subnet: '10.1.0.0/24', range: ['10.1.0.10', '10.1.0.10'] });
  const t = new LeaseTable({ subnets: [s] });
  const a = t.allocate(s, T0)!;
  await t.bind(s, 'mac:aa', 'aa', a, T0, T0 + 3600_000);
  await t.release(t.get(a)!, T0 + 10);
  assert.equal(s.pool!.isFree(a), true);
  assert.equal(t.forClient(s, 'mac:aa')?.address, '10.1.0.10');
});

test('leases: appends made while a write is in flight go out together (group commit)', async () => {
  const dir = tmp();
  try {
    for (const sync of ['write', 'fsync'] as const) {
      const s = buildSubnet({ subnet: '10.2.0.0/16', range: ['10.2.0.10', '10.2.3.255'] });
      const t = new LeaseTable({ subnets: [s], stateDir: join(dir, sync), sync, now: T0 });
      const all: Promise<void>[] = [];
      for (let i = 0; i < 500; i++) all.push(t.bind(s, `mac:${i}`, `m${i}`, t.allocate(s, T0)!, T0, T0 + 3600_000));
      await Promise.all(all);
      const st = t.journalStats()!;
      assert.equal(st.written, 500);
      assert.ok(st.batches < 500, `${sync}: ${st.batches} batches for 500 leases`);
      await t.close();
      const lines = readFileSync(join(dir, sync, 'dhcp-leases.journal'), 'utf8').trim().split('\n');
      assert.equal(lines.length, 500);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('leases: compaction writes a snapshot and empties the journal; a restart reads both', async () => {
  const dir = tmp();
  try {
    const s = buildSubnet({ subnet: '10.3.0.0/16', range: ['10.3.0.10', '10.3.0.20'] });
    const t = new LeaseTable({ subnets: [s], stateDir: dir, now: T0 });
    // 25,000 renewals of the same 10 leases: the journal passes its compaction threshold.
    for (let round = 0; round < 2500; round++) {
      const batch: Promise<void>[] = [];
      for (let i = 0; i < 10; i++) batch.push(t.bind(s, `mac:${i}`, `m${i}`, ipToInt(`10.3.0.${10 + i}`), T0 + round, T0 + round + 3600_000));
      await Promise.all(batch);
    }
    await t.close();
    assert.ok(existsSync(join(dir, 'dhcp-leases.json')), 'snapshot written');
    const loaded = LeaseJournal.load(dir);
    assert.ok(loaded.lines < 25_000, `journal holds ${loaded.lines} lines after compaction`);
    assert.equal(loaded.records.length, 10);
    const t2 = new LeaseTable({ subnets: [buildSubnet({ subnet: '10.3.0.0/16', range: ['10.3.0.10', '10.3.0.20'] })], stateDir: dir, now: T0 });
    for (let i = 0; i < 10; i++) {
      const l = t2.get(ipToInt(`10.3.0.${10 + i}`))!;
      assert.equal(l.client, `mac:${i}`);
      assert.equal(l.expires, T0 + 2499 + 3600_000);
    }
    await t2.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('leases: records of subnets no longer configured are left out', async () => {
  const dir = tmp();
  try {
    const s = buildSubnet(subnetCfg);
    const t = new LeaseTable({ subnets: [s], stateDir: dir, now: T0 });
    await t.bind(s, 'mac:aa', 'aa', ipToInt('10.1.0.10'), T0, T0 + 3600_000);
    await t.close();
    const t2 = new LeaseTable({ subnets: [buildSubnet({ subnet: '10.7.0.0/24', range: ['10.7.0.10', '10.7.0.20'] })], stateDir: dir, now: T0 });
    assert.equal(t2.size, 0);
    assert.equal(t2.dropped, 1);
    await t2.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
