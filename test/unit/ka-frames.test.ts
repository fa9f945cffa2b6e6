// KA codec: every frame type round-trips, every error code is reachable, the
// incremental reader gives the same result at any chunking, and random or mutated
// bytes never throw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  decodeFrame, decodeHeader, encodeFrame, dataFrameHeader, FrameReader, FrameType, HEADER_LEN, MAGIC, VERSION,
  MAX_CONTROL_PAYLOAD, type Frame, type ReadEvent,
} from '../../src/ka/frames.js';

const b32 = () => randomBytes(32);
const samples: Frame[] = [
  { type: 'HELLO', nonce: b32(), session: 'getstage2', nodeName: 'node-é1', dataPort: 30764, wait: true, goNow: false },
  { type: 'HELLO', nonce: b32(), session: 'k', nodeName: '', dataPort: 1, wait: false, goNow: true },
  { type: 'CHALLENGE', nonce: b32(), proof: b32() },
  { type: 'AUTH', proof: b32() },
  { type: 'WELCOME', nodeId: 7, running: true, dataPort: 30764, spoolLinkId: 3, spoolToken: b32() },
  { type: 'REFUSE', code: 401, reason: 'wrong secret' },
  { type: 'GO_NOW' },
  { type: 'ATTACH', linkId: 9, token: b32(), mode: 'detached', host: '10.0.1.40', port: 30764, parentId: 0 },
  { type: 'EXPECT_CHILD', linkId: 9, childId: 4, token: b32(), mode: 'blocking', offset: 2 ** 40 + 5 },
  { type: 'DROP_CHILD', childId: 4 },
  {
    type: 'STATS', position: 2 ** 33, ringStart: 2 ** 32, fillPermille: 1000, windowMs: 1000, bytesIn: 123, consumerBytes: 99,
    consumerBlockedMs: 5, pausedMs: 7, children: [{ childId: 2, bytes: 10, blockedMs: 3 }, { childId: 3, bytes: 0, blockedMs: 0 }],
  },
  { type: 'LINK_LOST', linkId: 1, offset: Number.MAX_SAFE_INTEGER },
  { type: 'RESULT', bytes: 1 << 30, digestOk: true, exitCode: -1, durationMs: 4000, digest: b32() },
  { type: 'RELEASE' },
  { type: 'ABORT', reason: 'interrupted' },
  { type: 'LINKED', linkId: 5, offset: 0 },
  { type: 'LINK_HELLO', linkId: 5, nonce: b32() },
  { type: 'LINK_CHALLENGE', nonce: b32(), proof: b32() },
  { type: 'LINK_AUTH', proof: b32(), offset: 77 },
  { type: 'DATA', offset: 1 << 20, data: randomBytes(1000) },
  { type: 'END', total: 1 << 30, digest: b32() },
  { type: 'LINK_REFUSE', code: 2, reason: 'bad proof' },
];

test('every frame type round-trips, big-endian with the header it should have', () => {
  const seen = new Set<string>();
  for (const f of samples) {
    const buf = encodeFrame(f);
    assert.equal(buf[0], MAGIC);
    assert.equal(buf[1], VERSION);
    assert.equal(buf[2], FrameType[f.type]);
    assert.equal(buf.readUInt32BE(4), buf.length - HEADER_LEN);
    const d = decodeFrame(buf);
    assert.ok(d.ok, JSON.stringify(d));
    assert.deepEqual(d.frame, f);
    seen.add(f.type);
  }
  assert.deepEqual([...seen].sort(), Object.keys(FrameType).sort(), 'a sample for every type');
});

test('64-bit offsets are big-endian on the wire', () => {
  const buf = encodeFrame({ type: 'LINK_LOST', linkId: 1, offset: 0x0102030405 });
  assert.deepEqual([...buf.subarray(12, 20)], [0, 0, 0, 1, 2, 3, 4, 5]);
  const h = dataFrameHeader(0x0a0b0c0d0e, 10);
  assert.equal(h.readUInt32BE(4), 18);
  assert.equal(h.readBigUInt64BE(8), 0x0a0b0c0d0en);
});

function errorOf(buf: Buffer): string {
  const d = decodeFrame(buf);
  assert.equal(d.ok, false);
  return d.ok ? '' : d.error.code;
}

test('each error code', () => {
  const good = encodeFrame({ type: 'AUTH', proof: b32() });
  const mut = (i: number, v: number) => {
    const c = Buffer.from(good);
    c[i] = v;
    return c;
  };
  assert.equal(errorOf(mut(0, 0x4c)), 'bad-magic');
  assert.equal(errorOf(mut(1, 2)), 'bad-version');
  assert.equal(errorOf(mut(2, 200)), 'unknown-type');
  assert.equal(errorOf(mut(3, 1)), 'bad-flags');
  const long = Buffer.from(good);
  long.writeUInt32BE(MAX_CONTROL_PAYLOAD + 1, 4);
  assert.equal(errorOf(long), 'too-long');
  assert.equal(errorOf(good.subarray(0, 5)), 'bad-length');
  assert.equal(errorOf(good.subarray(0, good.length - 1)), 'bad-length');
  // payload shorter than the type needs, with a consistent length
  const short = Buffer.concat([good.subarray(0, HEADER_LEN), good.subarray(HEADER_LEN, HEADER_LEN + 10)]);
  short.writeUInt32BE(10, 4);
  assert.equal(errorOf(short), 'bad-length');
  // trailing bytes
  const trail = Buffer.concat([good, Buffer.from([1])]);
  trail.writeUInt32BE(33, 4);
  assert.equal(errorOf(trail), 'bad-length');
  // bad string: invalid UTF-8 and control characters
  const hello = encodeFrame({ type: 'HELLO', nonce: b32(), session: 'ab', nodeName: 'x', dataPort: 1, wait: false, goNow: false });
  const badUtf = Buffer.from(hello);
  badUtf[HEADER_LEN + 33] = 0xff;
  assert.equal(errorOf(badUtf), 'bad-string');
  const ctrl = Buffer.from(hello);
  ctrl[HEADER_LEN + 33] = 0x0a;
  assert.equal(errorOf(ctrl), 'bad-string');
  // bad values: a boolean of 2, hello flags, an empty session, fill above 1000, ring start past position
  const res = encodeFrame({ type: 'RESULT', bytes: 1, digestOk: true, exitCode: 0, durationMs: 1, digest: b32() });
  res[HEADER_LEN + 8] = 2;
  assert.equal(errorOf(res), 'bad-value');
  const flags = Buffer.from(hello);
  flags[flags.length - 1] = 4;
  assert.equal(errorOf(flags), 'bad-value');
  assert.equal(errorOf(encodeFrame({ type: 'HELLO', nonce: b32(), session: 'x', nodeName: 'x', dataPort: 1, wait: false, goNow: false }).fill(0, HEADER_LEN + 32, HEADER_LEN + 33).subarray(0)), 'bad-length');
  const stats = (position: number, ringStart: number, fill = 0) =>
    encodeFrame({ type: 'STATS', position, ringStart, fillPermille: fill, windowMs: 1, bytesIn: 0, consumerBytes: 0, consumerBlockedMs: 0, pausedMs: 0, children: [] });
  assert.equal(errorOf(stats(1, 2)), 'bad-value');
  assert.equal(errorOf(stats(1, 0, 1001)), 'bad-value');
  const mode = encodeFrame({ type: 'DROP_CHILD', childId: 1 });
  assert.ok(decodeFrame(mode).ok);
  const attach = encodeFrame({ type: 'ATTACH', linkId: 1, token: b32(), mode: 'blocking', host: 'h', port: 1, parentId: 0 });
  attach[HEADER_LEN + 36] = 3;
  assert.equal(errorOf(attach), 'bad-value');
  // an offset beyond 2^53-1
  const big = encodeFrame({ type: 'LINK_LOST', linkId: 1, offset: 0 });
  big.writeBigUInt64BE(2n ** 60n, 12);
  assert.equal(errorOf(big), 'offset-too-large');
  // empty DATA
  assert.equal(errorOf(Buffer.concat([dataFrameHeader(0, 0)])), 'bad-length');
});

test('an empty session name is refused', () => {
  const f = encodeFrame({ type: 'HELLO', nonce: b32(), session: 'a', nodeName: 'x', dataPort: 1, wait: false, goNow: false });
  // rebuild with a zero-length session: drop the name byte, fix the lengths
  const body = Buffer.concat([f.subarray(HEADER_LEN, HEADER_LEN + 32), Buffer.from([0]), f.subarray(HEADER_LEN + 34)]);
  const h = Buffer.from(f.subarray(0, HEADER_LEN));
  h.writeUInt32BE(body.length, 4);
  assert.equal(errorOf(Buffer.concat([h, body])), 'bad-value');
});

function collect(chunks: Buffer[]): { frames: Frame[]; data: Buffer; dataAt: number[]; errors: string[] } {
  const r = new FrameReader();
  const frames: Frame[] = [];
  const data: Buffer[] = [];
  const dataAt: number[] = [];
  const errors: string[] = [];
  for (const c of chunks) {
    for (const ev of r.push(c) as ReadEvent[]) {
      if (ev.kind === 'frame') frames.push(ev.frame);
      else if (ev.kind === 'data') {
        data.push(ev.data);
        dataAt.push(ev.offset);
      } else errors.push(ev.error.code);
    }
  }
  return { frames, data: Buffer.concat(data), dataAt, errors };
}

test('FrameReader: the same frames and bytes at every chunking, DATA handed out as views', () => {
  const payload = randomBytes(70_000);
  const stream = Buffer.concat([
    encodeFrame(samples[2] as Frame),
    dataFrameHeader(500, payload.length),
    payload,
    encodeFrame({ type: 'END', total: 500 + payload.length, digest: Buffer.alloc(32, 1) }),
  ]);
  const whole = collect([stream]);
  assert.equal(whole.frames.length, 2);
  assert.ok(whole.data.equals(payload));
  assert.equal(whole.dataAt[0], 500);
  for (const size of [1, 7, 8, 9, 15, 16, 17, 1000, 65536]) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < stream.length; i += size) chunks.push(stream.subarray(i, i + size));
    const got = collect(chunks);
    assert.deepEqual(got.frames, whole.frames, `chunk ${size}`);
    assert.ok(got.data.equals(payload), `chunk ${size}`);
    assert.deepEqual(got.errors, []);
    // offsets of the pieces are contiguous
    let at = 500;
    const r = new FrameReader();
    for (const c of chunks) for (const ev of r.push(c)) if (ev.kind === 'data') {
      assert.equal(ev.offset, at);
      at += ev.data.length;
    }
  }
});

test('FrameReader: stops after the first error and refuses types it is told to', () => {
  const r = new FrameReader({ allow: (t) => t === FrameType.AUTH });
  const ev = r.push(Buffer.concat([encodeFrame({ type: 'GO_NOW' }), encodeFrame({ type: 'AUTH', proof: b32() })]));
  assert.equal(ev.length, 1);
  assert.equal(ev[0]?.kind, 'error');
  assert.equal(r.failed, true);
  assert.deepEqual(r.push(encodeFrame({ type: 'AUTH', proof: b32() })), []);
  // a header whose length is over the limit is refused before its payload arrives
  const r2 = new FrameReader();
  const h = Buffer.from(encodeFrame({ type: 'GO_NOW' }));
  h.writeUInt32BE(0x7fffffff, 4);
  assert.equal(r2.push(h)[0]?.kind, 'error');
});

test('fuzz: 50,000 random and mutated buffers never throw, and decoded frames re-encode', () => {
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  let decoded = 0;
  for (let i = 0; i < 50_000; i++) {
    let buf: Buffer;
    if (i % 2 === 0) {
      buf = Buffer.from(encodeFrame(samples[rnd(samples.length)] as Frame));
      for (let j = 0, n = 1 + rnd(3); j < n; j++) buf[rnd(buf.length)] = rnd(256);
    } else {
      buf = randomBytes(rnd(80));
      if (buf.length >= 3 && rnd(2)) {
        buf[0] = MAGIC;
        buf[1] = VERSION;
        buf[2] = rnd(40);
      }
    }
    const d = decodeFrame(buf);
    if (d.ok) {
      decoded++;
      assert.ok(decodeFrame(encodeFrame(d.frame)).ok);
    }
    const r = new FrameReader();
    r.push(buf.subarray(0, rnd(buf.length + 1)));
    r.push(buf.subarray(0, rnd(buf.length + 1)));
  }
  assert.ok(decoded > 0);
  assert.equal(decodeHeader(Buffer.alloc(3)).ok, false);
});
