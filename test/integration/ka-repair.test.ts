// Repair: a node SIGKILLed mid-stream. Its child re-attaches to the dead node's
// parent and resumes at the offset it holds; when that parent's ring no longer holds
// it, the gap comes from the coordinator's spool.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { GiB, MiB, kaLab, makeData, serverReady, serverResult, clientResult, until, scratch } from './ka-lab.js';

let data: { file: string; sha256: string };
const dataDir = scratch('rdata');
before(async () => {
  data = await makeData(dataDir, GiB, 'repair');
});
after(() => rmSync(dataDir, { recursive: true, force: true }));

const sizeOf = (f: string) => {
  try {
    return statSync(f).size;
  } catch {
    return 0;
  }
};

test('a middle node killed at 30%: the others finish with the right digest, the session reports it failed', { timeout: 600_000 }, async () => {
  const k = await kaLab('krm', 3, 111);
  try {
    const server = k.server(['-s', 'kainstall2', '-n', '3', '-f', data.file, '--no-slow']);
    await serverReady(server);
    const victimOut = join(k.dir, 'victim-bytes');
    // chain order is by address: n0 → n1 → n2; n1 is the middle one. Its consumer keeps
    // the bytes so the test can see how far it got.
    const clients = [
      k.client(0, ['-s', 'kainstall2']),
      k.client(1, ['-s', 'kainstall2'], { consumer: `cat > ${victimOut}` }),
      k.client(2, ['-s', 'kainstall2']),
    ];
    await until(() => sizeOf(victimOut) >= 0.3 * GiB, 300_000, 'the middle node to reach 30%');
    (clients[1]?.proc as { kill(s: string): void }).kill('SIGKILL');
    rmSync(victimOut, { force: true });
    const { exitCode, json } = await serverResult(server);
    const results = await Promise.all(clients.map(clientResult));
    assert.equal(exitCode, 1, 'a node failed, so the session exits 1');
    assert.equal(json.ok, false);
    const byName = new Map(json.nodes.map((n) => [n.name, n]));
    assert.equal(byName.get('n1')?.state, 'failed');
    assert.equal(byName.get('n1')?.ok, false);
    for (const i of [0, 2]) {
      assert.equal(byName.get(`n${i}`)?.ok, true, `n${i} should have finished`);
      assert.equal(byName.get(`n${i}`)?.digestOk, true);
      assert.equal(k.digestOf(i), data.sha256);
      assert.equal(results[i]?.exitCode, 0);
    }
    // n2 was re-attached to n0 (n1's parent) and resumed where it was
    const n0 = byName.get('n0')?.id;
    const n2 = byName.get('n2')?.id;
    const relinked = json.events.find((e) => e.kind === 'linked' && e.node === n2 && e.detail?.parent === n0);
    assert.ok(relinked, `n2 re-linked under n0: ${JSON.stringify(json.events.filter((e) => e.node === n2))}`);
    assert.ok(Number(relinked.detail?.offset) > 0, 'n2 resumed mid-stream, not from 0');
    console.log(`middle-kill: n2 resumed at ${(Number(relinked.detail?.offset) / MiB).toFixed(0)} MiB from n0's ${String(relinked.detail?.from)}`);
  } finally {
    await k.destroy();
  }
});

test('the first node killed after its ring wrapped: the spool fills the gap', { timeout: 600_000 }, async () => {
  const k = await kaLab('krf', 3, 112);
  try {
    // small rings everywhere, so the source no longer holds what n1 needs
    const server = k.server(['-s', 'kainstall2', '-n', '3', '-f', data.file, '--no-slow', '--ring', '2M']);
    await serverReady(server);
    const victimOut = join(k.dir, 'victim-bytes');
    const clients = [
      k.client(0, ['-s', 'kainstall2', '--ring', '4M'], { consumer: `cat > ${victimOut}` }),
      k.client(1, ['-s', 'kainstall2', '--ring', '4M']),
      k.client(2, ['-s', 'kainstall2', '--ring', '4M']),
    ];
    await until(() => sizeOf(victimOut) >= 0.5 * GiB, 300_000, 'the first node to reach 50%');
    (clients[0]?.proc as { kill(s: string): void }).kill('SIGKILL');
    rmSync(victimOut, { force: true });
    const { json } = await serverResult(server);
    const results = await Promise.all(clients.map(clientResult));
    const byName = new Map(json.nodes.map((n) => [n.name, n]));
    assert.equal(byName.get('n0')?.state, 'failed');
    for (const i of [1, 2]) {
      assert.equal(byName.get(`n${i}`)?.ok, true, `n${i} should have finished: ${JSON.stringify(byName.get(`n${i}`))}`);
      assert.equal(k.digestOf(i), data.sha256);
      assert.equal(results[i]?.exitCode, 0);
    }
    const n1 = byName.get('n1')?.id;
    const relinked = json.events.find((e) => e.kind === 'linked' && e.node === n1 && e.detail?.parent === 0 && Number(e.detail?.offset) > 0);
    assert.ok(relinked, `n1 re-linked under the source: ${JSON.stringify(json.events.filter((e) => e.node === n1))}`);
    assert.equal(relinked.detail?.from, 'spool', 'the source ring had wrapped past n1');
    assert.ok(json.spoolGapBytes > 0, 'bytes came from the spool');
    console.log(`first-kill: n1 resumed at ${(Number(relinked.detail?.offset) / MiB).toFixed(0)} MiB; ${(json.spoolGapBytes / MiB).toFixed(1)} MiB served from the spool`);
  } finally {
    await k.destroy();
  }
});

test('a late joiner (tree of arity 2) becomes the tail and catches up from the spool', { timeout: 600_000 }, async () => {
  const k = await kaLab('krl', 3, 113);
  try {
    const small = await makeData(k.dir, 256 * MiB, 'late');
    // a command source that trickles (4 MiB every 0.2 s), so the session is still running when n2 arrives;
    // its output goes through the spool file
    const trickle = `for i in $(seq 0 63); do dd if=${small.file} bs=4M skip=$i count=1 status=none; sleep 0.2; done`;
    const server = k.server(['-s', 'kainstall1', '-n', '2', '-a', '2', '-e', trickle, '--no-slow', '--ring', '8M']);
    await serverReady(server);
    const firstOut = join(k.dir, 'first-bytes');
    const early = [k.client(0, ['-s', 'kainstall1', '-w'], { consumer: `tee ${firstOut} | openssl dgst -sha256 -r > ${k.outFile(0)}` }), k.client(1, ['-s', 'kainstall1', '-w'])];
    await until(() => sizeOf(firstOut) >= 0.3 * 256 * MiB, 300_000, 'the session to be 30% through');
    const late = k.client(2, ['-s', 'kainstall1']);
    const { exitCode, json } = await serverResult(server);
    const results = await Promise.all([...early, late].map(clientResult));
    assert.equal(exitCode, 0, server.log().slice(-3000));
    const byName = new Map(json.nodes.map((n) => [n.name, n]));
    const n2 = byName.get('n2');
    assert.ok(json.events.some((e) => e.kind === 'late-join' && e.node === n2?.id), 'n2 joined late');
    assert.equal(n2?.mode, 'detached');
    assert.ok(n2?.parent !== 0, 'under the tail, not the source');
    assert.equal(json.events.filter((e) => e.kind === 'released').length, 2, 'the two -w nodes were released');
    for (let i = 0; i < 3; i++) {
      assert.equal(k.digestOf(i), small.sha256, `n${i}`);
      assert.equal(results[i]?.exitCode, 0);
    }
    const parentName = json.nodes.find((n) => n.id === n2?.parent)?.name;
    const viaParent = results[Number(parentName?.slice(1))]?.json?.childGapBytes ?? 0;
    assert.ok(viaParent > 0, `n2's parent served it from the spool (${viaParent} bytes)`);
    console.log(`late join: n2 under ${parentName}, ${(viaParent / MiB).toFixed(0)} MiB of its stream came from the spool`);
  } finally {
    await k.destroy();
  }
});
