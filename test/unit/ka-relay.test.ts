// The ring and the relay with in-memory sinks: bounded holding, backpressure that
// pauses upstream, detached readers, gaps read from a spool, the SHA-256 check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ChunkRing } from '../../src/ka/ring.js';
import { Relay, type Sink } from '../../src/ka/relay.js';
import { Spool } from '../../src/ka/spool.js';

class MemorySink implements Sink {
  chunks: Buffer[] = [];
  at: number[] = [];
  ended: { total: number; digest: Buffer } | null = null;
  destroyed: string | null = null;
  /** accept this many writes before asking to wait */
  budget = Infinity;
  private drain: (() => void) | null = null;
  write(offset: number, data: Buffer): boolean {
    this.at.push(offset);
    this.chunks.push(data);
    return --this.budget > 0;
  }
  onDrain(cb: () => void) {
    this.drain = cb;
  }
  open(n = Infinity) {
    this.budget = n;
    const d = this.drain;
    this.drain = null;
    d?.();
  }
  end(total: number, digest: Buffer) {
    this.ended = { total, digest };
  }
  destroy(reason: string) {
    this.destroyed = reason;
  }
  get bytes() {
    return Buffer.concat(this.chunks);
  }
}

test('ring: keeps at most its capacity (plus one chunk) of what blocking readers released', () => {
  const r = new ChunkRing(100);
  for (let i = 0; i < 10; i++) r.push(Buffer.alloc(30, i));
  assert.equal(r.end, 300);
  r.trim(300);
  assert.ok(r.held >= 100 && r.held <= 130, `held ${r.held}`);
  assert.equal(r.slice(r.start - 1, 10), null);
  assert.equal(r.slice(300, 10), null);
  const v = r.slice(295, 100);
  assert.equal(v?.length, 5);
  assert.equal(v?.[0], 9);
  r.trim(0);
  assert.ok(r.held >= 100);
  assert.throws(() => new ChunkRing(0), RangeError);
});

test('relay: readers get every byte in order, END with the digest, and a slow blocking reader pauses upstream', async () => {
  let paused = 0;
  let resumed = 0;
  const relay = new Relay({ ringBytes: 1000 }, { pause: () => paused++, resume: () => resumed++ });
  const fast = new MemorySink();
  const slow = new MemorySink();
  slow.budget = 2;
  relay.addReader('fast', fast, 0, 'blocking');
  relay.addReader('slow', slow, 0, 'blocking');
  const data = randomBytes(5000);
  let accepted = true;
  let i = 0;
  for (; i < 50 && accepted; i++) accepted = relay.ingest(i * 100, data.subarray(i * 100, (i + 1) * 100));
  assert.equal(accepted, false, 'upstream told to stop once a ring of bytes waits for the slow reader');
  assert.equal(paused, 1);
  assert.ok(relay.fill() >= 1);
  slow.open();
  assert.equal(resumed, 1);
  for (; i < 50; i++) relay.ingest(i * 100, data.subarray(i * 100, (i + 1) * 100));
  const digest = createHash('sha256').update(data).digest();
  relay.finish(5000, digest);
  await new Promise((r) => setImmediate(r));
  assert.ok(fast.bytes.equals(data));
  assert.ok(slow.bytes.equals(data));
  assert.equal(fast.ended?.total, 5000);
  assert.ok(fast.ended?.digest.equals(digest));
  assert.ok(relay.isComplete);
  assert.ok(relay.ownDigest?.equals(digest));
});

test('relay: a wrong digest is reported, not hidden', async () => {
  let got: { digestOk: boolean } | null = null;
  const relay = new Relay({ ringBytes: 100 }, { complete: (c) => (got = c) });
  relay.ingest(0, Buffer.from('hello'));
  relay.finish(5, Buffer.alloc(32));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got && { ok: (got as { digestOk: boolean }).digestOk }, { ok: false });
});

test('relay: a detached reader never pauses upstream, and falls back to the spool behind the ring', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ka-relay-'));
  try {
    const spool = await Spool.create(join(dir, 's'));
    let paused = 0;
    const relay = new Relay({ ringBytes: 300, gapReader: () => spool.gapReader() }, { pause: () => paused++ });
    relay.addReader('spool', spool, 0, 'blocking', true);
    spool.onWritten = () => relay.pumpAll();
    const lazy = new MemorySink();
    lazy.budget = 1;
    relay.addReader('lazy', lazy, 0, 'detached');
    const data = randomBytes(3000);
    for (let i = 0; i < 30; i++) {
      relay.ingest(i * 100, data.subarray(i * 100, (i + 1) * 100));
      while (spool.size < (i + 1) * 100) await new Promise((r) => setTimeout(r, 1));
    }
    spool.end();
    await relay.finishAsSource();
    await spool.whenWritten();
    assert.equal(paused, 0, 'a detached reader holds nobody back');
    assert.ok(relay.ring.start > 0, 'the ring moved on without it');
    lazy.open();
    for (let i = 0; i < 200 && !lazy.ended; i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(lazy.bytes.equals(data), 'the lazy reader got every byte, the old ones from the spool');
    assert.ok(relay.gapBytesTotal > 0);
    assert.ok(readFileSync(spool.path).equals(data));
    await spool.close(true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('relay: a pending reader holds its place until its sink attaches at the offset the child asks for', () => {
  const relay = new Relay({ ringBytes: 10_000 });
  relay.addPendingReader('child', 0, 'blocking');
  const data = randomBytes(1000);
  relay.ingest(0, data);
  const s = new MemorySink();
  assert.equal(relay.attachSink('child', s, 400), true);
  assert.ok(s.bytes.equals(data.subarray(400)));
  assert.equal(s.at[0], 400);
  assert.equal(relay.attachSink('nobody', new MemorySink(), 0), false);
});

test('relay: without a spool, a reader behind the ring is dropped with a reason', () => {
  const failed: string[] = [];
  const relay = new Relay({ ringBytes: 100 }, { readerFailed: (k) => failed.push(k) });
  const keep = new MemorySink();
  relay.addReader('keep', keep, 0, 'blocking');
  for (let i = 0; i < 10; i++) relay.ingest(i * 50, Buffer.alloc(50, i));
  const late = new MemorySink();
  relay.addReader('late', late, 0, 'blocking');
  assert.deepEqual(failed, ['late']);
  assert.match(late.destroyed ?? '', /no longer held/);
});

test('relay: the SHA-256 computed by openssl on a pipe matches, and feeds nothing else', async () => {
  const { opensslHasher } = await import('../../src/ka/hasher.js');
  let got: { digestOk: boolean; digest: Buffer } | null = null;
  const relay = new Relay({ ringBytes: 1 << 20, hasher: opensslHasher }, { complete: (c) => (got = c) });
  const out = new MemorySink();
  relay.addReader('out', out, 0, 'blocking');
  const data = randomBytes(3 << 20);
  for (let i = 0; i < 48; i++) {
    relay.ingest(i * 65536, data.subarray(i * 65536, (i + 1) * 65536));
    await new Promise((r) => setImmediate(r));
  }
  const digest = createHash('sha256').update(data).digest();
  relay.finish(data.length, digest);
  for (let i = 0; i < 500 && !got; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(got, 'complete');
  assert.equal((got as { digestOk: boolean }).digestOk, true);
  assert.ok(out.bytes.equals(data));
  assert.ok(out.ended?.digest.equals(digest));
  const source = new Relay({ ringBytes: 1 << 20, hasher: opensslHasher });
  source.ingest(0, data.subarray(0, 1000));
  const fin = await source.finishAsSource();
  assert.ok(fin.digest.equals(createHash('sha256').update(data.subarray(0, 1000)).digest()));
});
