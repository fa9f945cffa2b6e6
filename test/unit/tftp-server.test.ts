// The server against a scripted client on 127.0.0.1: protocol corners that real
// clients do not show on demand (duplicate ACKs, wrong TIDs, lost packets, give-up).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log.js';
import { dirProvider } from '../../src/tftp/dir-provider.js';
import { decodePacket, encodePacket, type TftpPacket } from '../../src/tftp/packet.js';
import { startTftpServer, type TftpServer } from '../../src/tftp/server.js';

interface Received { packet: TftpPacket; from: RemoteInfo }

class ScriptedClient {
  private readonly queue: Received[] = [];
  private waiter: (() => void) | null = null;
  private constructor(readonly sock: Socket) {
    sock.on('message', (msg, from) => {
      const d = decodePacket(msg);
      if (d.ok) this.queue.push({ packet: d.packet, from });
      this.waiter?.();
    });
  }
  static async open(): Promise<ScriptedClient> {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    return new ScriptedClient(sock);
  }
  send(p: TftpPacket | Buffer, port: number): void {
    this.sock.send(Buffer.isBuffer(p) ? p : encodePacket(p), port, '127.0.0.1');
  }
  async next(timeoutMs = 3000): Promise<Received | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiter = () => { clearTimeout(t); r(); };
      });
      this.waiter = null;
    }
    return this.queue.shift() ?? null;
  }
  close(): void { this.sock.close(); }
}

let dir: string;
let server: TftpServer;
let port: number;
const content = Buffer.alloc(5000);
for (let i = 0; i < content.length; i++) content[i] = (i * 7) & 0xff;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kb-tftp-srv-'));
  await writeFile(join(dir, 'file.bin'), content);
  server = await startTftpServer({
    addresses: ['127.0.0.1'], port: 0, provider: dirProvider(dir), logger: silentLogger,
    limits: { max_blksize: 65464, max_windowsize: 8, timeout: 1, retries: 2 },
  });
  port = server.listening[0]!.port;
});
after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

/** Takes DATA blocks 1, 2, … in order from `tid`, ACKing the last of each window, until a short block; the file. */
async function receiveData(c: ScriptedClient, tid: number, blksize: number, windowsize = 1): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let block = 1; ; block++) {
    const r = await c.next();
    assert.ok(r && r.packet.op === 'DATA' && r.packet.block === block);
    parts.push(r.packet.data);
    const last = r.packet.data.length < blksize;
    if (block % windowsize === 0 || last) c.send({ op: 'ACK', block }, tid);
    if (last) return Buffer.concat(parts);
  }
}

function rrq(filename: string, options: [string, string][] = []): TftpPacket {
  return { op: 'RRQ', filename, mode: 'octet', options };
}

test('lock-step transfer; a duplicate ACK sends nothing (no Sorcerer\'s Apprentice)', async () => {
  const c = await ScriptedClient.open();
  c.send(rrq('file.bin'), port);
  const got: Buffer[] = [];
  let r = await c.next();
  assert.ok(r && r.packet.op === 'DATA' && r.packet.block === 1);
  const tid = r.from.port;
  assert.notEqual(tid, port);
  got.push(r.packet.data);
  c.send({ op: 'ACK', block: 1 }, tid);
  c.send({ op: 'ACK', block: 1 }, tid); // duplicate
  r = await c.next();
  assert.ok(r && r.packet.op === 'DATA' && r.packet.block === 2);
  got.push(r.packet.data);
  // nothing else may arrive: the duplicate ACK 1 must not resend block 2
  assert.equal(await c.next(300), null);
  for (let block = 2; ; block++) {
    c.send({ op: 'ACK', block }, tid);
    r = await c.next();
    assert.ok(r && r.packet.op === 'DATA' && r.packet.block === block + 1);
    got.push(r.packet.data);
    if (r.packet.data.length < 512) {
      c.send({ op: 'ACK', block: block + 1 }, tid);
      break;
    }
  }
  assert.deepEqual(Buffer.concat(got), content);
  c.close();
});

test('options: OACK, then ACK 0 starts a window of blocks', async () => {
  const c = await ScriptedClient.open();
  c.send(rrq('/file.bin', [['blksize', '1000'], ['tsize', '0'], ['windowsize', '4'], ['foo', 'bar']]), port);
  let r = await c.next();
  assert.ok(r && r.packet.op === 'OACK');
  assert.deepEqual(r.packet.options, [['blksize', '1000'], ['tsize', '5000'], ['windowsize', '4']]);
  const tid = r.from.port;
  c.send({ op: 'ACK', block: 0 }, tid);
  const blocks: number[] = [];
  for (let i = 0; i < 4; i++) {
    r = await c.next();
    assert.ok(r && r.packet.op === 'DATA');
    blocks.push(r.packet.block);
  }
  assert.deepEqual(blocks, [1, 2, 3, 4]);
  c.send({ op: 'ACK', block: 2 }, tid); // lost 3: resume after 2
  blocks.length = 0;
  for (let i = 0; i < 4; i++) {
    r = await c.next();
    assert.ok(r && r.packet.op === 'DATA');
    blocks.push(r.packet.block);
  }
  assert.deepEqual(blocks, [3, 4, 5, 6]);
  c.send({ op: 'ACK', block: 6 }, tid);
  assert.equal(await c.next(300), null);
  c.close();
});

test('a packet from a wrong TID gets ERROR 5 and the transfer goes on', async () => {
  const c = await ScriptedClient.open();
  const intruder = await ScriptedClient.open();
  c.send(rrq('file.bin'), port);
  let r = await c.next();
  assert.ok(r && r.packet.op === 'DATA' && r.packet.block === 1);
  const tid = r.from.port;
  intruder.send({ op: 'ACK', block: 1 }, tid);
  const e = await intruder.next();
  assert.ok(e && e.packet.op === 'ERROR' && e.packet.code === 5);
  assert.equal(await c.next(200), null, 'the intruder\'s ACK must not move the transfer');
  c.send({ op: 'ACK', block: 1 }, tid);
  r = await c.next();
  assert.ok(r && r.packet.op === 'DATA' && r.packet.block === 2);
  c.send({ op: 'ERROR', code: 0, message: 'bye' }, tid);
  c.close();
  intruder.close();
  assert.ok(server.stats().wrongTid >= 1);
});

test('retransmission on timeout, then give-up', async () => {
  const c = await ScriptedClient.open();
  c.send(rrq('file.bin'), port);
  const first = await c.next();
  assert.ok(first && first.packet.op === 'DATA' && first.packet.block === 1);
  const again = await c.next(2500);
  assert.ok(again && again.packet.op === 'DATA' && again.packet.block === 1, 'block 1 resent after the timeout');
  // retries: 2 → one more resend after 2 s, then an ERROR after 4 s more
  const third = await c.next(3000);
  assert.ok(third && third.packet.op === 'DATA' && third.packet.block === 1);
  const end = await c.next(5000);
  assert.ok(end && end.packet.op === 'ERROR');
  c.close();
});

test('WRQ refused with ERROR 2; missing file ERROR 1; escape ERROR 2; garbage ignored', async () => {
  const c = await ScriptedClient.open();
  c.send({ op: 'WRQ', filename: 'x', mode: 'octet', options: [] }, port);
  let r = await c.next();
  assert.ok(r && r.packet.op === 'ERROR' && r.packet.code === 2);
  c.send(rrq('nope'), port);
  r = await c.next();
  assert.ok(r && r.packet.op === 'ERROR' && r.packet.code === 1);
  c.send(rrq('../../etc/passwd'), port);
  r = await c.next();
  assert.ok(r && r.packet.op === 'ERROR' && r.packet.code === 2);
  const before = server.stats().malformed;
  c.send(Buffer.from([0, 1, 0x41]), port);
  c.send(Buffer.from([0xff, 0xff, 1, 2, 3]), port);
  assert.equal(await c.next(200), null);
  assert.equal(server.stats().malformed, before + 2);
  c.close();
});

test('rollover: a file of more than 65535 blocks of 8 bytes arrives whole', async () => {
  const data = Buffer.alloc(70000 * 8 + 3);
  for (let i = 0; i < data.length; i++) data[i] = (i >> 3) & 0xff;
  await writeFile(join(dir, 'many-blocks.bin'), data);
  const c = await ScriptedClient.open();
  c.send(rrq('many-blocks.bin', [['blksize', '8'], ['windowsize', '8']]), port);
  let r = await c.next();
  assert.ok(r && r.packet.op === 'OACK');
  const tid = r.from.port;
  c.send({ op: 'ACK', block: 0 }, tid);
  const parts: Buffer[] = [];
  let expected = 1;
  for (;;) {
    r = await c.next();
    assert.ok(r && r.packet.op === 'DATA', 'DATA expected');
    assert.equal(r.packet.block, expected & 0xffff);
    parts.push(r.packet.data);
    const last = r.packet.data.length < 8;
    if (expected % 8 === 0 || last) c.send({ op: 'ACK', block: expected & 0xffff }, tid);
    if (last) break;
    expected++;
  }
  assert.ok(expected > 65536);
  assert.deepEqual(Buffer.concat(parts), data);
  c.close();
});

test('past max_transfers a request gets ERROR 0 (busy) and the running transfer is untouched', async () => {
  const small = await startTftpServer({
    addresses: ['127.0.0.1'], port: 0, provider: dirProvider(dir), logger: silentLogger,
    limits: { max_blksize: 65464, max_windowsize: 8, timeout: 1, retries: 2, max_transfers: 1 },
  });
  const p = small.listening[0]!.port;
  const a = await ScriptedClient.open();
  const b = await ScriptedClient.open();
  a.send(rrq('file.bin'), p);
  const first = await a.next();
  assert.ok(first && first.packet.op === 'DATA');
  b.send(rrq('file.bin'), p);
  const refused = await b.next();
  assert.ok(refused && refused.packet.op === 'ERROR' && refused.packet.code === 0);
  a.send({ op: 'ACK', block: 1 }, first.from.port);
  const second = await a.next();
  assert.ok(second && second.packet.op === 'DATA' && second.packet.block === 2);
  assert.equal(small.stats().busy, 1);
  a.close();
  b.close();
  await small.close();
});

test('PXE tsize probe: OACK, client ERROR 8, then the same client port asks again and is served', async () => {
  const c = await ScriptedClient.open();
  c.send(rrq('file.bin', [['tsize', '0']]), port);
  let r = await c.next();
  assert.ok(r && r.packet.op === 'OACK');
  assert.deepEqual(r.packet.options, [['tsize', '5000']]);
  c.send({ op: 'ERROR', code: 8, message: 'tsize only' }, r.from.port);
  await new Promise((res) => setTimeout(res, 50));
  c.send(rrq('file.bin', [['blksize', '1456']]), port);
  r = await c.next();
  assert.ok(r && r.packet.op === 'OACK');
  assert.deepEqual(r.packet.options, [['blksize', '1456']]);
  const tid = r.from.port;
  c.send({ op: 'ACK', block: 0 }, tid);
  assert.deepEqual(await receiveData(c, tid, 1456), content);
  c.close();
});

test('a repeated RRQ while the transfer runs starts no second transfer', async () => {
  const c = await ScriptedClient.open();
  const before = server.stats().duplicateRequests;
  c.send(rrq('file.bin'), port);
  c.send(rrq('file.bin'), port);
  const r = await c.next();
  assert.ok(r && r.packet.op === 'DATA' && r.packet.block === 1);
  assert.equal(await c.next(300), null, 'only one DATA 1');
  assert.equal(server.stats().duplicateRequests, before + 1);
  c.send({ op: 'ERROR', code: 0, message: 'done' }, r.from.port);
  c.close();
});

test('a file above the cache limit is streamed from disk, byte-exact, windowed', async () => {
  const { FileCache } = await import('../../src/tftp/file-cache.js');
  const data = Buffer.alloc(300_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13 + (i >> 9)) & 0xff;
  await writeFile(join(dir, 'streamed.bin'), data);
  const cache = new FileCache({ maxFileBytes: 1000, streamChunkBytes: 16384 });
  const srv2 = await startTftpServer({
    addresses: ['127.0.0.1'], port: 0, provider: dirProvider(dir, { cache }), logger: silentLogger,
    limits: { max_blksize: 65464, max_windowsize: 8, timeout: 1, retries: 2 },
  });
  const c = await ScriptedClient.open();
  c.send(rrq('streamed.bin', [['blksize', '1000'], ['windowsize', '8']]), srv2.listening[0]!.port);
  let r = await c.next();
  assert.ok(r && r.packet.op === 'OACK');
  const tid = r.from.port;
  c.send({ op: 'ACK', block: 0 }, tid);
  assert.deepEqual(await receiveData(c, tid, 1000, 8), data);
  assert.equal(cache.stats().streamed, 1);
  c.close();
  await srv2.close();
});

test('a port already taken makes startTftpServer reject; close() ends running transfers', async () => {
  await assert.rejects(startTftpServer({
    addresses: ['127.0.0.1'], port, provider: dirProvider(dir), logger: silentLogger,
    limits: { max_blksize: 65464, max_windowsize: 8, timeout: 1, retries: 2 },
  }));
  const other = await startTftpServer({
    addresses: ['127.0.0.1'], port: 0, provider: dirProvider(dir), logger: silentLogger,
    limits: { max_blksize: 65464, max_windowsize: 8, timeout: 1, retries: 2 },
  });
  const c = await ScriptedClient.open();
  c.send(rrq('file.bin'), other.listening[0]!.port);
  const r = await c.next();
  assert.ok(r && r.packet.op === 'DATA');
  assert.equal(other.stats().active, 1);
  await other.close();
  assert.equal(other.stats().active, 0);
  assert.equal(other.stats().failed, 1);
  c.close();
});
