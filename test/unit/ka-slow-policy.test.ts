// The slow-node policy: capacity from who waited on whom, the median, the streak.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SlowNodeTracker, capacity, median, type NodeWindow } from '../../src/ka/slow-policy.js';

const w = (id: number, o: Partial<NodeWindow> = {}): NodeWindow => ({ id, linkBytes: 100e6, linkBlockedMs: 0, consumerBytes: 100e6, consumerBlockedMs: 0, pausedMs: 0, windowMs: 1000, ...o });

test('capacity: unconstrained when nothing waited on the node, bytes per blocked second otherwise', () => {
  assert.equal(capacity(w(1)), Infinity);
  assert.equal(capacity(w(1, { linkBytes: 25e6, linkBlockedMs: 1000 })), 25e6);
  // the parent waited on it, but it was itself paused by its own children: not its fault
  assert.equal(capacity(w(1, { linkBytes: 25e6, linkBlockedMs: 1000, pausedMs: 950 })), Infinity);
  // a slow consumer makes a slow node
  assert.equal(capacity(w(1, { consumerBytes: 9e6, consumerBlockedMs: 900 })), 10e6);
  assert.equal(capacity(w(1, { linkBytes: 0, consumerBytes: 0 })), undefined);
});

test('median with infinities', () => {
  assert.equal(median([]), undefined);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([1, 3]), 2);
  assert.equal(median([1, Infinity]), Infinity);
  assert.equal(median([Infinity, Infinity, 5]), Infinity);
});

test('a node below the fraction of the median for N windows in a row is slow, once', () => {
  const t = new SlowNodeTracker({ fraction: 0.5, windows: 3, unconstrainedShare: 0.2 });
  const round = () => t.observe([w(1), w(2, { linkBytes: 25e6, linkBlockedMs: 1000 }), w(3)]).slow;
  assert.deepEqual(round(), []);
  assert.deepEqual(round(), []);
  assert.deepEqual(round(), [2]);
  assert.deepEqual(round(), [], 'reported once per streak');
});

test('a streak is broken by a good window; ineligible nodes are never named', () => {
  const t = new SlowNodeTracker({ fraction: 0.5, windows: 2, unconstrainedShare: 0.2 });
  const slow = w(2, { linkBytes: 25e6, linkBlockedMs: 1000 });
  assert.deepEqual(t.observe([w(1), slow]).slow, []);
  assert.deepEqual(t.observe([w(1), w(2)]).slow, []);
  assert.deepEqual(t.observe([w(1), slow]).slow, []);
  assert.deepEqual(t.observe([w(1), slow]).slow, [2]);
  const t2 = new SlowNodeTracker({ fraction: 0.5, windows: 1, unconstrainedShare: 0.2 });
  assert.deepEqual(t2.observe([w(1), slow], (id) => id !== 2).slow, []);
});

test('a chain held back by CPU everywhere (all alike) names nobody', () => {
  const t = new SlowNodeTracker({ fraction: 0.5, windows: 1, unconstrainedShare: 0.2 });
  const alike = [1, 2, 3, 4].map((id) => w(id, { linkBytes: 30e6 + id * 1e6, linkBlockedMs: 600 }));
  for (let i = 0; i < 5; i++) assert.deepEqual(t.observe(alike).slow, []);
  // one node alone cannot be compared
  assert.deepEqual(t.observe([w(1, { linkBytes: 1e6, linkBlockedMs: 1000 })]).slow, []);
});
