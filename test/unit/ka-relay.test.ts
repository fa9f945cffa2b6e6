// The ring and the relay with in-memory sinks: bounded holding, backpressure that
// pauses upstream, detached readers, gaps read from a spool, the SHA-256 check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ByteRing } from '../../src/ka/ring.js';
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
    // the data is a view of the ring, reused once write() returns: keep a copy
    this.chunks.push(Buffer.from(data));
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

test('ring: one buffer written in a circle, never over what is still held', () => {
  const r = new ByteRing(100);
  const data = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 251));
  // nothing held: everything fits, the oldest bytes go
  assert.equal(r.write(data.subarray(0, 250), 250), 250);
  assert.equal(r.end, 250);
  assert.equal(r.start, 150);
  assert.equal(r.slice(149, 10), null);
  assert.equal(r.slice(250, 10), null);
  const v = r.slice(190, 100) as Buffer;
  assert.equal(v.length, 10, 'a view stops at the wrap');
  assert.ok(v.equals(data.subarray(190, 200)));
  assert.ok((r.slice(200, 100) as Buffer).equals(data.subarray(200, 250)));
  // someone still needs offset 200: only 50 bytes of room
  assert.equal(r.space(200), 50);
  assert.equal(r.write(data.subarray(250, 300), 200), 50);
  assert.equal(r.reserve(10, 200).length, 0, 'no room past what is held');
  assert.ok((r.slice(200, 100) as Buffer).equals(data.subarray(200, 300)));
  // a read straight into the ring: reserve, then commit what arrived
  const view = r.reserve(30, 300);
  assert.equal(view.length, 30);
  view.fill(7, 0, 20);
  r.commit(20);
  assert.equal(r.end, 320);
  assert.deepEqual([...(r.slice(300, 20) as Buffer)], new Array(20).fill(7));
  assert.throws(() => new ByteRing(0), RangeError);
});

test('ring: the buffer is used from its start and only as far as held bytes need, every view is the stream', () => {
  const r = new ByteRing(1000, 100);
  const data = Buffer.from(Array.from({ length: 20000 }, (_, i) => (i * 7) % 251));
  const check = () => {
    for (let o = r.start; o < r.end; ) {
      const v = r.slice(o, 1000) as Buffer;
      assert.ok(v.length > 0);
      assert.ok(v.equals(data.subarray(o, o + v.length)), `bytes at ${o}`);
      o += v.length;
    }
  };
  // a reader 30 bytes behind: the first 100 bytes of memory suffice, and hold nearly that much history
  let at = 0;
  while (at < 2000) {
    const n = r.write(data.subarray(at, at + 25), Math.max(0, at - 30));
    assert.ok(n > 0);
    at += n;
  }
  assert.equal(r.inUse, 100, 'never more than the first 100 bytes of memory');
  assert.ok(r.held >= 70, `history kept: ${r.held}`);
  check();
  // a reader that stays 250 bytes behind: more memory, as much as it needs
  while (at < 4000) at += r.write(data.subarray(at, at + 25), Math.max(0, at - 250));
  assert.ok(r.inUse >= 250 && r.inUse <= 400, `in use ${r.inUse}`);
  assert.ok(r.start <= at - 250);
  check();
  // a stuck reader: the ring fills to its capacity and stops, holding every byte from it on
  const stuck = at - 200;
  while (r.write(data.subarray(at, at + 25), stuck) > 0) at = r.end;
  assert.equal(r.end, stuck + 1000);
  assert.equal(r.inUse, 1000);
  assert.ok(r.start <= stuck);
  check();
  // random reads, commits shorter than the reservation, and a reader that wanders
  let lag = 0;
  let seed = 1;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
  while (at < 19000) {
    lag = Math.max(0, Math.min(990, lag + rnd(201) - 100));
    const hold = Math.max(r.start, at - lag);
    const view = r.reserve(1 + rnd(300), hold);
    const n = Math.min(view.length, rnd(view.length + 1));
    data.copy(view, 0, at, at + n);
    r.commit(n);
    at += n;
    assert.ok(r.start <= hold, `held bytes from ${hold} kept (start ${r.start})`);
    check();
  }
  assert.ok(r.inUse <= 1000);
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

test('relay: a sink with batchBytes gets writes of at least that much, the rest after batchMs and at the end', async () => {
  const relay = new Relay({ ringBytes: 10_000, batchMs: 5 });
  const batched = Object.assign(new MemorySink(), { batchBytes: 300 });
  const plain = new MemorySink();
  relay.addReader('batched', batched, 0, 'blocking');
  relay.addReader('plain', plain, 0, 'blocking');
  const data = randomBytes(2050);
  for (let i = 0; i < 20; i++) relay.ingest(i * 100, data.subarray(i * 100, (i + 1) * 100));
  assert.equal(plain.chunks.length, 20, 'a sink without batchBytes gets every piece at once');
  assert.ok(batched.chunks.every((c) => c.length >= 300), `batched writes: ${batched.chunks.map((c) => c.length).join(' ')}`);
  assert.ok(batched.bytes.equals(data.subarray(0, batched.bytes.length)));
  const before = batched.bytes.length;
  assert.ok(before < 2000 && before >= 1800);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(batched.bytes.length, 2000, 'a small remainder goes out after batchMs');
  relay.ingest(2000, data.subarray(2000));
  relay.finish(2050, createHash('sha256').update(data).digest());
  await new Promise((r) => setImmediate(r));
  assert.ok(batched.bytes.equals(data), 'the last bytes go out at the end without waiting');
  assert.equal(batched.ended?.total, 2050);
  relay.close();
});

test('relay: readAhead pauses upstream once blocking readers lag by that much, whatever the ring', () => {
  let paused = 0;
  const relay = new Relay({ ringBytes: 10_000, readMax: 100, readAhead: 1000 }, { pause: () => paused++ });
  const slow = new MemorySink();
  slow.budget = 1;
  relay.addReader('slow', slow, 0, 'blocking');
  const data = randomBytes(5000);
  let i = 0;
  while (i < 50 && relay.ingest(i * 100, data.subarray(i * 100, (i + 1) * 100))) i++;
  assert.equal(paused, 1);
  assert.ok(relay.end > 1000 && relay.end <= 1200, `read ahead ${relay.end}`);
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

/** Keeps the ring's views queued (like a socket) until flush(): the relay must not reuse them before. */
class QueueingSink implements Sink {
  queue: { offset: number; view: Buffer }[] = [];
  out: Buffer[] = [];
  writtenTo = -1;
  private release: (() => void) | null = null;
  write(offset: number, data: Buffer): boolean {
    this.queue.push({ offset, view: data });
    this.writtenTo = offset + data.length;
    return true;
  }
  onDrain(cb: () => void) {
    queueMicrotask(cb);
  }
  end() {}
  destroy() {}
  released() {
    const head = this.queue[0];
    return head ? head.offset : this.writtenTo < 0 ? Number.MAX_SAFE_INTEGER : this.writtenTo;
  }
  onRelease(cb: () => void) {
    this.release = cb;
  }
  flush() {
    for (const q of this.queue.splice(0)) this.out.push(Buffer.from(q.view));
    this.release?.();
  }
}

test('relay: reads land in the ring itself, and views queued in a sink are not reused until it releases them', () => {
  let paused = 0;
  let resumed = 0;
  const relay = new Relay({ ringBytes: 1000 }, { pause: () => paused++, resume: () => resumed++ });
  const sink = new QueueingSink();
  relay.addReader('child', sink, 0, 'blocking');
  const data = randomBytes(5000);
  let at = 0;
  const read = () => {
    // what a socket read does: fill the reserved view, commit
    const view = relay.reserveIn(100);
    const n = Math.min(view.length, data.length - at);
    data.copy(view, 0, at, at + n);
    at += n;
    return relay.commitIn(n);
  };
  while (read()) {
    /* until the relay says stop */
  }
  assert.equal(paused, 1);
  assert.ok(at <= 1000 - relay.readMax, `read ${at} bytes with nothing released`);
  const before = relay.ring.buf.subarray(0, at).equals(data.subarray(0, at));
  assert.ok(before, 'no byte overwritten while queued');
  while (at < data.length) {
    sink.flush();
    while (at < data.length && read()) {
      /* fill again */
    }
  }
  sink.flush();
  assert.ok(resumed >= 1);
  assert.ok(Buffer.concat(sink.out).equals(data));
  assert.ok(relay.ring.end === 5000);
});
