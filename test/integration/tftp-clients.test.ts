// kaboot's TFTP server against real clients (tftp-hpa, atftp, curl) in network
// namespaces: files arrive byte-exact (sha256), including one over 100 MB that rolls
// the block number over; escapes and writes are refused; a wrong-TID packet gets
// ERROR 5 while the transfer it aimed at completes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { mkdtemp, mkdir, writeFile, symlink, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetLab, type Host } from '../helpers/netns.js';
import { fetchCommand, sha256File, startKaboot, type ClientName, type RunningTftpServer } from '../../bench/lib/tftp-peers.js';

let lab: NetLab;
let srv: Host;
let cli: Host;
let intruder: Host;
let server: RunningTftpServer;
let base: string;
let root: string;
let outDir: string;
const files: Record<string, string> = {};

function randomBytes(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let off = 0; off < n; off += 1 << 20) randomFillSync(b, off, Math.min(1 << 20, n - off));
  return b;
}

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'kb-tftp-int-'));
  root = join(base, 'root');
  outDir = join(base, 'out');
  await mkdir(join(root, 'X86PC', 'linux'), { recursive: true });
  await mkdir(outDir);
  await chmod(base, 0o755);
  const content: Record<string, Buffer> = {
    'small.bin': randomBytes(3000),
    'blocks1468.bin': randomBytes(1468 * 20),
    'blocks512.bin': randomBytes(512 * 40),
    'empty.bin': Buffer.alloc(0),
    'text.txt': Buffer.from('line one\nline two\r\nbare\rcr\n\n'),
    'X86PC/linux/linux.0': randomBytes(40000),
    'big.bin': randomBytes(105 * 1000 * 1000 + 17),
  };
  for (const [name, data] of Object.entries(content)) await writeFile(join(root, name), data);
  for (const name of Object.keys(content)) files[name] = await sha256File(join(root, name));
  await writeFile(join(base, 'secret'), 'outside the root');
  await symlink(join(base, 'secret'), join(root, 'escape-link'));

  lab = await NetLab.create('tftp');
  srv = await lab.host('srv', { cidr: '10.77.0.1/24', extraCidrs: ['10.77.1.1/24'] });
  cli = await lab.host('cli', { cidr: '10.77.0.2/24' });
  intruder = await lab.host('intr', { cidr: '10.77.0.3/24' });
  server = await startKaboot(lab, { ns: srv.ns, root, address: srv.ip!, port: 69, extraArgs: ['--address', '10.77.1.1'] });
});

after(async () => {
  await server?.stop();
  await lab?.destroy();
  if (base) await rm(base, { recursive: true, force: true });
});

function text(r: { stdout?: unknown; stderr?: unknown }): string {
  return `${String(r.stdout ?? '')}${String(r.stderr ?? '')}`;
}

async function fetchAndCheck(client: ClientName, file: string, opts: Parameters<typeof fetchCommand>[4] = {}, expected = file) {
  const out = join(outDir, `${client}-${file.replace(/\//g, '_')}-${opts.blksize ?? 0}-${opts.windowsize ?? 0}-${opts.mode ?? ''}`);
  const r = await lab.exec(cli.ns, fetchCommand(client, srv.ip!, file, out, opts), { reject: false, timeout: 300_000 });
  assert.equal(r.exitCode, 0, `${client} ${file}: ${text(r)}`);
  assert.equal(await sha256File(out), files[expected], `${client} ${file} ${JSON.stringify(opts)}: bytes differ`);
  await rm(out, { force: true });
}

const small = ['small.bin', 'blocks1468.bin', 'blocks512.bin', 'empty.bin', 'text.txt', 'X86PC/linux/linux.0'];

test('tftp-hpa (no options, 512-byte blocks) fetches byte-exact, in binary and in netascii mode', async () => {
  for (const f of small) {
    await fetchAndCheck('tftp-hpa', f, { mode: 'binary' });
    await fetchAndCheck('tftp-hpa', f); // the client's default: netascii
  }
  await fetchAndCheck('tftp-hpa', '/X86PC/linux/linux.0', { mode: 'binary' }, 'X86PC/linux/linux.0');
});

test('atftp with blksize 1468 and windowsize 16 fetches byte-exact', async () => {
  for (const f of small) {
    await fetchAndCheck('atftp', f, { blksize: 1468, windowsize: 16 });
    await fetchAndCheck('atftp', f, { blksize: 1468 });
  }
});

test('curl with blksize 1468 (and default) fetches byte-exact', async () => {
  // curl 7.88 (Debian 12) fails on an empty file with any server (exit 71, tftpd-hpa too).
  for (const f of small.filter((x) => x !== 'empty.bin')) {
    await fetchAndCheck('curl', f, { blksize: 1468 });
    await fetchAndCheck('curl', f);
  }
});

test('a file over 100 MB: tftp-hpa (512-byte blocks, block number rolls over 3 times), atftp window 16, curl', async () => {
  await fetchAndCheck('tftp-hpa', 'big.bin', { mode: 'binary' });
  await fetchAndCheck('atftp', 'big.bin', { blksize: 1468, windowsize: 16 });
  await fetchAndCheck('curl', 'big.bin', { blksize: 1468 });
});

test('path escapes are refused with an error', async () => {
  const out = join(outDir, 'escape');
  for (const path of ['../secret', 'X86PC/../../secret', 'escape-link', '//etc/passwd', 'X86PC\\linux\\linux.0']) {
    // curl exits 69 on TFTP error 2 (its message is hidden by a getpeername bug in 7.88)
    const r = await lab.exec(cli.ns, fetchCommand('curl', srv.ip!, path, out), { reject: false });
    assert.equal(r.exitCode, 69, `curl ${path}: ${text(r)}`);
    const a = await lab.exec(cli.ns, fetchCommand('atftp', srv.ip!, path, out), { reject: false });
    assert.match(text(a), /access violation/i, `atftp ${path}`);
  }
  const h = await lab.exec(cli.ns, fetchCommand('tftp-hpa', srv.ip!, '../secret', out, { mode: 'binary' }), { reject: false });
  assert.match(text(h), /Error code 2/i);
  const missing = await lab.exec(cli.ns, fetchCommand('curl', srv.ip!, 'no-such-file', out), { reject: false });
  assert.equal(missing.exitCode, 68, 'curl exits 68 on TFTP error 1 (file not found)');
  await rm(out, { force: true });
});

test('a write request is refused (ERROR 2)', async () => {
  const local = join(outDir, 'upload');
  await writeFile(local, 'data');
  const r = await lab.exec(cli.ns, ['tftp', srv.ip!, '-c', 'put', local, 'uploaded'], { reject: false });
  assert.match(text(r), /Error code 2/i);
  const a = await lab.exec(cli.ns, ['atftp', '-p', '-l', local, '-r', 'uploaded', srv.ip!], { reject: false });
  assert.match(text(a), /read-only/i);
});

// Sends from the intruder host an ACK to every UDP port the server holds besides 69
// and prints each reply.
const intruderScript = `
const dgram = require('node:dgram');
const [server, ...ports] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
const replies = [];
s.on('message', (m, r) => replies.push({ port: r.port, op: m.readUInt16BE(0), code: m.length >= 4 ? m.readUInt16BE(2) : -1 }));
s.bind(0, () => {
  for (const p of ports) for (let i = 0; i < 3; i++) s.send(Buffer.from([0, 4, 0, 1]), Number(p), server);
  setTimeout(() => { console.log(JSON.stringify(replies)); s.close(); }, 500);
});`;

test('a packet from a wrong TID gets ERROR 5 and the transfer still completes', async () => {
  const out = join(outDir, 'tid-big');
  const transfer = lab.exec(cli.ns, fetchCommand('tftp-hpa', srv.ip!, 'big.bin', out, { mode: 'binary' }), { reject: false, timeout: 300_000 });
  let ports: string[] = [];
  for (let i = 0; i < 100 && ports.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const ss = await lab.exec(srv.ns, ['ss', '-Hun', 'state', 'all'], { reject: false });
    ports = String(ss.stdout).split('\n').map((l) => l.trim().split(/\s+/)[3] ?? '').map((a) => a.split(':').pop() ?? '').filter((p) => p !== '' && p !== '69');
  }
  assert.ok(ports.length > 0, 'no transfer socket seen');
  const r = await lab.exec(intruder.ns, [process.execPath, '-e', intruderScript, srv.ip!, ...ports]);
  const replies = JSON.parse(String(r.stdout)) as { op: number; code: number }[];
  assert.ok(replies.length > 0, 'no reply to the wrong TID');
  for (const rep of replies) assert.deepEqual([rep.op, rep.code], [5, 5]);
  const done = await transfer;
  assert.equal(done.exitCode, 0, text(done));
  assert.equal(await sha256File(out), files['big.bin']);
  await rm(out, { force: true });
  const stats = (await server.stats!()) as { stats: { wrongTid: number } };
  assert.ok(stats.stats.wrongTid >= replies.length);
});

// Sends an RRQ to the given server address from the client host and prints the source
// address and port of the first reply.
const firstReplyScript = `
const dgram = require('node:dgram');
const [server, file] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => {
  console.log(JSON.stringify({ address: r.address, port: r.port, op: m.readUInt16BE(0) }));
  s.send(Buffer.from([0, 5, 0, 0, 0]), r.port, r.address); // ERROR: end the transfer
  setTimeout(() => process.exit(0), 50);
});
s.bind(0, () => s.send(Buffer.concat([Buffer.from([0, 1]), Buffer.from(file + '\\0octet\\0')]), 69, server));
setTimeout(() => { console.log('null'); process.exit(1); }, 3000);`;

test('multi-homed: each reply comes from the address the client talked to', async () => {
  // The client reaches the second address from its first one: a reply the kernel routed
  // by itself would leave from 10.77.0.1, the server's address in the client's subnet.
  await lab.exec(cli.ns, ['ip', 'route', 'add', '10.77.1.0/24', 'dev', 'eth0', 'src', '10.77.0.2']);
  for (const address of ['10.77.0.1', '10.77.1.1']) {
    const r = await lab.exec(cli.ns, [process.execPath, '-e', firstReplyScript, address, 'small.bin'], { reject: false });
    const reply = JSON.parse(String(r.stdout)) as { address: string; port: number; op: number } | null;
    assert.ok(reply, `no reply from ${address}`);
    assert.equal(reply.op, 3, 'DATA 1');
    assert.equal(reply.address, address);
    assert.notEqual(reply.port, 69);
  }
  // and a real client through the second address
  const out = join(outDir, 'second-address');
  const c = await lab.exec(cli.ns, fetchCommand('curl', '10.77.1.1', 'blocks1468.bin', out, { blksize: 1468 }), { reject: false });
  assert.equal(c.exitCode, 0, text(c));
  assert.equal(await sha256File(out), files['blocks1468.bin']);
});

test('many clients at once: one disk read of the file, every copy byte-exact', async () => {
  const name = 'hot.bin';
  await writeFile(join(root, name), randomBytes(5 * 1024 * 1024 + 123));
  const want = await sha256File(join(root, name));
  const before = ((await server.stats!()) as { cache: { diskBytesRead: number } }).cache.diskBytesRead;
  const outs = Array.from({ length: 30 }, (_, i) => join(outDir, `hot-${i}`));
  const runs = outs.map((out, i) =>
    lab.exec(cli.ns, fetchCommand(i % 3 === 0 ? 'atftp' : 'curl', srv.ip!, name, out, { blksize: 1468, ...(i % 3 === 0 ? { windowsize: 8 } : {}) }), { reject: false, timeout: 300_000 }));
  for (const r of await Promise.all(runs)) assert.equal(r.exitCode, 0, text(r));
  for (const out of outs) assert.equal(await sha256File(out), want);
  const after = ((await server.stats!()) as { cache: { diskBytesRead: number } }).cache.diskBytesRead;
  assert.equal(after - before, 5 * 1024 * 1024 + 123);
});
