// Joining proves the session secret both ways: a node with a wrong secret is refused
// (and the coordinator logs it), and a coordinator that does not know the secret (an
// impostor answering for the session) cannot get a node to take its bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MiB, kaLab, makeData, serverReady, serverResult, clientResult, until } from './ka-lab.js';

test('a wrong secret is refused and logged; the session goes on with the right one', { timeout: 120_000 }, async () => {
  const k = await kaLab('kau', 2, 121);
  try {
    const data = await makeData(k.dir, 16 * MiB, 'auth');
    const server = k.server(['-s', 'kainstall1', '-n', '1', '-f', data.file]);
    await serverReady(server);
    const intruder = k.client(0, ['-s', 'kainstall1'], { secret: 'not-the-secret' });
    const bad = await clientResult(intruder);
    assert.equal(bad.exitCode, 1);
    assert.match(bad.json?.error ?? '', /refused ours: wrong secret/);
    // the coordinator's log reaches its file through a pipe: on a loaded host it can land after the client has exited
    const refusal = () => server.logLines().find((l) => l.msg === 'ka: node refused: wrong secret');
    await until(() => refusal() !== undefined, 10_000, 'the refusal in the coordinator log').catch(() => {});
    const refusedLine = refusal();
    assert.ok(refusedLine, 'the coordinator logs the refusal');
    assert.equal(refusedLine.peer, k.nodes[0]?.ip);

    const good = k.client(1, ['-s', 'kainstall1']);
    const { exitCode, json } = await serverResult(server);
    assert.equal(exitCode, 0);
    assert.equal(json.refused, 1);
    assert.equal(json.nodes.length, 1, 'the refused node never joined');
    assert.equal(json.nodes[0]?.name, 'n1');
    assert.equal((await clientResult(good)).exitCode, 0);
    assert.equal(k.digestOf(1), data.sha256);
  } finally {
    await k.destroy();
  }
});

test('an impostor coordinator (another secret) cannot feed a node', { timeout: 120_000 }, async () => {
  const k = await kaLab('kai', 1, 122);
  try {
    const data = await makeData(k.dir, 4 * MiB, 'impostor');
    // the server runs with its own secret (the last --secret wins); the node has the real one
    const impostor = k.server(['--secret', 'impostor-secret', '-s', 'kainstall1', '-n', '1', '-f', data.file, '--timeout', '30']);
    await serverReady(impostor);
    const victim = k.client(0, ['-s', 'kainstall1', '-c', `${k.srv.ip}:30765`, '--tries', '3']);
    const r = await clientResult(victim);
    assert.equal(r.exitCode, 1);
    assert.match(r.json?.error ?? '', /could not prove the session secret/);
    assert.equal(k.digestOf(0), '', 'the consumer was never started, nor fed');
    // and the impostor, for its part, never admitted the node
    impostor.proc.kill('SIGTERM');
    const { json } = await serverResult(impostor);
    assert.equal(json.nodes.length, 0);
  } finally {
    await k.destroy();
  }
});
