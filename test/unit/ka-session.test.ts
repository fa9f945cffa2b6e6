// The library API the appliance uses (startSession / joinSession / stats), in one
// process over loopback: a chain of three, a go-now before the expected count, the
// stats while running, and the result.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { startSession, joinSession, type SessionStats } from '../../src/ka/index.js';
import { silentLogger } from '../../src/log.js';

test('startSession + joinSession over loopback: three nodes, go now, stats, results', { timeout: 60_000 }, async () => {
  const data = randomBytes(24 * 1024 * 1024);
  const sha = createHash('sha256').update(data).digest('hex');
  // the source trickles so stats can be seen while it runs
  const chunks = Array.from({ length: 96 }, (_, i) => data.subarray(i * 262144, (i + 1) * 262144));
  const source = Readable.from((async function* () {
    for (const c of chunks) {
      await new Promise((r) => setTimeout(r, 5));
      yield c;
    }
  })());
  const session = await startSession({
    session: 'unit', secret: 's', expectedNodes: 10, source: { stream: source },
    controlPort: 0, dataPort: 0, discoveryPort: null, bindHost: '127.0.0.1', ringBytes: 1 << 20, statsIntervalMs: 200, logger: silentLogger,
  });
  const join = (name: string, goNow = false) =>
    joinSession({ session: 'unit', secret: 's', coordinator: { host: '127.0.0.1', port: session.controlPort }, name, dataPort: 0, bindHost: '127.0.0.1', goNow, ringBytes: 1 << 20, statsIntervalMs: 200, logger: silentLogger, hash: 'node' });
  const a = join('a');
  const b = join('b');
  while (session.stats().joined < 2) await new Promise((r) => setTimeout(r, 10));
  assert.equal(session.stats().state, 'waiting');
  const c = join('c', true); // -g: starts with the three present, not the ten expected
  let seen: SessionStats | null = null;
  for (let i = 0; i < 400 && !seen; i++) {
    const s = session.stats();
    if (s.state === 'running' && s.nodes.some((n) => n.position > 0)) seen = s;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(seen, 'stats while running');
  assert.equal(seen.nodes.length, 3);
  // a chain in join order (all on 127.0.0.1): source → 1 → 2 → 3
  assert.deepEqual(seen.nodes.map((n) => n.parent), [0, 1, 2]);
  const results = await Promise.all([a, b, c]);
  const res = await session.result;
  assert.equal(res.ok, true, JSON.stringify({ nodes: res.nodes, results, events: res.events.slice(-12) }, null, 1));
  assert.equal(res.total, data.length);
  assert.equal(res.digest, sha);
  for (const r of results) {
    assert.equal(r.ok, true, r.error ?? '');
    assert.equal(r.digest, sha);
    assert.equal(r.bytes, data.length);
  }
  assert.deepEqual(res.nodes.map((n) => n.digestOk), [true, true, true]);
  assert.equal(session.stats().state, 'done');
});
