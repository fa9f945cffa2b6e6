// Chain and tree building, and the repair plans: who connects where, from what.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SOURCE_ID, buildTopology, childrenOf, pathTo, planLateJoin, planMoveToTail, planRemoval, relayOrder, resumeSource, tailOf } from '../../src/ka/topology.js';

test('relay order is by IPv4 address (numerically), then id', () => {
  const order = relayOrder([
    { id: 1, address: '10.0.1.40' },
    { id: 2, address: '10.0.1.5' },
    { id: 3, address: '::ffff:10.0.0.200' },
    { id: 4, address: '10.0.1.5' },
  ]);
  assert.deepEqual(order, [3, 2, 4, 1]);
});

test('a chain: each node feeds the next, the source feeds the first', () => {
  const t = buildTopology([5, 6, 7]);
  assert.deepEqual([...t.parent.entries()], [[5, SOURCE_ID], [6, 5], [7, 6]]);
  assert.deepEqual(pathTo(t, 7), [SOURCE_ID, 5, 6, 7]);
  assert.equal(tailOf(t), 7);
});

test('a tree of arity 2 is balanced breadth-first under the source', () => {
  const t = buildTopology([1, 2, 3, 4, 5, 6]);
  const t2 = buildTopology([1, 2, 3, 4, 5, 6], 2);
  assert.equal(t.parent.get(6), 5);
  assert.deepEqual(childrenOf(t2, SOURCE_ID), [1, 2]);
  assert.deepEqual(childrenOf(t2, 1), [3, 4]);
  assert.deepEqual(childrenOf(t2, 2), [5, 6]);
  assert.throws(() => buildTopology([1], 0), RangeError);
});

test('a dead middle node: its child re-attaches to the dead node’s parent', () => {
  const t = buildTopology([1, 2, 3, 4]);
  const { topology, attach } = planRemoval(t, 2);
  assert.deepEqual(attach, [{ child: 3, parent: 1, mode: 'blocking' }]);
  assert.deepEqual(topology.order, [1, 3, 4]);
  assert.equal(topology.parent.has(2), false);
  assert.deepEqual(pathTo(topology, 4), [SOURCE_ID, 1, 3, 4]);
});

test('a dead first node: its child goes to the source; a dead tail needs nothing', () => {
  const t = buildTopology([1, 2, 3]);
  assert.deepEqual(planRemoval(t, 1).attach, [{ child: 2, parent: SOURCE_ID, mode: 'blocking' }]);
  assert.deepEqual(planRemoval(t, 3).attach, []);
});

test('a parent that no longer serves is skipped for its nearest serving ancestor', () => {
  const t = buildTopology([1, 2, 3, 4]);
  const serving = (id: number) => id !== 2;
  assert.deepEqual(planRemoval(t, 3, serving).attach, [{ child: 4, parent: 1, mode: 'blocking' }]);
  assert.deepEqual(planRemoval(t, 2, () => false).attach, [{ child: 3, parent: SOURCE_ID, mode: 'blocking' }]);
});

test('tree repair: the first child takes the dead node’s place, its siblings hang under it', () => {
  const t = buildTopology([1, 2, 3, 4, 5, 6], 2);
  const { attach, topology } = planRemoval(t, 1);
  assert.deepEqual(attach, [
    { child: 3, parent: SOURCE_ID, mode: 'blocking' },
    { child: 4, parent: 3, mode: 'blocking' },
  ]);
  assert.deepEqual(childrenOf(topology, SOURCE_ID).sort(), [2, 3]);
});

test('a late joiner becomes the tail, detached', () => {
  const t = buildTopology([1, 2]);
  const { attach, topology } = planLateJoin(t, 9);
  assert.deepEqual(attach, [{ child: 9, parent: 2, mode: 'detached' }]);
  assert.equal(tailOf(topology), 9);
  assert.deepEqual(planLateJoin(buildTopology([]), 9).attach, [{ child: 9, parent: SOURCE_ID, mode: 'detached' }]);
});

test('a slow node moves to the tail: its child takes its place, it hangs detached under the new tail', () => {
  const t = buildTopology([1, 2, 3]);
  const { attach, topology } = planMoveToTail(t, 2);
  assert.deepEqual(attach, [
    { child: 3, parent: 1, mode: 'blocking' },
    { child: 2, parent: 3, mode: 'detached' },
  ]);
  assert.deepEqual(topology.order, [1, 3, 2]);
  // already the tail: it stays under its parent, detached
  assert.deepEqual(planMoveToTail(t, 3).attach, [{ child: 3, parent: 2, mode: 'detached' }]);
  // the only node: under the source, detached
  assert.deepEqual(planMoveToTail(buildTopology([1]), 1).attach, [{ child: 1, parent: SOURCE_ID, mode: 'detached' }]);
});

test('resume source: the ring when it still holds the offset, else the spool', () => {
  assert.equal(resumeSource(100, 50), 'ring');
  assert.equal(resumeSource(50, 50), 'ring');
  assert.equal(resumeSource(49, 50), 'spool');
});
