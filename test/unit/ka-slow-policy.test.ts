// The slow-node policy: capacity from who waited on whom, the comparison with the others, the streak, the trial.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SlowNodeTracker, capacity, chainRate, median, reference, type NodeWindow } from '../../src/ka/slow-policy.js';

const w = (id: number, o: Partial<NodeWindow> = {}): NodeWindow => ({ id, parent: 9, linkBytes: 100e6, linkBlockedMs: 0, consumerBytes: 100e6, consumerBlockedMs: 0, pausedMs: 0, windowMs: 1000, ...o });

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

test('a node below the fraction of every other node for N windows in a row is slow, once', () => {
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

test('a head fed by the source is compared only with the source’s other children', () => {
  const t = new SlowNodeTracker({ fraction: 0.5, windows: 1, unconstrainedShare: 0.2 });
  // every link at 118 MB/s: the source waits on the head, nobody waits on the tail; the same figures as a slow head
  const head = w(1, { parent: 0, linkBytes: 118e6, linkBlockedMs: 1000, consumerBytes: 0 });
  const tail = w(2, { parent: 1, linkBytes: 118e6, consumerBytes: 0 });
  for (let i = 0; i < 3; i++) assert.deepEqual(t.observe([head, tail]).slow, []);
  // two children of the source (a tree): the slow one of them is named
  const sibling = w(3, { parent: 0, linkBytes: 118e6, consumerBytes: 0 });
  const slowHead = w(1, { parent: 0, linkBytes: 10e6, linkBlockedMs: 1000, consumerBytes: 0 });
  assert.deepEqual(t.observe([slowHead, sibling, tail]).slow, [1]);
  assert.equal(reference(tail, [head, tail], new Map([[1, 118e6], [2, Infinity]])), 118e6, 'a node further down is compared with all the others');
});

test('a uniform chain (every link at the same rate) names nobody', () => {
  const t = new SlowNodeTracker({ fraction: 0.5, windows: 1, unconstrainedShare: 0.2 });
  // measured on 1 Gbit/s links: the source waits on the head all the time, the head on
  // its child all the time, the next link waits a fifth of the time, the tail never
  const head = w(4, { parent: 0, linkBytes: 117e6, linkBlockedMs: 1000, consumerBytes: 0 });
  const second = w(3, { parent: 4, linkBytes: 117e6, linkBlockedMs: 1000, consumerBytes: 0 });
  const third = w(1, { parent: 3, linkBytes: 117e6, linkBlockedMs: 210, consumerBytes: 0 });
  const tail = w(2, { parent: 1, linkBytes: 117e6, consumerBytes: 0 });
  for (let i = 0; i < 3; i++) assert.deepEqual(t.observe([head, second, third, tail]).slow, []);
});

test('a move that does not speed the chain up sets a shared ceiling, and nodes near it are not moved', () => {
  const t = new SlowNodeTracker({ fraction: 0.5, windows: 2, unconstrainedShare: 0.2 });
  const at = (id: number, blockedMs: number) => w(id, { linkBytes: 118e6, linkBlockedMs: blockedMs, consumerBytes: 0 });
  // node 2 looks slow next to unconstrained nodes 3 and 4, but the limit is the network's
  assert.deepEqual(t.observe([at(2, 1000), at(3, 0), at(4, 0)]).slow, []);
  assert.deepEqual(t.observe([at(2, 1000), at(3, 0), at(4, 0)]).slow, [2]);
  // after the move (node 2 detached, not eligible) the chain still moves at 118 MB/s, and node 3 now looks slow
  const eligible = (id: number) => id !== 2;
  assert.deepEqual(t.observe([at(3, 1000), at(4, 0), at(2, 0)], eligible).slow, [], 'nobody is judged during the trial');
  assert.deepEqual(t.observe([at(3, 1000), at(4, 0), at(2, 0)], eligible).slow, []);
  assert.equal(t.ceiling, 118e6);
  for (let i = 0; i < 5; i++) assert.deepEqual(t.observe([at(3, 1000), at(4, 0), at(2, 0)], eligible).slow, [], 'a node at the shared limit stays');
  // a node far below the ceiling is still slow
  const slow = w(4, { linkBytes: 10e6, linkBlockedMs: 1000, consumerBytes: 0 });
  assert.deepEqual(t.observe([at(3, 0), slow], eligible).slow, []);
  assert.deepEqual(t.observe([at(3, 0), slow], eligible).slow, [4]);
});

test('a move that speeds the chain up leaves no ceiling', () => {
  const t = new SlowNodeTracker({ fraction: 0.5, windows: 2, unconstrainedShare: 0.2 });
  const slow = w(2, { linkBytes: 10e6, linkBlockedMs: 1000, consumerBytes: 0 });
  const fast = (id: number) => w(id, { linkBytes: 110e6, consumerBytes: 0 });
  t.observe([fast(1), slow, fast(3)]);
  assert.deepEqual(t.observe([fast(1), slow, fast(3)]).slow, [2]);
  t.observe([fast(1), fast(3)]);
  t.observe([fast(1), fast(3)]);
  assert.equal(t.ceiling, 0);
  assert.equal(chainRate([fast(1), fast(3)]), 110e6);
});
