import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Fastify from 'fastify';
import { runSteps, type Step } from '../../src/agent/steps.js';
import { ApplianceLog, type AgentLine } from '../../src/agent/log-client.js';
import { NodeRegistry } from '../../src/nodes/registry.js';
import { NodeLogs } from '../../src/nodes/node-logs.js';
import { nodeLogRoutes } from '../../src/http/node-log-routes.js';
import { tempDirForFile } from '../helpers/temp-dir.js';


test('steps run in order, stream every line of stdout and stderr, and stop at the first failure', async () => {
  const lines: AgentLine[] = [];
  const ran: string[] = [];
  const steps: Step<{ n: number }>[] = [
    { name: 'one', run: async (ctx) => { ran.push('one'); ctx.state.n++; await ctx.exec('sh', ['-c', 'echo a; echo b >&2; echo c']); } },
    { name: 'two', run: async (ctx) => { ran.push('two'); await ctx.exec('sh', ['-c', 'echo partial; echo boom >&2; exit 3']); } },
    { name: 'three', run: async () => { ran.push('three'); } },
  ];
  const state = { n: 0 };
  const r = await runSteps(steps, state, [(l) => lines.push(l)]);
  assert.deepEqual(ran, ['one', 'two']);
  assert.equal(state.n, 1);
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.step === 'two' && /exited with 3: boom/.test(r.error));
  const of = (step: string, stream: string) => lines.filter((l) => l.step === step && l.stream === stream).map((l) => l.line);
  assert.deepEqual(of('one', 'stdout'), ['a', 'c']);
  assert.deepEqual(of('one', 'stderr'), ['b']);
  assert.deepEqual(of('two', 'stdout'), ['partial']);
  assert.ok(of('two', 'agent').some((l) => /failed/.test(l)));
});

test('a missing command fails its step with a message, allowFailure lets a step go on', async () => {
  const lines: AgentLine[] = [];
  const r = await runSteps([{ name: 'x', run: async (ctx) => { await ctx.exec('/nonexistent/cmd', []); } }], {}, [(l) => lines.push(l)]);
  assert.equal(r.ok, false);
  const ok = await runSteps([{ name: 'y', run: async (ctx) => { const o = await ctx.exec('sh', ['-c', 'exit 4'], { allowFailure: true }); assert.equal(o.exitCode, 4); } }], {}, []);
  assert.deepEqual(ok, { ok: true });
});

test('the log client queues before it knows the appliance, keeps lines through a failed post, and delivers them all in order', async () => {
  const stateDir = tempDirForFile('agentlog');
  const token = 'test-token-0123456789abcdef';
  const nodes = new NodeRegistry(stateDir);
  const logs = new NodeLogs(stateDir);
  const app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } });
  await app.register(nodeLogRoutes, { prefix: '/api', stateDir, nodes, token, logs });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const mac = '52:54:00:00:00:07';
  try {
    const client = new ApplianceLog({ batch: 7 });
    const line = (i: number): AgentLine => ({ step: 'network', stream: 'stdout', line: `line ${i}`, ts: new Date().toISOString() });
    for (let i = 0; i < 10; i++) client.add(line(i));
    assert.equal(client.pending, 10);
    // A wrong token: refused, nothing lost.
    client.connect({ base, mac, token: 'wrong-token-0123456789abcd' });
    assert.equal(await client.flush(), false);
    assert.match(client.lastError ?? '', /401/);
    assert.equal(client.pending, 10);
    client.connect({ base, mac, token });
    for (let i = 10; i < 25; i++) client.add(line(i));
    assert.equal(await client.flush(), true);
    await client.status('booting', 'find-appliance', 'hello');
    client.stop();
    assert.equal(nodes.get(mac)?.state, 'booting');
    const got = logs.read(mac).trimEnd().split('\n');
    assert.deepEqual(got.slice(0, 25).map((l) => l.split(' ').slice(3).join(' ')), Array.from({ length: 25 }, (_, i) => `line ${i}`));
    assert.match(got[25]!, /find-appliance status state=booting hello$/);
  } finally {
    await app.close();
  }
});
