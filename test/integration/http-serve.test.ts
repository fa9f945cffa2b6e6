// kaboot's HTTP side against curl, in a namespace: images with HEAD and Range,
// escapes refused, iPXE scripts per node, the API and its token.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, symlinkSync, mkdirSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import { join } from 'node:path';
import { NetLab, type Host } from '../helpers/netns.js';
import { startKaboot, type KabootProcess } from '../helpers/kaboot-process.js';

let lab: NetLab;
let srv: Host;
let cli: Host;
let kb: KabootProcess;
const big = randomBytes(3 * 1024 * 1024 + 17);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

before(async () => {
  lab = await NetLab.create('http');
  srv = await lab.host('srv', { cidr: '10.81.0.1/24' });
  cli = await lab.host('cli', { cidr: '10.81.0.2/24' });
  kb = await startKaboot(lab, srv.ns, { dhcp: { mode: 'off' }, tftp: { enabled: false }, http: { port: 8080 } });
  writeFileSync(join(kb.imagesDir, 'vmlinuz'), big);
  mkdirSync(join(kb.imagesDir, 'sub'));
  writeFileSync(join(kb.imagesDir, 'sub', 'a.txt'), 'hello');
  symlinkSync('/etc/passwd', join(kb.imagesDir, 'leak'));
  writeFileSync(join(kb.dir, 'outside.txt'), 'secret');
});
after(async () => {
  await kb?.stop();
  await lab?.destroy();
});

async function curl(...args: string[]): Promise<{ exitCode: number; stdout: Buffer }> {
  const r = await lab.exec(cli.ns, ['curl', '-sS', ...args], { encoding: 'buffer', reject: false });
  return { exitCode: r.exitCode ?? -1, stdout: Buffer.from(r.stdout as Uint8Array) };
}
const base = 'http://10.81.0.1:8080';

test('GET serves a file byte-exact; HEAD gives its length', async () => {
  const r = await curl(`${base}/vmlinuz`);
  assert.equal(r.exitCode, 0);
  assert.equal(sha(r.stdout), sha(big));
  const h = await curl('-I', `${base}/vmlinuz`);
  assert.match(h.stdout.toString(), new RegExp(`content-length: ${big.length}`, 'i'));
  assert.match(h.stdout.toString(), /accept-ranges: bytes/i);
});

test('Range requests return the right bytes', async () => {
  const head = (await curl('-r', '1000-1999', '-D', '-', '-o', '/dev/null', `${base}/vmlinuz`)).stdout.toString();
  assert.match(head, /^HTTP\/1\.1 206/);
  assert.match(head, new RegExp(`content-range: bytes 1000-1999/${big.length}`, 'i'));
  const body = (await curl('-r', '1000-1999', `${base}/vmlinuz`)).stdout;
  assert.deepEqual(body, big.subarray(1000, 2000));
  const tail = (await curl('-r', '-10', `${base}/vmlinuz`)).stdout;
  assert.deepEqual(tail, big.subarray(big.length - 10));
});

test('nothing outside images_dir: .., encoded .., symlinks', async () => {
  for (const path of ['/../outside.txt', '/%2e%2e/outside.txt', '/sub/../../outside.txt', '/leak', '/..%2foutside.txt']) {
    const r = await curl('--path-as-is', '-o', '/dev/null', '-w', '%{http_code}', `${base}${path}`);
    assert.ok(['403', '404', '400'].includes(r.stdout.toString()), `${path} gave ${r.stdout.toString()}`);
  }
  const ok = await curl(`${base}/sub/a.txt`);
  assert.equal(ok.stdout.toString(), 'hello');
});

test('Debian loaders are served when images_dir lacks them', async () => {
  const r = await curl('-o', '/dev/null', '-w', '%{http_code} %{size_download}', `${base}/ipxe.efi`);
  const [code, size] = r.stdout.toString().split(' ');
  assert.equal(code, '200');
  assert.ok(Number(size) > 100_000);
});

test('iPXE script per node follows the registry; writes need the token', async () => {
  const mac = '52:54:00:aa:bb:01';
  const local = await curl(`${base}/ipxe/52-54-00-aa-bb-01.ipxe`);
  assert.match(local.stdout.toString(), /sanboot/);
  const denied = await curl('-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', '-H', 'content-type: application/json', '-d', '{"next_boot":"kamethod"}', `${base}/api/nodes/${mac}`);
  assert.equal(denied.stdout.toString(), '401');
  const wrong = await curl('-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', '-H', 'authorization: Bearer nottherighttoken', '-H', 'content-type: application/json', '-d', '{"next_boot":"kamethod"}', `${base}/api/nodes/${mac}`);
  assert.equal(wrong.stdout.toString(), '401');
  const bad = await curl('-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', '-H', `authorization: Bearer ${kb.token()}`, '-H', 'content-type: application/json', '-d', '{"next_boot":"windows"}', `${base}/api/nodes/${mac}`);
  assert.equal(bad.stdout.toString(), '400');
  const ok = await curl('-X', 'PUT', '-H', `authorization: Bearer ${kb.token()}`, '-H', 'content-type: application/json', '-d', '{"next_boot":"kamethod"}', `${base}/api/nodes/${mac}`);
  assert.equal(JSON.parse(ok.stdout.toString()).next_boot, 'kamethod');
  const script = await curl(`${base}/ipxe/52-54-00-aa-bb-01.ipxe`);
  assert.match(script.stdout.toString(), /^kernel http:\/\/10\.81\.0\.1:8080\/vmlinuz initrd=all\.rdz/m);
  const nodes = JSON.parse((await curl(`${base}/api/nodes`)).stdout.toString());
  assert.equal(nodes.nodes[0].mac, mac);
  const health = JSON.parse((await curl(`${base}/api/health`)).stdout.toString());
  assert.equal(health.status, 'ok');
});

test('malformed API bodies get a clear 4xx and change nothing', async () => {
  const mac = '52:54:00:aa:bb:02';
  for (const body of ['{', '[]', '{"next_boot":1}', '{"extra":true}', 'x'.repeat(100_000)]) {
    const r = await curl('-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', '-H', `authorization: Bearer ${kb.token()}`, '-H', 'content-type: application/json', '--data-binary', body, `${base}/api/nodes/${mac}`);
    assert.match(r.stdout.toString(), /^4\d\d$/, body.slice(0, 20));
  }
  const get = await curl('-o', '/dev/null', '-w', '%{http_code}', `${base}/api/nodes/${mac}`);
  assert.equal(get.stdout.toString(), '404');
});

test('one log line per finished transfer with bytes and rate', async () => {
  await curl('-o', '/dev/null', `${base}/vmlinuz`);
  await new Promise((r) => setTimeout(r, 200));
  const line = kb.logs().find((l) => l.msg === 'http transfer' && l.url === '/vmlinuz' && l.status === 200);
  assert.ok(line);
  assert.equal(line.bytes, big.length);
  assert.equal(typeof line.seconds, 'number');
});
