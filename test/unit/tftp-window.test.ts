import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retransmitDelayMs, SendWindow, wireBlock } from '../../src/tftp/window.js';

test('block count: short last block, or an empty one for exact multiples', () => {
  assert.equal(new SendWindow(0, 512, 1).lastBlock, 1);
  assert.equal(new SendWindow(511, 512, 1).lastBlock, 1);
  assert.equal(new SendWindow(512, 512, 1).lastBlock, 2);
  assert.equal(new SendWindow(1024, 512, 1).lastBlock, 3);
  const w = new SendWindow(1024, 512, 1);
  assert.deepEqual(w.blockRange(3), [1024, 0]);
  assert.deepEqual(w.blockRange(2), [512, 512]);
});

test('lock-step: each ACK releases exactly one block; duplicates release nothing', () => {
  const w = new SendWindow(2000, 512, 1);
  assert.deepEqual(w.take(), [1, 1]);
  assert.equal(w.take(), null);
  assert.equal(w.onAck(0), 'duplicate');
  assert.equal(w.take(), null);
  assert.equal(w.onAck(1), 'advanced');
  assert.deepEqual(w.take(), [2, 2]);
  // Sorcerer's Apprentice: the late duplicate ACK 1 must not send block 2 again.
  assert.equal(w.onAck(1), 'duplicate');
  assert.equal(w.take(), null);
  assert.equal(w.onAck(7), 'ignored');
  assert.equal(w.onAck(2), 'advanced');
  assert.deepEqual(w.take(), [3, 3]);
  assert.equal(w.onAck(3), 'advanced');
  assert.deepEqual(w.take(), [4, 4]);
  assert.equal(w.onAck(4), 'done');
  assert.ok(w.done);
});

test('window: full window ACK moves on; partial ACK restarts after the gap', () => {
  const w = new SendWindow(100 * 512, 512, 16);
  assert.deepEqual(w.take(), [1, 16]);
  assert.equal(w.take(), null);
  assert.equal(w.onAck(16), 'advanced');
  assert.deepEqual(w.take(), [17, 32]);
  assert.equal(w.onAck(20), 'advanced'); // client lost 21
  assert.deepEqual(w.take(), [21, 36]);
  assert.equal(w.onAck(20), 'duplicate');
  assert.equal(w.take(), null);
  w.rewind(); // timeout
  assert.deepEqual(w.take(), [21, 36]);
});

test('window never passes the last block', () => {
  const w = new SendWindow(10 * 512, 512, 8);
  assert.deepEqual(w.take(), [1, 8]);
  assert.equal(w.onAck(8), 'advanced');
  assert.deepEqual(w.take(), [9, 11]);
  assert.equal(w.onAck(11), 'done');
});

test('rollover: block 65536 is 0 on the wire, and ACKs map back across the wrap', () => {
  assert.equal(wireBlock(65535), 65535);
  assert.equal(wireBlock(65536), 0);
  assert.equal(wireBlock(65537), 1);
  const w = new SendWindow(204800 * 512, 512, 4);
  let acked = 0;
  let guard = 0;
  while (!w.done && guard++ < 100000) {
    const r = w.take();
    assert.ok(r);
    const outcome = w.onAck(wireBlock(r[1]));
    acked = r[1];
    if (outcome === 'done') break;
    assert.equal(outcome, 'advanced');
  }
  assert.equal(acked, 204801);
  assert.ok(w.done);
});

test('ACK mapping around the wrap', () => {
  const w = new SendWindow(70000 * 512, 512, 8);
  w.base = 65534;
  w.next = 65534;
  assert.deepEqual(w.take(), [65534, 65541]);
  assert.equal(w.ackedBlock(65533), 65533);
  assert.equal(w.ackedBlock(0), 65536);
  assert.equal(w.ackedBlock(5), 65541);
  assert.equal(w.onAck(65533), 'duplicate');
  assert.equal(w.onAck(1), 'advanced');
  assert.equal(w.base, 65538);
  assert.equal(w.onAck(65535), 'ignored'); // older than the window
});

test('retransmission backoff doubles up to 8x', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 10].map((a) => retransmitDelayMs(1, a)), [1000, 2000, 4000, 8000, 8000, 8000]);
  assert.equal(retransmitDelayMs(3, 1), 6000);
});
