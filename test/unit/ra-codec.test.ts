// The RA/RS codec: the exact bytes of the "no IPv6 service here" advertisement, and
// router solicitations as rdisc6, iPXE and the kernel send them, good and broken.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeRouterAdvertisement, decodeRouterAdvertisement, decodeRouterSolicitation, quietAdvertisement,
} from '../../src/ra/codec.js';

test('the quiet advertisement without options is 16 bytes: type 134, code 0, everything else 0', () => {
  const b = encodeRouterAdvertisement(quietAdvertisement());
  assert.deepEqual([...b], [134, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
});

test('with a MAC it carries one source link-layer address option (type 1, length 1) and nothing else', () => {
  const b = encodeRouterAdvertisement(quietAdvertisement('52:54:00:ab:cd:ef'));
  assert.equal(b.length, 24);
  assert.deepEqual([...b.subarray(0, 16)], [134, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...b.subarray(16)], [1, 1, 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);
});

test('fields land where RFC 4861 4.2 puts them', () => {
  const b = encodeRouterAdvertisement({ curHopLimit: 64, managed: true, other: true, routerLifetime: 1800, reachableTime: 30000, retransTimer: 1000 });
  assert.equal(b.toString('hex'), '8600' + '0000' + '40' + 'c0' + '0708' + '00007530' + '000003e8');
  const back = decodeRouterAdvertisement(b);
  assert.ok(back.ok);
  assert.deepEqual(back.value, { curHopLimit: 64, managed: true, other: true, routerLifetime: 1800, reachableTime: 30000, retransTimer: 1000, sourceLinkLayer: undefined, options: [] });
  const quiet = decodeRouterAdvertisement(encodeRouterAdvertisement(quietAdvertisement('02:00:00:00:00:01')));
  assert.ok(quiet.ok);
  assert.equal(quiet.value.sourceLinkLayer, '02:00:00:00:00:01');
  assert.equal(quiet.value.options.length, 1);
});

test('a bad MAC is refused, not encoded', () => {
  assert.throws(() => encodeRouterAdvertisement(quietAdvertisement('52:54:00:ab:cd')), TypeError);
});

test('a router solicitation with a source link-layer option (as rdisc6 and iPXE send it)', () => {
  const rs = Buffer.from('85000000' + '00000000' + '0101' + '5254001234ab', 'hex');
  const d = decodeRouterSolicitation(rs);
  assert.ok(d.ok);
  assert.equal(d.value.sourceLinkLayer, '52:54:00:12:34:ab');
  assert.equal(d.value.options.length, 1);
});

test('a router solicitation without options (from ::)', () => {
  const d = decodeRouterSolicitation(Buffer.from('8500000000000000', 'hex'));
  assert.ok(d.ok);
  assert.equal(d.value.sourceLinkLayer, undefined);
  assert.deepEqual(d.value.options, []);
});

test('broken solicitations give typed errors', () => {
  const cases: [string, string][] = [
    ['850000', 'short'],
    ['8600000000000000', 'wrong-type'],
    ['8501000000000000', 'bad-code'],
    ['8500000000000000' + '0100', 'bad-option'], // zero-length option
    ['8500000000000000' + '0102525400123456', 'bad-option'], // says 16 bytes, has 8
    ['8500000000000000' + '01', 'bad-option'], // half an option header
  ];
  for (const [hex, kind] of cases) {
    const d = decodeRouterSolicitation(Buffer.from(hex, 'hex'));
    assert.equal(d.ok, false, hex);
    if (!d.ok) assert.equal(d.error.kind, kind, hex);
  }
});

test('every truncation of a valid solicitation decodes or fails typed, never throws', () => {
  const rs = Buffer.from('8500000000000000' + '0101' + '5254001234ab' + '0e01' + '000000000000', 'hex');
  for (let n = 0; n <= rs.length; n++) {
    const d = decodeRouterSolicitation(rs.subarray(0, n));
    assert.equal(d.ok, n === 8 || n === 16 || n === 24, String(n));
  }
});
