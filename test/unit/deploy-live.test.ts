// A live golden as a deployment's source: its layout made into the manifest the policy
// reads (and refused when it makes no sense), the plan it gives (live sessions, no counts),
// the request's schema (strict), the command line (--live, -m DRIVE), and the feed that
// turns a real HTTP upload on loopback into a session's stream (trailer digest, a broken
// upload, backpressure).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Value } from '@sinclair/typebox/value';
import { DeploymentRequest, type LiveSource } from '../../src/deploy/deployment.js';
import { liveManifest, liveImageName, ZERO_SHA256 } from '../../src/deploy/live.js';
import { buildPlan, deploymentLayout, PolicyError } from '../../src/deploy/policy.js';
import { parsePlan } from '../../src/deploy/plan.js';
import { LiveFeed, LiveFeedError, SHA256_TRAILER, TAR_SHA256_TRAILER } from '../../src/deploy/live-feed.js';
import { requestFromArgs, splitCopyMbr } from '../../src/cli/deploy.js';

const code = Buffer.alloc(446, 0x33);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const live = (over: Partial<LiveSource> = {}): LiveSource => ({
  host: 'golden',
  paths: ['/=/', '/boot=/boot'],
  filesystems: [{ mount: '/boot', fstype: 'ext2' }, { mount: '/', fstype: 'ext4', label: 'root' }],
  desc: 'linux 200 ext2 /boot\nlinux fill ext4 /\n',
  bootloader: 'grub-pc',
  kernels: ['6.1.0-13-amd64'],
  boot_code: [{ drive: 'sda', source: '/dev/sda', base64: code.toString('base64'), sha256: sha(code) }],
  ...over,
});

test('a live golden\'s layout becomes a manifest: parents first, boot code checked, no counts', () => {
  const m = liveManifest('golden-live', live());
  assert.equal(m.source.kind, 'live');
  assert.deepEqual(m.filesystems.map((f) => [f.mount, f.fstype, f.stream, f.files, f.stream_sha256]), [['/', 'ext4', 'live:/', 0, ZERO_SHA256], ['/boot', 'ext2', 'live:/boot', 0, ZERO_SHA256]]);
  assert.deepEqual(m.boot_code, [{ drive: 'sda', source: '/dev/sda', file: 'mbr/sda.bin', sha256: sha(code) }]);
  assert.throws(() => liveManifest('x', live({ filesystems: [{ mount: '/boot', fstype: 'ext2' }] })), /no root file system/);
  assert.throws(() => liveManifest('x', live({ filesystems: [{ mount: '/', fstype: 'ext4' }, { mount: '/', fstype: 'ext4' }] })), /names mount point \/ twice/);
  assert.throws(() => liveManifest('x', live({ boot_code: [{ drive: 'sda', source: 'x', base64: code.toString('base64'), sha256: ZERO_SHA256 }] })), (e: unknown) => e instanceof PolicyError && /the golden read sha256 0+, the appliance received/.test(e.message));
  assert.throws(() => liveManifest('x', live({ boot_code: [{ drive: 'sda', source: 'x', base64: Buffer.alloc(10).toString('base64'), sha256: sha(Buffer.alloc(10)) }] })), /10 bytes, expected 446/);
  assert.equal(liveImageName('node 1.example'), 'live-node-1.example');
  assert.equal(liveImageName('---'), 'live-golden');
});

test('the plan of a live deployment: sessions marked live, no entry counts, no ACL file; -m from the golden\'s boot code', () => {
  const image = liveManifest('golden-live', live());
  const req: DeploymentRequest = { image: image.name, macs: ['52:54:00:00:00:01'], live: live(), copy_mbr: true };
  const layout = deploymentLayout(image, req);
  const ref = (name: string, port: number) => ({ name, port, secret: 'c'.repeat(64), bytes: 0, sha256: ZERO_SHA256, live: true });
  const { plan } = buildPlan({
    deployment: 'd-20260101000000-abcd', image, request: { ...req, copy_mbr: undefined, mbr: { base64: code.toString('base64') } }, mac: '52:54:00:00:00:01', firmware: 'bios',
    sessions: { stage2: { name: 'getstage2', port: 4000, secret: 'c'.repeat(64), bytes: 10, sha256: 'a'.repeat(64) }, filesystems: new Map(layout.sent.map((i, k) => [i, ref(`kainstall${k + 1}`, 4001 + k)])), raw: new Map(), mbr: { name: 'kambr', port: 4100, secret: 'c'.repeat(64), bytes: 446, sha256: sha(code) } },
  });
  parsePlan(plan);
  const fss = plan.disks[0]!.filesystems;
  assert.deepEqual(fss.map((f) => [f.mount, f.session?.name, f.session?.live, f.files, f.bytes_used, f.acl_url]), [['/boot', 'kainstall2', true, undefined, undefined, undefined], ['/', 'kainstall1', true, undefined, undefined, undefined]]);
  assert.equal(plan.disks[0]!.mbr?.name, 'kambr');
});

test('the request is strict: unknown fields and bad values are refused, each named by its path', () => {
  const ok: DeploymentRequest = { image: 'live-golden', count: 2, live: live() };
  assert.equal(Value.Check(DeploymentRequest, ok), true);
  const first = (v: unknown) => [...Value.Errors(DeploymentRequest, v)][0]?.path;
  assert.equal(first({ ...ok, live: { ...live(), bogus: 1 } }), '/live/bogus');
  assert.equal(first({ ...ok, live: live({ filesystems: [{ mount: 'relative', fstype: 'ext4' }] }) }), '/live/filesystems/0/mount');
  assert.equal(first({ ...ok, live: live({ filesystems: [] }) }), '/live/filesystems');
  assert.equal(first({ ...ok, live: { ...live(), bootloader: 'lilo' } }), '/live/bootloader');
  assert.equal(first({ ...ok, copy_mbr: 'Bad/Drive' }), '/copy_mbr');
});

test('the command line: --live takes no IMAGE; -m DRIVE is read as ka-d.sh wrote it', () => {
  assert.deepEqual(splitCopyMbr(['gold', '-m', 'sda', '-n', '2']), ['gold', '--copy-mbr=sda', '-n', '2']);
  assert.deepEqual(splitCopyMbr(['-m', 'sda', 'gold']), ['--copy-mbr=sda', 'gold']);
  assert.deepEqual(splitCopyMbr(['-m', 'gold']), ['-m', 'gold'], 'the only word is the image');
  assert.deepEqual(splitCopyMbr(['gold', '-m', '-n', '2']), ['gold', '-m', '-n', '2']);
  assert.deepEqual(splitCopyMbr(['-n', '2', '-m', 'sda'], true), ['-n', '2', '--copy-mbr=sda'], '--live has no image');
  assert.equal(requestFromArgs(['gold', '-m', 'sda', '-n', '2']).request.copy_mbr, 'sda');
  assert.equal(requestFromArgs(['gold', '-m', '-n', '2']).request.copy_mbr, true);
  const l = requestFromArgs(['--live', '--name', 'g1', '--mac', '52:54:00:00:00:01', '--from', '/mnt/g', '--desc', '/tmp/desc', '-m', '--server', 'http://x', '--token', 't']);
  assert.equal(l.request.image, 'g1');
  assert.equal(l.request.copy_mbr, true);
  assert.deepEqual(l.live?.from, ['/mnt/g']);
  assert.equal(l.live?.disk.desc, '/tmp/desc');
  assert.match(requestFromArgs(['--live', '-n', '1', '--token', 't']).request.image, /^live-/);
  assert.deepEqual(requestFromArgs(['--live', '-n', '1', '--token', 't']).live?.from, ['/']);
  assert.throws(() => requestFromArgs(['--live', 'gold', '-n', '1']), /no IMAGE/);
  assert.throws(() => requestFromArgs(['gold', '-n', '1', '--from', '/']), /--from is for --live/);
});

/** A real upload on loopback; the server hands the request to the feed. */
async function upload(feed: LiveFeed, chunks: Buffer[], opts: { trailer?: string | null; cut?: boolean; tarTrailer?: string; copy?: () => import('node:stream').Writable } = {}): Promise<{ result: Promise<unknown>; read: Promise<Buffer> }> {
  let resolveReq!: (r: IncomingMessage) => void;
  const got = new Promise<IncomingMessage>((r) => (resolveReq = r));
  const server = createServer((req, res) => {
    resolveReq(req);
    feed.feed(req, opts.copy?.()).then(() => res.end('ok'), () => res.end('no'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const all = Buffer.concat(chunks);
  const read = (async () => {
    const parts: Buffer[] = [];
    try {
      for await (const c of feed.stream) parts.push(c as Buffer);
    } catch { /* a failed feed */ }
    return Buffer.concat(parts);
  })();
  const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers: { 'content-type': 'application/zstd', ...(opts.trailer !== null ? { trailer: `${SHA256_TRAILER}, ${TAR_SHA256_TRAILER}` } : {}) } });
  req.on('error', () => undefined);
  for (const c of chunks) req.write(c);
  if (opts.cut) {
    await got;
    await new Promise((r) => setTimeout(r, 100));
    req.destroy();
  } else {
    if (opts.trailer !== null) req.addTrailers({ [SHA256_TRAILER]: opts.trailer ?? sha(all), ...(opts.tarTrailer ? { [TAR_SHA256_TRAILER]: opts.tarTrailer } : {}) });
    req.end();
  }
  const result = got.then(() => new Promise((resolve) => {
    const check = () => (feed.state === 'done' || feed.state === 'failed' ? resolve(feed.state) : setTimeout(check, 10));
    check();
  })).finally(() => server.close());
  return { result, read };
}

test('a feed passes an upload to the session stream and checks its trailer digest', async () => {
  const data = [Buffer.alloc(300_000, 1), Buffer.from('end')];
  const ok = new LiveFeed('kainstall1', '/');
  ok.want();
  assert.equal(ok.state, 'wanted');
  const a = await upload(ok, data);
  assert.equal(await a.result, 'done');
  assert.deepEqual(await a.read, Buffer.concat(data));
  assert.deepEqual(ok.status(), { session: 'kainstall1', mount: '/', state: 'done', bytes: 300_003, sha256: sha(Buffer.concat(data)) });
  await assert.rejects(ok.feed({} as IncomingMessage), (e: unknown) => e instanceof LiveFeedError && /has had its stream/.test(e.message));

  const wrong = new LiveFeed('kainstall2', '/boot');
  const b = await upload(wrong, data, { trailer: ZERO_SHA256 });
  assert.equal(await b.result, 'failed');
  assert.match(wrong.error!, /the golden sent \/boot with sha256 0+, the appliance received 300003 bytes with sha256/);

  const none = new LiveFeed('kainstall3', '/home');
  const c = await upload(none, data, { trailer: null });
  assert.equal(await c.result, 'failed');
  assert.match(none.error!, /without its x-kaboot-sha256 trailer/);
});

test('an upload cut off mid-stream fails the feed with a message, and the stream with it', async () => {
  const feed = new LiveFeed('kainstall1', '/');
  const seen: string[] = [];
  feed.onFailed((m) => seen.push(m));
  const u = await upload(feed, [Buffer.alloc(100_000, 2)], { cut: true });
  assert.equal(await u.result, 'failed');
  assert.match(feed.error!, /the golden's upload of \/ broke off after \d+ bytes .*the golden stopped or its link went down/);
  assert.deepEqual(seen, [feed.error]);
  assert.equal(feed.stream.destroyed, true);
});

test('abort: a feed the session no longer wants fails without an upload', () => {
  const feed = new LiveFeed('kainstall1', '/');
  feed.abort('session kainstall1 ended');
  assert.equal(feed.state, 'failed');
  assert.equal(feed.error, 'session kainstall1 ended');
  feed.abort('again');
  assert.equal(feed.error, 'session kainstall1 ended');
});

test('--keep: the upload is copied as it passes, and the golden\'s tar digest is kept', async () => {
  const { mkdtemp, readFile, rm } = await import('node:fs/promises');
  const { createWriteStream } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'kaboot-feed-'));
  try {
    const data = [Buffer.alloc(2_000_000, 5), Buffer.from('tail')];
    const feed = new LiveFeed('kainstall1', '/');
    const u = await upload(feed, data, { tarTrailer: 'b'.repeat(64), copy: () => createWriteStream(join(dir, 'copy')) });
    assert.equal(await u.result, 'done');
    assert.deepEqual(await u.read, Buffer.concat(data));
    assert.deepEqual(await readFile(join(dir, 'copy')), Buffer.concat(data));
    assert.equal(feed.tarSha256, 'b'.repeat(64));
    assert.equal(feed.copyError, undefined);
    // a copy that cannot be written is given up; the session's stream goes on
    const lost = new LiveFeed('kainstall2', '/boot');
    const v = await upload(lost, data, { copy: () => createWriteStream(join(dir, 'no/such/dir/copy')) });
    assert.equal(await v.result, 'done');
    assert.deepEqual(await v.read, Buffer.concat(data));
    assert.match(lost.copyError ?? '', /ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
