// 100,000 malformed frames, one connection each: half to the coordinator's control
// port, half to a node's data port. Each offending peer is dropped, and the session
// then runs a real transfer to the end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MiB, kaLab, makeData, serverReady, serverResult, clientResult, until } from './ka-lab.js';

const FRAMES = 100_000;

test(`${FRAMES} malformed control and data frames: each peer dropped, the session goes on`, { timeout: 900_000 }, async () => {
  const k = await kaLab('kfz', 3, 131);
  try {
    const data = await makeData(k.dir, 64 * MiB, 'fuzz');
    const server = k.server(['-s', 'fuzzsession', '-n', '2', '-f', data.file, '--log-level', 'warn']);
    await serverReady(server);
    // node 0 joins and waits (the session wants 2): its data port is open for children
    const a = k.client(0, ['-s', 'fuzzsession', '--data-port', '30764']);
    await until(() => a.log().includes('joined the session') || a.proc.exitCode !== null, 20_000, 'node 0 to join');
    assert.equal(a.proc.exitCode, null, `node 0 is waiting in the session:\n${a.log()}`);

    const fuzzer = (target: string, port: number, kind: 'control' | 'data', seed: number) =>
      k.lab.exec(k.nodes[2]?.ns as string, ['node', '--import', 'tsx', 'test/integration/ka-fuzz-peer.ts', target, String(port), kind, String(FRAMES / 2), String(seed)], {
        cwd: new URL('../..', import.meta.url).pathname,
      });
    const t0 = Date.now();
    const [ctl, dat] = await Promise.all([fuzzer(k.srv.ip as string, 30765, 'control', 7), fuzzer(k.nodes[0]?.ip as string, 30764, 'data', 11)]);
    const secs = (Date.now() - t0) / 1000;
    const c = JSON.parse(String(ctl.stdout)) as { sent: number; droppedByPeer: number; timeouts: number; connectErrors: number };
    const d = JSON.parse(String(dat.stdout)) as typeof c;
    console.log(`fuzz: control ${JSON.stringify(c)}, data ${JSON.stringify(d)}, ${secs.toFixed(1)} s`);
    assert.equal(c.sent + d.sent, FRAMES);
    assert.equal(c.droppedByPeer, FRAMES / 2, 'the coordinator dropped every control peer');
    assert.equal(d.droppedByPeer, FRAMES / 2, 'the node dropped every data peer');
    assert.equal(a.proc.exitCode, null, 'node 0 is still in the session');

    // the session goes on: a second node joins and the transfer runs to the end
    const b = k.client(1, ['-s', 'fuzzsession', '--log-level', 'warn']);
    const { exitCode, json } = await serverResult(server);
    assert.equal(exitCode, 0, server.log().slice(-2000));
    assert.equal(json.ok, true);
    assert.ok(json.droppedPeers >= FRAMES / 2, `coordinator counted ${json.droppedPeers} dropped peers`);
    assert.equal(json.nodes.length, 2);
    for (const r of await Promise.all([a, b].map(clientResult))) assert.equal(r.exitCode, 0);
    assert.equal(k.digestOf(0), data.sha256);
    assert.equal(k.digestOf(1), data.sha256);
  } finally {
    await k.destroy();
  }
});
