// The consumer's real pipe (fd-sink.ts): a child reads every byte written, in order, and sees
// EOF at end(); released() moves only as the kernel takes bytes; a consumer that dies makes
// the sink report the error instead of throwing; the FIFO's name is gone at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { closeSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { blockingPipe, FdSink } from '../../src/ka/fd-sink.js';

function consumer(command: string) {
  const pipe = blockingPipe();
  assert.ok(pipe, 'mkfifo makes a pipe');
  const child = spawn('/bin/sh', ['-c', command], { stdio: [pipe.read, 'pipe', 'inherit'] });
  closeSync(pipe.read);
  const out: Buffer[] = [];
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  return { write: pipe.write, child, out, exited };
}

test('every byte reaches the consumer in order, EOF at end, released follows the kernel', async () => {
  const c = consumer('sha256sum | cut -d" " -f1');
  const errors: Error[] = [];
  const sink = new FdSink(c.write, (e) => errors.push(e), 1 << 20);
  const data = randomBytes(12 * 1024 * 1024 + 123);
  assert.equal(sink.released(), Number.MAX_SAFE_INTEGER, 'nothing held before the first write');
  let releases = 0;
  sink.onRelease(() => releases++);
  let at = 0;
  while (at < data.length) {
    const piece = data.subarray(at, Math.min(data.length, at + 100_000 + (at % 7919)));
    const more = sink.write(at, piece);
    at += piece.length;
    assert.ok(sink.released() <= at);
    if (!more) await new Promise<void>((r) => sink.onDrain(r));
  }
  sink.end();
  assert.equal(await c.exited, 0);
  assert.equal(Buffer.concat(c.out).toString().trim(), createHash('sha256').update(data).digest('hex'));
  assert.equal(sink.released(), data.length);
  assert.ok(releases > 0);
  assert.deepEqual(errors, []);
});

test('a consumer that exits early: the sink reports EPIPE, the process goes on', async () => {
  const c = consumer('head -c 1000 >/dev/null');
  const errors: Error[] = [];
  const sink = new FdSink(c.write, (e) => errors.push(e));
  const chunk = randomBytes(1 << 20);
  for (let i = 0; i < 8; i++) sink.write(i * chunk.length, chunk);
  await c.exited;
  for (let i = 0; i < 50 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(errors.length, 1);
  assert.match(String((errors[0] as NodeJS.ErrnoException).code), /EPIPE/);
  assert.equal(sink.write(8 * chunk.length, chunk), true, 'writes after the failure are dropped');
  sink.destroy();
});

test('destroy before the end gives the consumer EOF; no FIFO is left in the temp folder', async () => {
  const before = readdirSync(tmpdir()).filter((n) => n.startsWith('kaboot-ka-pipe-'));
  const c = consumer('wc -c');
  const sink = new FdSink(c.write, () => undefined);
  sink.write(0, Buffer.alloc(5000, 1));
  await new Promise((r) => setTimeout(r, 50));
  sink.destroy();
  assert.equal(await c.exited, 0);
  assert.equal(Buffer.concat(c.out).toString().trim(), '5000');
  const after = readdirSync(tmpdir()).filter((n) => n.startsWith('kaboot-ka-pipe-'));
  assert.deepEqual(after, before);
});
