// One receiver behind a slowed link (tc tbf on its veth): the coordinator names it
// slow from who waits on whom, moves it to the tail (detached: it holds nobody back,
// and catches up from the spool), and the others finish before it. Tests never
// assert timings: the order is asserted, the rates are reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MiB, kaLab, makeData, serverReady, serverResult, clientResult, mbps } from './ka-lab.js';

test('a receiver behind a slow link is moved to the tail and the others finish first', { timeout: 600_000 }, async () => {
  const k = await kaLab('ksl', 3, 141);
  try {
    const data = await makeData(k.dir, 256 * MiB, 'slow');
    // n1 (the middle of the chain n0 → n1 → n2) receives through a 80 Mbit/s link
    const slow = k.nodes[1];
    const { stdout: iflink } = await k.lab.exec(slow?.ns as string, ['cat', '/sys/class/net/eth0/iflink']);
    const { stdout: links } = await k.lab.exec(k.lab.switchNs, ['ip', '-o', 'link']);
    const outer = String(links).split('\n').find((l: string) => l.startsWith(`${String(iflink).trim()}:`))?.split(':')[1]?.trim().split('@')[0];
    assert.ok(outer, 'found the switch side of n1’s veth');
    await k.lab.exec(k.lab.switchNs, ['tc', 'qdisc', 'add', 'dev', outer, 'root', 'tbf', 'rate', '80mbit', 'burst', '256kb', 'latency', '50ms']);

    const server = k.server(['-s', 'kainstall2', '-n', '3', '-f', data.file, '--slow-after', '4']);
    await serverReady(server);
    const clients = k.nodes.map((_, i) => k.client(i, ['-s', 'kainstall2']));
    const { exitCode, json } = await serverResult(server);
    const results = await Promise.all(clients.map(clientResult));
    assert.equal(exitCode, 0, server.log().slice(-3000));
    const byName = new Map(json.nodes.map((n) => [n.name, n]));
    const s = byName.get('n1');
    assert.ok(s && s.movedToTail >= 1, `n1 was moved to the tail: ${JSON.stringify(json.events.filter((e) => e.kind === 'moved-to-tail'))}`);
    const moved = json.events.find((e) => e.kind === 'moved-to-tail');
    assert.equal(moved?.node, s.id, 'the first node moved is the slow one');
    for (const i of [0, 2]) {
      const n = byName.get(`n${i}`);
      assert.equal(n?.movedToTail, 0, `n${i} was not moved`);
      assert.ok((n?.finishedAfterMs ?? Infinity) < (s.finishedAfterMs ?? 0), `n${i} finished before the slow node`);
    }
    for (let i = 0; i < 3; i++) {
      assert.equal(k.digestOf(i), data.sha256, `n${i} got the right bytes`);
      assert.equal(results[i]?.exitCode, 0);
    }
    console.log(
      `slow link: moved after ${moved?.atMs} ms; rates MiB/s: ${json.nodes.map((n) => `${n.name} ${mbps(n.rate)}`).join(', ')}; ` +
        `finished after s: ${json.nodes.map((n) => `${n.name} ${((n.finishedAfterMs ?? 0) / 1000).toFixed(1)}`).join(', ')}; n1's gap bytes via n2: ${results[2]?.json?.childGapBytes}`,
    );
  } finally {
    await k.destroy();
  }
});
