// Where a node's CPU went during a step (the agent's receive log line): /proc/stat's cpu line
// and a process's reaped children read, odd text giving nothing rather than a throw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuSnapshot, describeCpu, parseChildTicks, parseProcStat } from '../../src/agent/cpu-account.js';

test('cpu accounting: /proc/stat and /proc/PID/stat read, odd text gives nothing', () => {
  assert.deepEqual(parseProcStat('cpu  10 1 20 300 4 5 6 0 0 0\ncpu0 1 2 3 4 5 6 7 8\n'), [10, 1, 20, 300, 4, 5, 6, 0]);
  assert.deepEqual(parseProcStat('cpu0 1 2 3\n'), []);
  assert.deepEqual(parseProcStat('cpu  a b c d e f g h\n'), []);
  // a command name with spaces and a parenthesis: the fields count from the last ')'
  const stat = '42 (sh (x) y) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 250 40 20 0 1 0 100 0 0';
  assert.equal(parseChildTicks(stat), 290);
  assert.equal(parseChildTicks('nonsense'), 0);
  const a = { machine: [0, 0, 0, 0, 0, 0, 0, 0], children: 0 };
  const b = { machine: [150, 50, 300, 100, 20, 5, 15, 0], children: 250 };
  assert.equal(describeCpu(a, b), 'user 2.0 s, system 3.0 s, irq+softirq 0.2 s, idle 1.0 s, iowait 0.2 s; children 2.5 s');
  assert.equal(describeCpu({ machine: [], children: 0 }, b), 'children 2.5 s');
  assert.match(describeCpu(cpuSnapshot(), cpuSnapshot()), /children/);
});
