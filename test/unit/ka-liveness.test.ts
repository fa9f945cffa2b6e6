// The dead-node policy as plain functions: an adaptive silence limit, and progress
// seen elsewhere keeps a silent node alive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { heard, judge, newLiveness, progressed, silenceLimit, type LivenessPolicy } from '../../src/ka/liveness.js';

const policy: LivenessPolicy = { deadAfterMs: 5000, gapFactor: 3, maxDeadAfterMs: 60_000 };

test('liveness: a node that reports every second is dead after the floor of silence', () => {
  const s = newLiveness(0);
  for (let t = 1000; t <= 10_000; t += 1000) heard(s, t);
  assert.equal(silenceLimit(policy, s), 5000);
  assert.equal(judge(policy, s, 14_000), 'alive');
  assert.equal(judge(policy, s, 15_001), 'dead');
});

test('liveness: a node once held back 6.2 s by a loaded host gets 3 x that before it is called dead', () => {
  const s = newLiveness(0);
  heard(s, 1000);
  heard(s, 7200);
  heard(s, 8200);
  assert.equal(silenceLimit(policy, s), 3 * 6200);
  assert.equal(judge(policy, s, 8200 + 6300), 'alive', 'the 5 s floor alone would have killed it');
  assert.equal(judge(policy, s, 8200 + 18_601), 'dead');
});

test('liveness: the limit has a ceiling', () => {
  const s = newLiveness(0);
  heard(s, 100_000);
  assert.equal(silenceLimit(policy, s), 60_000);
});

test('liveness: a silent node whose data position advances is not dead', () => {
  const s = newLiveness(0);
  for (let t = 1000; t <= 5000; t += 1000) heard(s, t);
  // silent from 5 s on, but its parent keeps reporting bytes sent to it
  for (let t = 6000; t <= 20_000; t += 1000) progressed(s, t);
  assert.equal(judge(policy, s, 20_500), 'silent-but-moving');
  // progress stops too: dead once the limit has passed since the last sign of either
  assert.equal(judge(policy, s, 25_001), 'dead');
});

test('liveness: progress long ago does not keep a node alive', () => {
  const s = newLiveness(0);
  progressed(s, 500);
  heard(s, 1000);
  assert.equal(judge(policy, s, 7000), 'dead');
});
