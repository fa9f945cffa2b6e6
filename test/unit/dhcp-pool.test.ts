import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressPool, intToIp, ipToInt } from '../../src/dhcp/pool.js';
import { buildSubnet } from '../../src/dhcp/subnets.js';

test('pool: ints and dotted quads round-trip', () => {
  for (const ip of ['0.0.0.0', '10.0.0.1', '192.168.255.254', '255.255.255.255']) assert.equal(intToIp(ipToInt(ip)), ip);
});

test('pool: hands out the lowest never-used address first, skips exclusions, then reports exhaustion', () => {
  const p = new AddressPool(ipToInt('10.0.0.10'), ipToInt('10.0.0.14'), [ipToInt('10.0.0.11')]);
  assert.equal(p.size, 4);
  const got = [p.takeAny(), p.takeAny(), p.takeAny(), p.takeAny()].map((n) => intToIp(n!));
  assert.deepEqual(got, ['10.0.0.10', '10.0.0.12', '10.0.0.13', '10.0.0.14']);
  assert.equal(p.takeAny(), undefined);
  assert.equal(p.free, 0);
});

test('pool: released addresses come back oldest-freed first, after the fresh ones', () => {
  const p = new AddressPool(1, 4);
  for (let i = 0; i < 4; i++) p.takeAny();
  p.release(3);
  p.release(1);
  assert.equal(p.takeAny(), 3);
  assert.equal(p.takeAny(), 1);
  assert.equal(p.takeAny(), undefined);
});

test('pool: take a specific address, once', () => {
  const p = new AddressPool(100, 199);
  assert.equal(p.take(150), true);
  assert.equal(p.take(150), false);
  assert.equal(p.isFree(150), false);
  assert.equal(p.take(99), false);
  p.release(150);
  assert.equal(p.isFree(150), true);
  // taken again after release, then released again: counted once
  assert.equal(p.take(150), true);
  p.release(150);
  assert.equal(p.free, 100);
});

test('pool: 65,000 addresses allocate and recycle without scanning (stays consistent under churn)', () => {
  const p = new AddressPool(ipToInt('10.50.0.2'), ipToInt('10.50.254.9'));
  const n = p.size;
  assert.ok(n >= 65_000);
  const seen = new Set<number>();
  for (let i = 0; i < n; i++) seen.add(p.takeAny()!);
  assert.equal(seen.size, n);
  assert.equal(p.takeAny(), undefined);
  // churn: release and take back many times, mixing specific takes
  for (let round = 0; round < 5; round++) {
    for (let a = p.first + round; a <= p.last; a += 7) p.release(a);
    for (let a = p.first + round; a <= p.last; a += 14) assert.equal(p.take(a), true);
    const free = p.free;
    const back = new Set<number>();
    for (let i = 0; i < free; i++) back.add(p.takeAny()!);
    assert.equal(back.size, free);
    assert.equal(p.takeAny(), undefined);
  }
});

test('subnet: pool excludes network, broadcast, reservations and our own address', () => {
  const s = buildSubnet({ subnet: '10.9.0.0/29', range: ['10.9.0.0', '10.9.0.7'], hosts: [{ mac: '52:54:00:00:00:01', address: '10.9.0.3' }] }, ['10.9.0.1']);
  const got: string[] = [];
  for (let a = s.pool!.takeAny(); a !== undefined; a = s.pool!.takeAny()) got.push(intToIp(a));
  assert.deepEqual(got, ['10.9.0.2', '10.9.0.4', '10.9.0.5', '10.9.0.6']);
  assert.equal(s.mask, '255.255.255.248');
  assert.equal(s.broadcast, '10.9.0.7');
  assert.equal(s.reservations.get('52:54:00:00:00:01')?.address, '10.9.0.3');
});
