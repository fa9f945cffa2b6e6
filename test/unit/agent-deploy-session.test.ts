// The getstage2 and receive consumers behind a real KA session on loopback: a coordinator
// (startSession) sends a file; the agent's joinForPlan runs the very command lines the steps
// build (busybox cat to a file; the receive script through busybox chroot, here into "/").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { startSession } from '../../src/ka/index.js';
import { joinForPlan, sessionProblem } from '../../src/agent/deploy/ka-join.js';
import { stage2Consumer } from '../../src/agent/deploy/stage2.js';
import { chrootConsumer, receiveScript } from '../../src/agent/deploy/receive.js';
import { tarArgs } from '../../src/images/capture.js';
import { silentLogger } from '../../src/log.js';
import type { SessionRef } from '../../src/deploy/plan.js';

const secret = 'ab'.repeat(32);

async function serve(name: string, file: string, spoolDir: string): Promise<{ ref: SessionRef; close: () => Promise<void> }> {
  const bytes = readFileSync(file);
  const s = await startSession({
    session: name, secret, expectedNodes: 1, releaseDelayMs: 0, source: { file }, controlPort: 0, dataPort: 0, discoveryPort: null, spoolDir, bindHost: '127.0.0.1', logger: silentLogger,
  });
  return {
    ref: { name, port: s.controlPort, secret, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') },
    close: async () => {
      await s.result.catch(() => undefined);
      await s.close().catch(() => undefined);
    },
  };
}

test('getstage2: the stream lands in the RAM file, its size and SHA-256 as the plan says', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-ka-'));
  try {
    const src = join(dir, 'stage2.sqfs');
    writeFileSync(src, Buffer.from(Array.from({ length: 3_000_000 }, (_, i) => (i * 7) % 251)));
    const s = await serve('getstage2', src, join(dir, 'spool'));
    const out = join(dir, 'run', 'stage2.sqfs');
    mkdirSync(join(dir, 'run'));
    const said: string[] = [];
    const r = await joinForPlan(s.ref, '127.0.0.1', stage2Consumer('busybox', out), (l) => said.push(l), 'node-test');
    await s.close();
    assert.equal(sessionProblem(s.ref, r, true), undefined, said.join('\n'));
    assert.equal(statSync(out).size, s.ref.bytes);
    assert.ok(readFileSync(out).equals(readFileSync(src)));
    assert.ok(said.some((l) => /digest ok, consumer exit 0/.test(l)), said.join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('receive: a zstd tar stream unpacked through busybox chroot; a stream the consumer cannot take fails the session for this node', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-ka-'));
  try {
    const golden = join(dir, 'golden');
    mkdirSync(join(golden, 'etc'), { recursive: true });
    writeFileSync(join(golden, 'etc/hostname'), 'golden\n');
    writeFileSync(join(golden, 'etc/big'), Buffer.alloc(2_000_000, 3));
    const stream = join(dir, 'root.tar.zst');
    await execa('sh', ['-c', `tar ${tarArgs(golden).map((a) => `'${a}'`).join(' ')} | zstd -q -c > ${stream}`]);
    const s = await serve('kainstall1', stream, join(dir, 'spool'));
    const clone = join(dir, 'clone');
    mkdirSync(clone);
    const err = join(dir, 'receive.err');
    const said: string[] = [];
    const r = await joinForPlan(s.ref, '127.0.0.1', chrootConsumer('busybox', '/', receiveScript(clone, [], join(dir, 'rc')), err), (l) => said.push(l), 'node-test');
    await s.close();
    assert.equal(sessionProblem(s.ref, r, true), undefined, `${said.join('\n')}\n${readFileSync(err, 'utf8')}`);
    assert.equal(readFileSync(join(clone, 'etc/hostname'), 'utf8'), 'golden\n');
    assert.equal(statSync(join(clone, 'etc/big')).size, 2_000_000);

    const plain = join(dir, 'plain.bin');
    writeFileSync(plain, Buffer.alloc(500_000, 9));
    const bad = await serve('kainstall2', plain, join(dir, 'spool2'));
    const clone2 = join(dir, 'clone2');
    mkdirSync(clone2);
    const r2 = await joinForPlan(bad.ref, '127.0.0.1', chrootConsumer('busybox', '/', receiveScript(clone2, [], join(dir, 'rc2')), `${err}2`), () => undefined, 'node-test');
    await bad.close();
    assert.match(sessionProblem(bad.ref, r2, true) ?? '', /consumer exited with 97/);
    assert.match(readFileSync(`${err}2`, 'utf8'), /zstd -dc exited with 1/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
