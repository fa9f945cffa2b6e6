// The agent's side of the appliance's node endpoints: the plan answer read and checked, the
// KA session result against the plan, and the remote-command poller against the real
// deploy and node-log routes (DeploymentManager's command queue) on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { planUrl, readPlanAnswer } from '../../src/agent/deploy/plan-step.js';
import { sessionProblem, formatLogCall, sayLogger } from '../../src/agent/deploy/ka-join.js';
import { parseRemoteCommand, commandsUrl, resultUrl, exitCodeOf, pollBackoffMs, startExecPoller, CommandFormatError } from '../../src/agent/exec-poller.js';
import { ApplianceLog, type AgentLine } from '../../src/agent/log-client.js';
import type { DeployPlan } from '../../src/deploy/plan.js';
import type { NodeResult } from '../../src/ka/index.js';
import { NodeRegistry } from '../../src/nodes/registry.js';
import { NodeLogs } from '../../src/nodes/node-logs.js';
import { nodeLogRoutes } from '../../src/http/node-log-routes.js';
import { deployRoutes } from '../../src/http/deploy-routes.js';
import { DeploymentManager } from '../../src/deploy/manager.js';
import { silentLogger } from '../../src/log.js';

const ref = { name: 'kainstall1', port: 40001, secret: 'ab'.repeat(16), bytes: 1234, sha256: 'c'.repeat(64) };
const plan: DeployPlan = {
  format: 1, deployment: 'd-20261122035500-ab12', mac: '52:54:00:00:00:07', firmware: 'bios', image: 'golden', hostname: 'node7',
  stage2: { ...ref, name: 'getstage2' },
  disks: [{ device: 'first', desc: 'linux fill ext4 /\n', filesystems: [{ partition: 1, fstype: 'ext4', mount: '/', session: ref, exclude: [] }], raw: [] }],
  bootloader: { kind: 'grub', device: 'first', initramfs: true, initramfs_modules: [] },
  reboot: true,
};

test('readPlanAnswer: a plan for this node and firmware; otherwise what the appliance said', () => {
  assert.equal(planUrl('http://10.0.0.1:80', '52:54:00:00:00:07', 'uefi'), 'http://10.0.0.1:80/api/nodes/52:54:00:00:00:07/plan?firmware=uefi');
  assert.deepEqual(readPlanAnswer(200, JSON.stringify(plan), '52:54:00:00:00:07', 'bios'), plan);
  assert.throws(() => readPlanAnswer(404, '{"error":"not found","message":"52:54:00:00:00:07 is in no deployment"}', '52:54:00:00:00:07', 'bios'), /HTTP 404: 52:54:00:00:00:07 is in no deployment/);
  assert.throws(() => readPlanAnswer(401, 'nope', plan.mac, 'bios'), /HTTP 401: nope/);
  assert.throws(() => readPlanAnswer(200, '{', plan.mac, 'bios'), /not JSON/);
  assert.throws(() => readPlanAnswer(200, JSON.stringify({ ...plan, disks: [] }), plan.mac, 'bios'), /not a deployment plan: \/disks/);
  assert.throws(() => readPlanAnswer(200, JSON.stringify(plan), '52:54:00:00:00:08', 'bios'), /the plan is for 52:54:00:00:00:07/);
  assert.throws(() => readPlanAnswer(200, JSON.stringify(plan), plan.mac, 'uefi'), /the plan is for bios, this node booted uefi/);
});

test('sessionProblem: digest, size, the plan\'s SHA-256 and the consumer\'s exit all count', () => {
  const ok: NodeResult = { nodeId: 1, name: 'n', ok: true, bytes: 1234, rate: 1, digestOk: true, digest: 'c'.repeat(64), exitCode: 0, durationMs: 1, error: null, childGapBytes: 0, cpuMs: 1 };
  assert.equal(sessionProblem(ref, ok, true), undefined);
  assert.match(sessionProblem(ref, { ...ok, ok: false, error: 'coordinator refused: x' }, true)!, /coordinator refused/);
  assert.match(sessionProblem(ref, { ...ok, ok: false, digestOk: false }, true)!, /does not match/);
  assert.match(sessionProblem(ref, { ...ok, bytes: 1 }, true)!, /received 1 bytes, the plan says 1234/);
  assert.match(sessionProblem(ref, { ...ok, digest: 'd'.repeat(64) }, true)!, /the plan says c{64}/);
  assert.match(sessionProblem(ref, { ...ok, ok: false, exitCode: 2 }, true)!, /consumer exited with 2/);
  assert.match(sessionProblem(ref, { ...ok, ok: false, exitCode: null }, true)!, /a signal/);
  // a live golden's session: no size or digest up front; the coordinator's digest and the consumer still count
  const live = { ...ref, live: true, bytes: 0, sha256: '0'.repeat(64) };
  assert.equal(sessionProblem(live, { ...ok, bytes: 99, digest: 'e'.repeat(64) }, true), undefined);
  assert.match(sessionProblem(live, { ...ok, ok: false, digestOk: false }, true)!, /does not match/);
  assert.match(sessionProblem(live, { ...ok, ok: false, exitCode: 2 }, true)!, /consumer exited with 2/);
});

test('the session library\'s log calls become readable lines', () => {
  assert.equal(formatLogCall(['plain']), 'plain');
  assert.equal(formatLogCall([{ total: 5, digestOk: true }, 'ka: stream complete']), 'ka: stream complete total=5 digestOk=true');
  assert.equal(formatLogCall([new Error('boom'), 'failed']), 'failed: boom');
  const said: string[] = [];
  const l = sayLogger((x) => said.push(x));
  l.info({ nodeId: 3 }, 'joined');
  l.warn('slow');
  l.debug('hidden');
  l.child({}).error({ reason: 'x' }, 'dropped');
  assert.deepEqual(said, ['ka: joined nodeId=3', 'ka warn: slow', 'ka error: dropped reason=x']);
});

test('remote commands: checked answers, URLs, shell-like exit codes, backoff', () => {
  assert.deepEqual(parseRemoteCommand({ id: 'c0123abcd', argv: ['ls', '-l'], timeout_s: 5, extra: 1 }), { id: 'c0123abcd', argv: ['ls', '-l'], timeout_s: 5 });
  for (const bad of [null, {}, { id: '../x', argv: ['a'] }, { id: 'c1', argv: [] }, { id: 'c1', argv: [1] }, { id: 'c1', argv: [''] }, { id: 'c1', argv: ['a'], timeout_s: -1 }]) {
    assert.throws(() => parseRemoteCommand(bad), CommandFormatError, JSON.stringify(bad));
  }
  assert.equal(commandsUrl('http://a:80', '52:54:00:00:00:07', 20), 'http://a:80/api/nodes/52:54:00:00:00:07/commands?wait=20');
  assert.equal(resultUrl('http://a', 'm', 'c1'), 'http://a/api/nodes/m/commands/c1/result');
  const sig = { SIGKILL: 9, SIGTERM: 15 };
  assert.equal(exitCodeOf({ exitCode: 3 }, sig), 3);
  assert.equal(exitCodeOf({ timedOut: true, signal: 'SIGTERM' }, sig), 124);
  assert.equal(exitCodeOf({ signal: 'SIGKILL' }, sig), 137);
  assert.equal(exitCodeOf({ failed: true }, sig), 127);
  assert.deepEqual([1, 2, 3, 6, 7, 50].map(pollBackoffMs), [1000, 2000, 4000, 30000, 30000, 30000]);
});

test('the poller runs what `kaboot exec` queued, its lines in the node log before the exit line, and posts the exit code', async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'agent-poller-'));
  const token = 'api-token-0123456789abcdef0123';
  const nodes = new NodeRegistry(stateDir);
  const logs = new NodeLogs(stateDir);
  const dm = await DeploymentManager.start({ stateDir, imagesDir: join(stateDir, 'images'), nodes, logs, logger: silentLogger });
  const app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } });
  await app.register(nodeLogRoutes, { prefix: '/api', stateDir, nodes, token, logs });
  await app.register(deployRoutes, { prefix: '/api', token, deployments: dm, logs });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const mac = '52:54:00:00:00:07';
  const log = new ApplianceLog({ intervalMs: 50 });
  log.connect({ base, mac, token });
  const seen: AgentLine[] = [];
  const poller = startExecPoller({ base, mac, token, waitS: 1, sinks: [(l) => log.add(l), (l) => seen.push(l)], flush: () => log.flush() });
  const exec = async (argv: string[], timeout_s?: number) => {
    const r = await fetch(`${base}/api/nodes/${mac}/exec`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ argv, ...(timeout_s ? { timeout_s } : {}) }) });
    assert.equal(r.status, 201);
    const { id } = (await r.json()) as { id: string };
    for (;;) {
      const s = (await (await fetch(`${base}/api/nodes/${mac}/commands/${id}`, { headers: { authorization: `Bearer ${token}` } })).json()) as { state: string; exit_code: number | null };
      if (s.state === 'done') return { id, exit: s.exit_code };
      await new Promise((res) => setTimeout(res, 50));
    }
  };
  try {
    const a = await exec(['sh', '-c', 'echo out one; echo err one >&2; echo out two; exit 3']);
    assert.equal(a.exit, 3);
    const file = logs.read(mac).trimEnd().split('\n').filter((l) => l.includes(`exec:${a.id}`)).map((l) => l.split(' ').slice(2).join(' '));
    const exitAt = file.indexOf('status exit=3');
    assert.ok(exitAt > 0, file.join('\n'));
    for (const l of ['stdout out one', 'stderr err one', 'stdout out two']) {
      const at = file.indexOf(l);
      assert.ok(at >= 0 && at < exitAt, `${l} before the exit line:\n${file.join('\n')}`);
    }
    const missing = await exec(['/nonexistent/tool']);
    assert.equal(missing.exit, 127);
    const slow = await exec(['sleep', '30'], 1);
    assert.equal(slow.exit, 124);
    assert.ok(seen.some((l) => l.step === `exec:${slow.id}` && l.line === 'exit 124'));
  } finally {
    poller.stop();
    await poller.done;
    log.stop();
    await app.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
});

test('the poller keeps trying while the appliance refuses it, and says so once', async () => {
  const app = Fastify();
  let calls = 0;
  app.get('/api/nodes/:mac/commands', async (_req, reply) => {
    calls++;
    return reply.code(401).send({ error: 'unauthorized' });
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const seen: AgentLine[] = [];
  const poller = startExecPoller({ base, mac: '52:54:00:00:00:09', token: 'x', waitS: 1, sinks: [(l) => seen.push(l)] });
  try {
    while (calls < 2) await new Promise((r) => setTimeout(r, 50));
  } finally {
    poller.stop();
    await poller.done;
    await app.close();
  }
  const said = seen.filter((l) => l.step === 'exec').map((l) => l.line);
  assert.equal(said.length, 1, said.join('\n'));
  assert.match(said[0]!, /HTTP 401.*trying again/);
});
