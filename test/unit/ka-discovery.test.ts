// Discovery datagrams and the proofs: round trips, typed refusals, and the property
// that a proof is bound to its role, its context and both nonces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { pino } from 'pino';
import { announcePort, decodeDiscovery, discover, DiscoveryResponder, encodeDiscovery } from '../../src/ka/discovery.js';
import { nonce, proof, proofMatches, secretKey } from '../../src/ka/auth.js';
import { parseSize, parseHostPort, resolveSecret, KaUsageError } from '../../src/ka/cli-common.js';

test('discovery request and reply round-trip; bad datagrams give reasons', () => {
  const req = { type: 'request', session: 'getstage2', nonce: 0xdeadbeef } as const;
  assert.deepEqual(decodeDiscovery(encodeDiscovery(req)), { ok: true, msg: req });
  const rep = { type: 'reply', session: 'kainstall1', nonce: 1, controlPort: 30765 } as const;
  assert.deepEqual(decodeDiscovery(encodeDiscovery(rep)), { ok: true, msg: rep });
  const ann = { type: 'announce', session: 'kainstall2', nonce: 0, controlPort: 30765 } as const;
  assert.deepEqual(decodeDiscovery(encodeDiscovery(ann)), { ok: true, msg: ann });
  const good = encodeDiscovery(req);
  const bad = (f: (b: Buffer) => void) => {
    const b = Buffer.from(good);
    f(b);
    const d = decodeDiscovery(b);
    assert.equal(d.ok, false);
  };
  bad((b) => (b[0] = 0));
  bad((b) => (b[3] = 9));
  bad((b) => (b[4] = 3)); // an announce needs its control port
  bad((b) => (b[4] = 4));
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

test('discovery: a coordinator announces its session as it starts, and a node looking for it takes the announcement', async () => {
  const logger = pino({ level: 'silent' });
  // a free port pair on loopback: nothing answers requests sent to `port`
  const probe = createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, '127.0.0.1', r));
  const port = probe.address().port;
  probe.close();

  // the node's side: requests go unanswered, the announcement finds the session
  const found = discover({ session: 'kainstall1', port, targets: ['127.0.0.1'], intervalMs: 60_000, logger });
  const sender = createSocket('udp4');
  const announce = (session: string) =>
    new Promise<void>((r) => sender.send(encodeDiscovery({ type: 'announce', session, nonce: 0, controlPort: 31000 }), announcePort(port) as number, '127.0.0.1', () => r()));
  for (let i = 0; i < 50; i++) {
    await announce('another-session');
    await announce('kainstall1');
    const settled = await Promise.race([found.then(() => true), new Promise((r) => setTimeout(() => r(false), 20))]);
    if (settled) break;
  }
  assert.deepEqual(await found, { host: '127.0.0.1', port: 31000 });
  sender.close();

  // the coordinator's side: bind() sends one announcement to the discovery port + 1
  const listener = createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((r) => listener.bind(announcePort(port) as number, '127.0.0.1', r));
  assert.equal(announcePort(65535), null, 'no announcement port past 65535');
  const got = once(listener, 'message');
  const responder = new DiscoveryResponder({ session: 'kainstall2', controlPort: 31001, logger });
  await responder.bind(port, '127.0.0.1', ['127.0.0.1']);
  const [msg] = (await got) as [Buffer];
  assert.deepEqual(decodeDiscovery(msg), { ok: true, msg: { type: 'announce', session: 'kainstall2', nonce: 0, controlPort: 31001 } });
  responder.close();
  listener.close();
});

test('discovery datagrams fuzzed: 20,000 random and mutated datagrams decode to a message or a reason, never a throw', () => {
  let seed = 0x5eed;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const seeds = [
    encodeDiscovery({ type: 'request', session: 'getstage2', nonce: 7 }),
    encodeDiscovery({ type: 'reply', session: 'kainstall1', nonce: 7, controlPort: 30765 }),
    encodeDiscovery({ type: 'announce', session: 'kainstall2', nonce: 0, controlPort: 30765 }),
  ];
  let decoded = 0;
  for (let i = 0; i < 20_000; i++) {
    let b: Buffer;
    if (i % 2 === 0) {
      b = Buffer.from(seeds[i % 3] as Buffer);
      for (let k = 1 + Math.floor(rand() * 3); k > 0; k--) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      if (rand() < 0.2) b = b.subarray(0, Math.floor(rand() * b.length));
    } else {
      b = Buffer.from(Array.from({ length: Math.floor(rand() * 300) }, () => Math.floor(rand() * 256)));
    }
    const d = decodeDiscovery(b);
    if (d.ok) {
      decoded++;
      assert.deepEqual(decodeDiscovery(encodeDiscovery(d.msg)), d, 'what decodes encodes back the same');
    } else assert.equal(typeof d.reason, 'string');
  }
  assert.ok(decoded > 0 && decoded < 20_000);
});
