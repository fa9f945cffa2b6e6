// Which solicitations kaboot answers, where to and when.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateSolicitation, planReply, ALL_NODES, MIN_DELAY_BETWEEN_RAS_MS } from '../../src/ra/policy.js';

const withLla = Buffer.from('85000000000000000101525400123456', 'hex');
const bare = Buffer.from('8500000000000000', 'hex');

test('a solicitation with hop limit 255 from a link-local address is accepted', () => {
  const v = validateSolicitation({ data: withLla, source: 'fe80::5054:ff:fe12:3456', hopLimit: 255 });
  assert.ok(v.accept);
  assert.equal(v.source, 'fe80::5054:ff:fe12:3456');
  assert.equal(v.solicitation.sourceLinkLayer, '52:54:00:12:34:56');
});

test('a solicitation that crossed a router (hop limit below 255) or of unknown hop limit is ignored', () => {
  for (const hopLimit of [254, 64, 1, -1]) {
    assert.deepEqual(validateSolicitation({ data: withLla, source: 'fe80::1', hopLimit }), { accept: false, why: 'hop-limit' });
  }
});

test('from :: a link-layer option is invalid (RFC 4861 6.1.1); without it the solicitation is accepted', () => {
  assert.deepEqual(validateSolicitation({ data: withLla, source: '::', hopLimit: 255 }), { accept: false, why: 'unspecified-with-lla' });
  assert.ok(validateSolicitation({ data: bare, source: '::', hopLimit: 255 }).accept);
});

test('a malformed message is ignored with the codec\'s reason', () => {
  assert.deepEqual(validateSolicitation({ data: Buffer.from('8501000000000000', 'hex'), source: 'fe80::1', hopLimit: 255 }), { accept: false, why: 'bad-code' });
  assert.deepEqual(validateSolicitation({ data: Buffer.from('85', 'hex'), source: 'fe80::1', hopLimit: 255 }), { accept: false, why: 'short' });
});

test('a solicitor with an address is answered by unicast at once, however recent the last advertisement', () => {
  assert.deepEqual(planReply('fe80::1', 1000, 999), { to: 'fe80::1', at: 1000 });
});

test('a solicitor without an address is answered to all nodes, at most once per MIN_DELAY_BETWEEN_RAS', () => {
  assert.deepEqual(planReply('::', 1000, undefined), { to: ALL_NODES, at: 1000 });
  assert.deepEqual(planReply('::', 1000, 500), { to: ALL_NODES, at: 500 + MIN_DELAY_BETWEEN_RAS_MS });
  assert.deepEqual(planReply('::', 10_000, 500), { to: ALL_NODES, at: 10_000 });
});
