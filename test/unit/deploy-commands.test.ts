// The remote command queue behind kaboot exec: FIFO per node, long poll, one result.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandQueue, CommandError } from '../../src/deploy/commands.js';

const M1 = '52:54:00:00:00:01';
const M2 = '52-54-00-00-00-02';

test('commands go to their own node, oldest first, and run once', async () => {
  const q = new CommandQueue();
  const a = q.enqueue(M1, ['uname', '-a']);
  const b = q.enqueue(M1, ['true'], 5);
  q.enqueue(M2, ['false']);
  const first = await q.next(M1, 0);
  assert.equal(first?.id, a.id);
  assert.equal(first?.state, 'running');
  assert.equal((await q.next(M1, 0))?.id, b.id);
  assert.equal(await q.next(M1, 0), undefined);
  assert.deepEqual((await q.next('52:54:00:00:00:02', 0))?.argv, ['false']);
});

test('a long poll is answered as soon as a command is queued, or empty at its end', async () => {
  const q = new CommandQueue();
  const waiting = q.next(M1, 60_000);
  const c = q.enqueue(M1, ['ls']);
  assert.equal((await waiting)?.id, c.id);
  assert.equal(await q.next(M1, 10), undefined);
  const ac = new AbortController();
  const aborted = q.next(M1, 60_000, ac.signal);
  ac.abort();
  assert.equal(await aborted, undefined);
});

test('a result is taken once, for the right node', async () => {
  const q = new CommandQueue();
  const c = q.enqueue(M1, ['ls']);
  await q.next(M1, 0);
  assert.throws(() => q.finish(M2, c.id, 0), (e: Error) => e instanceof CommandError && e.code === 'not-found');
  assert.equal(q.finish(M1, c.id, 2).exit_code, 2);
  assert.equal(q.get(M1, c.id)?.state, 'done');
  assert.throws(() => q.finish(M1, c.id, 0), (e: Error) => e instanceof CommandError && e.code === 'conflict');
  assert.equal(q.get(M2, c.id), undefined);
});
