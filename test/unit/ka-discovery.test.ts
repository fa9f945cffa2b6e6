// Discovery datagrams and the proofs: round trips, typed refusals, and the property
// that a proof is bound to its role, its context and both nonces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeDiscovery, encodeDiscovery } from '../../src/ka/discovery.js';
import { nonce, proof, proofMatches, secretKey } from '../../src/ka/auth.js';
import { parseSize, parseHostPort, resolveSecret, KaUsageError } from '../../src/ka/cli-common.js';

test('discovery request and reply round-trip; bad datagrams give reasons', () => {
  const req = { type: 'request', session: 'getstage2', nonce: 0xdeadbeef } as const;
  assert.deepEqual(decodeDiscovery(encodeDiscovery(req)), { ok: true, msg: req });
  const rep = { type: 'reply', session: 'kainstall1', nonce: 1, controlPort: 30765 } as const;
  assert.deepEqual(decodeDiscovery(encodeDiscovery(rep)), { ok: true, msg: rep });
  const good = encodeDiscovery(req);
  const bad = (f: (b: Buffer) => void) => {
    const b = Buffer.from(good);
    f(b);
    const d = decodeDiscovery(b);
    assert.equal(d.ok, false);
  };
  bad((b) => (b[0] = 0));
  bad((b) => (b[3] = 9));
  bad((b) => (b[4] = 3));
  bad((b) => (b[9] = 200));
  bad((b) => (b[10] = 0x01));
  assert.equal(decodeDiscovery(Buffer.alloc(4)).ok, false);
  assert.equal(decodeDiscovery(Buffer.concat([good, Buffer.from([0])])).ok, false);
  assert.throws(() => encodeDiscovery({ type: 'request', session: '', nonce: 1 }), RangeError);
});

test('proofs: bound to the key, the role, the context and the nonces', () => {
  const k = secretKey('s3cret');
  const a = nonce();
  const b = nonce();
  const p = proof(k, 'node', 'getstage2', a, b);
  assert.ok(proofMatches(proof(k, 'node', 'getstage2', a, b), p));
  assert.ok(!proofMatches(proof(secretKey('other'), 'node', 'getstage2', a, b), p));
  assert.ok(!proofMatches(proof(k, 'coordinator', 'getstage2', a, b), p), 'not reflectable to the other role');
  assert.ok(!proofMatches(proof(k, 'node', 'kainstall1', a, b), p), 'not valid for another session');
  assert.ok(!proofMatches(proof(k, 'node', 'getstage2', b, a), p), 'nonces in order');
  assert.ok(!proofMatches(p.subarray(0, 31), p));
});

test('command-line helpers: sizes, host:port, the secret from flag, file or env', () => {
  assert.equal(parseSize('64M', 'x'), 64 * 1024 * 1024);
  assert.equal(parseSize('512k', 'x'), 512 * 1024);
  assert.equal(parseSize('1GiB', 'x'), 1024 ** 3);
  assert.equal(parseSize('4096', 'x'), 4096);
  assert.throws(() => parseSize('lots', 'x'), KaUsageError);
  assert.deepEqual(parseHostPort('10.0.0.1', 30765), { host: '10.0.0.1', port: 30765 });
  assert.deepEqual(parseHostPort('10.0.0.1:4000', 30765), { host: '10.0.0.1', port: 4000 });
  assert.equal(resolveSecret({ secret: 'a' }, {}), 'a');
  assert.equal(resolveSecret({}, { KABOOT_KA_SECRET: 'env' }), 'env');
  assert.throws(() => resolveSecret({}, {}), KaUsageError);
});

test('discovery: quick first rounds (a node often starts with its coordinator), then the interval', async () => {
  const { discoveryDelay } = await import('../../src/ka/discovery.js');
  assert.deepEqual([0, 1, 2, 3, 4, 5, 50].map((r) => discoveryDelay(r, 1000)), [100, 200, 400, 800, 1000, 1000, 1000]);
  assert.equal(discoveryDelay(0, 50), 50);
});
