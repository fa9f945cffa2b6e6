// kaboot deploy --live with real peers, no VMs: `kaboot serve` in one namespace, the golden
// (`kaboot deploy --live --from DIR`) in another, two receivers in two more. The receivers
// do what the agent does for the sessions: fetch their plan with the deployment's token
// (from their pxelinux.cfg over TFTP), join getstage2 and each kainstall session with
// `kaboot ka-client` and the agent's own consumer script (zstd -dc | tar -x with xattrs,
// ACLs, numeric owners), and report deployed. Their trees must equal the golden's (xattrs,
// an ACL, a hard link, a symlink, a sparse file, owners and modes), the deployment must end
// done and the nodes flip to local boot. Then a golden killed mid-stream: the deployment
// fails with a message that says so, and serve still answers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, rm, link, symlink, chmod, chown, open as openFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { NetLab, type Host } from '../helpers/netns.js';
import { startKaboot, makeKabootDir, kabootBin, type KabootProcess } from '../helpers/kaboot-process.js';
import { buildManifest, compareManifests, formatDifferences } from '../helpers/fs-manifest.js';
import { receiveScript } from '../../src/agent/deploy/receive.js';
import type { Deployment } from '../../src/deploy/deployment.js';
import type { DeployPlan } from '../../src/deploy/plan.js';
import type { LiveStatus } from '../../src/deploy/manager.js';
import { tempDirRemovedOnPass } from '../helpers/temp-dir.js';

const SRV = '10.90.0.1';
const BASE = `http://${SRV}:8080`;
const A = '52:54:00:90:00:0a';
const B = '52:54:00:90:00:0b';
const C = '52:54:00:90:00:0c';
const D = '52:54:00:90:00:0d';
const dash = (mac: string) => mac.replace(/:/g, '-');

let lab: NetLab;
let srv: Host;
let gold: Host;
let n1: Host;
let n2: Host;
let kb: KabootProcess;
let work: string;
let tokenFile: string;
const config = { dhcp: { mode: 'off' }, tftp: { enabled: true, port: 69 }, http: { port: 8080 }, boot: { default: 'local' } };

async function goldenTree(root: string): Promise<void> {
  await mkdir(join(root, 'etc'), { recursive: true });
  await mkdir(join(root, 'srv/data'), { recursive: true });
  await mkdir(join(root, 'var/cache'), { recursive: true });
  await writeFile(join(root, 'etc/hostname'), 'golden\n');
  await writeFile(join(root, 'etc/fstab'), 'UUID=1111 / ext4 defaults 0 1\n');
  await writeFile(join(root, 'srv/data/owned'), 'owned by 1234:5678\n');
  await chown(join(root, 'srv/data/owned'), 1234, 5678);
  await chmod(join(root, 'srv/data/owned'), 0o640);
  await writeFile(join(root, 'srv/data/setuid'), '#!/bin/sh\n');
  await chmod(join(root, 'srv/data/setuid'), 0o4755);
  await writeFile(join(root, 'srv/data/tagged'), 'with xattrs\n');
  await execa('setfattr', ['-n', 'user.kaboot', '-v', 'live', join(root, 'srv/data/tagged')]);
  await execa('setfattr', ['-n', 'trusted.kaboot', '-v', '0x00ff10', join(root, 'srv/data/tagged')]);
  await writeFile(join(root, 'srv/data/acl'), 'with an ACL\n');
  await execa('setfacl', ['-m', 'u:4321:rw-,g:8765:r--', join(root, 'srv/data/acl')]);
  await execa('setfacl', ['-d', '-m', 'u:4321:rwx', join(root, 'srv/data')]);
  await writeFile(join(root, 'srv/data/linked'), 'two names\n');
  await link(join(root, 'srv/data/linked'), join(root, 'srv/hardlink'));
  await symlink('../srv/data/tagged', join(root, 'etc/symlink'));
  // sparse: 8 MiB with two small islands of data
  const sparse = await openFile(join(root, 'var/cache/sparse.img'), 'w');
  await sparse.write(Buffer.from('start'), 0, 5, 0);
  await sparse.write(Buffer.from('middle'), 0, 6, 4 * 1024 * 1024);
  await sparse.truncate(8 * 1024 * 1024);
  await sparse.close();
  await writeFile(join(root, 'var/cache/big.bin'), Buffer.alloc(2_000_000, 0x61));
}

before(async () => {
  work = tempDirRemovedOnPass('deploy-live');
  const dir = join(work, 'kaboot');
  await mkdir(dir);
  makeKabootDir(config, dir);
  const s2 = join(work, 's2');
  await mkdir(join(s2, 'bin'), { recursive: true });
  await writeFile(join(s2, 'bin/marker'), 'stage2 stand-in\n'.repeat(1000));
  await execa('mksquashfs', [s2, join(dir, 'images', 'stage2.sqfs'), '-noappend', '-quiet']);
  await goldenTree(join(work, 'golden'));
  await writeFile(join(work, 'desc'), 'linux fill ext4 /\n');

  lab = await NetLab.create('depl');
  srv = await lab.host('srv', { cidr: `${SRV}/24` });
  gold = await lab.host('gold', { cidr: '10.90.0.2/24' });
  n1 = await lab.host('n1', { cidr: '10.90.0.11/24', mac: A });
  n2 = await lab.host('n2', { cidr: '10.90.0.12/24', mac: B });
  kb = await startKaboot(lab, srv.ns, config, { dir });
  tokenFile = join(work, 'api-token');
  await writeFile(tokenFile, kb.token() + '\n', { mode: 0o600 });
});

after(async () => {
  await kb?.stop().catch(() => undefined);
  await lab?.destroy();
  if (work) await rm(work, { recursive: true, force: true });
});

const api = async <T>(path: string): Promise<T> => {
  const r = await lab.exec(srv.ns, ['curl', '-sS', '-f', '-H', `authorization: Bearer ${kb.token()}`, `${BASE}${path}`], { reject: false });
  assert.equal(r.exitCode, 0, `GET ${path}: ${String(r.stderr)}`);
  return JSON.parse(String(r.stdout)) as T;
};

/** The deployment that holds this MAC, once the golden made it. */
async function deploymentOf(mac: string, golden: ResultPromise): Promise<Deployment> {
  for (let i = 0; i < 300; i++) {
    const d = (await api<{ deployments: Deployment[] }>('/api/deployments')).deployments.find((x) => x.nodes.some((n) => n.mac === mac));
    if (d) return d;
    if (golden.exitCode !== null) assert.fail(`the golden exited (${golden.exitCode}) before its deployment appeared: ${String((await golden).stderr)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no deployment holds ${mac}`);
}

async function planFor(node: Host, mac: string): Promise<{ plan: DeployPlan; token: string }> {
  const pxe = String((await lab.exec(node.ns, ['curl', '-sS', `tftp://${SRV}/pxelinux.cfg/01-${dash(mac)}`])).stdout);
  const token = /kaboot\.token=(\S+)/.exec(pxe)?.[1];
  assert.ok(token, `no deployment token in ${mac}'s pxelinux.cfg:\n${pxe}`);
  const r = await lab.exec(node.ns, ['curl', '-sS', '-f', '-H', `authorization: Bearer ${token}`, `${BASE}/api/nodes/${mac}/plan?firmware=bios`], { reject: false });
  assert.equal(r.exitCode, 0, String(r.stderr));
  return { plan: JSON.parse(String(r.stdout)) as DeployPlan, token };
}

async function kaJoin(node: Host, mac: string, ref: { name: string; port: number; secret: string }, consumer: string, extra: string[] = []) {
  return lab.exec(node.ns, ['node', kabootBin, 'ka-client', '-s', ref.name, '-c', `${SRV}:${ref.port}`, '--secret', ref.secret, '--name', mac, '--data-port', '0', ...extra, '-e', consumer], { reject: false });
}

/** What the agent does with a plan's sessions, into dest; then the status report. */
async function receiver(node: Host, mac: string, dest: string): Promise<void> {
  const { plan, token } = await planFor(node, mac);
  assert.equal(plan.image, 'golden-live');
  const s2 = await kaJoin(node, mac, plan.stage2, 'cat > /dev/null');
  assert.equal(s2.exitCode, 0, `${mac} getstage2: ${String(s2.stderr)}`);
  await mkdir(dest, { recursive: true });
  for (const fs of plan.disks[0]!.filesystems) {
    if (!fs.session) continue;
    assert.equal(fs.session.live, true, 'a live session says so');
    assert.equal(fs.files, undefined, 'no entry count before the stream');
    const dir = !fs.mount || fs.mount === '/' ? dest : join(dest, fs.mount);
    const r = await kaJoin(node, mac, fs.session, receiveScript(dir, fs.exclude, join(work, `${dash(mac)}-${fs.session.name}.rc`)));
    assert.equal(r.exitCode, 0, `${mac} ${fs.session.name}: ${String(r.stderr).slice(-3000)}`);
    const res = JSON.parse(String(r.stdout).trim().split('\n').pop()!) as { digestOk: boolean; digest: string; bytes: number };
    assert.equal(res.digestOk, true, 'the KA digest holds end to end');
  }
  const st = await lab.exec(node.ns, ['curl', '-sS', '-f', '-X', 'POST', '-H', `authorization: Bearer ${token}`, '-H', 'content-type: application/json', '-d', '{"state":"deployed","step":"report"}', `${BASE}/api/nodes/${mac}/status`], { reject: false });
  assert.equal(st.exitCode, 0, String(st.stderr));
}

test('a live golden streams its tree to two receivers through the KA sessions: the same files, done, flipped to local', async () => {
  const golden = lab.spawn(gold.ns, ['node', kabootBin, 'deploy', '--live', '--name', 'golden-live', '--from', join(work, 'golden'), '--desc', join(work, 'desc'), '--mac', A, '--mac', B, '-x', '/srv/data', '--server', BASE, '--token-file', tokenFile]);
  const d = await deploymentOf(A, golden);
  assert.equal(d.image, 'golden-live');
  assert.equal(d.request.live?.filesystems[0]?.mount, '/');
  assert.deepEqual(d.sessions.map((s) => [s.name, s.source]), [['getstage2', join(kb.imagesDir, 'stage2.sqfs')], ['kainstall1', 'live:/']]);
  const dests = [join(work, 'n1-root'), join(work, 'n2-root')];
  await Promise.all([receiver(n1, A, dests[0]!), receiver(n2, B, dests[1]!)]);
  const g = await golden;
  assert.equal(g.exitCode, 0, `golden: ${String(g.stderr)}`);
  assert.match(String(g.stderr), /kainstall1 started: streaming \//);
  assert.match(String(g.stderr), /every file system went out/);

  // -x /srv/data: the golden's tar leaves its contents out, the directory itself comes
  const want = await buildManifest(join(work, 'golden'));
  for (const dest of dests) {
    const got = await buildManifest(dest);
    const diffs = compareManifests(want, got, { ignore: ['/srv/data/*'] });
    // the hard link's other name is below /srv/data, left out: one link fewer
    const rest = diffs.filter((x) => !(x.path === '/srv/hardlink' && x.field === 'nlink'));
    assert.deepEqual(rest, [], formatDifferences(rest));
    assert.deepEqual([...got.keys()].filter((p) => p.startsWith('/srv/data/')), []);
    assert.equal(got.get('/var/cache/sparse.img')?.sparse, true);
    assert.equal(got.get('/etc/symlink')?.target, '../srv/data/tagged');
    assert.ok(got.get('/srv/data')?.xattrs['system.posix_acl_default'], 'the default ACL of /srv/data came');
  }

  let end = await api<Deployment>(`/api/deployments/${d.id}`);
  for (let i = 0; i < 50 && end.state === 'running'; i++) {
    await new Promise((r) => setTimeout(r, 200));
    end = await api<Deployment>(`/api/deployments/${d.id}`);
  }
  assert.equal(end.state, 'done', end.message);
  assert.deepEqual(end.nodes.map((n) => n.state), ['deployed', 'deployed']);
  const live = end.sessions.find((s) => s.name === 'kainstall1')!;
  assert.equal(live.ok, true);
  assert.ok(live.bytes > 0 && live.sha256 !== '0'.repeat(64), 'the live session records what it sent');
  const nodes = (await api<{ nodes: { mac: string; next_boot: string }[] }>('/api/nodes')).nodes;
  for (const mac of [A, B]) assert.equal(nodes.find((n) => n.mac === mac)?.next_boot, 'local');
  const pxe = String((await lab.exec(n1.ns, ['curl', '-sS', `tftp://${SRV}/pxelinux.cfg/01-${dash(A)}`], { reject: false })).stdout);
  assert.doesNotMatch(pxe, /kaboot\.token/, 'a deployed node boots locally');
});

test('the full tree with everything in it: the same without -x; --keep stores what went as an image', async () => {
  const golden = lab.spawn(gold.ns, ['node', kabootBin, 'deploy', '--live', '--name', 'golden-live', '--keep', 'golden-kept', '--from', join(work, 'golden'), '--desc', join(work, 'desc'), '--mac', C, '--server', BASE, '--token-file', tokenFile]);
  await deploymentOf(C, golden);
  const dest = join(work, 'n3-root');
  // n1's namespace stands in for the node with MAC C: the plan and token go by MAC
  await receiver(n1, C, dest);
  const g = await golden;
  assert.equal(g.exitCode, 0, String(g.stderr));
  const diffs = compareManifests(await buildManifest(join(work, 'golden')), await buildManifest(dest));
  assert.deepEqual(diffs, [], formatDifferences(diffs));
  assert.match(String(g.stderr), /image golden-kept stored/);
  const kept = await api<import('../../src/images/manifest.js').ImageManifest>('/api/images/golden-kept');
  assert.equal(kept.source.kind, 'live');
  assert.equal(kept.desc, 'linux fill ext4 /\n');
  assert.deepEqual(kept.filesystems.map((f) => f.mount), ['/']);
  assert.ok(kept.filesystems[0]!.files > 10 && kept.filesystems[0]!.acl_entries > 0, JSON.stringify(kept.filesystems[0]));
  // the stored stream is the one the nodes got: the same bytes as the live session's
  const d = (await api<{ deployments: Deployment[] }>('/api/deployments')).deployments.find((x) => x.nodes.some((n) => n.mac === C))!;
  assert.equal(d.keep?.state, 'stored');
  const session = d.sessions.find((x) => x.name === 'kainstall1')!;
  assert.equal(kept.filesystems[0]!.stream_sha256, session.sha256);
  assert.equal(kept.filesystems[0]!.stream_bytes, session.bytes);
});

test('a node that joins a live session late is served from the appliance\'s spool, not the golden', async () => {
  const F = '52:54:00:90:00:0f';
  const G = '52:54:00:90:00:1f';
  const golden = lab.spawn(gold.ns, ['node', kabootBin, 'deploy', '--live', '--name', 'golden-live', '--from', join(work, 'golden'), '--desc', join(work, 'desc'), '--mac', F, '--mac', G, '--session-wait', '1', '--server', BASE, '--token-file', tokenFile]);
  const d = await deploymentOf(F, golden);
  const [pf, pg] = await Promise.all([planFor(n1, F), planFor(n2, G)]);
  const s2 = await Promise.all([kaJoin(n1, F, pf.plan.stage2, 'cat > /dev/null'), kaJoin(n2, G, pg.plan.stage2, 'cat > /dev/null')]);
  for (const r of s2) assert.equal(r.exitCode, 0, String(r.stderr));
  const ref = (p: DeployPlan) => p.disks[0]!.filesystems.find((f) => f.session)!.session!;
  // F's consumer waits for a flag: the session starts with F alone (after --session-wait), the
  // golden's stream goes into the spool and the golden leaves; then G joins late
  const flag = join(work, 'late-flag');
  const destF = join(work, 'late-f');
  const destG = join(work, 'late-g');
  await mkdir(destF);
  await mkdir(destG);
  const gated = `while [ ! -e ${flag} ]; do sleep 0.1; done; ${receiveScript(destF, [], join(work, 'late-f.rc'))}`;
  const fJoin = kaJoin(n1, F, ref(pf.plan), gated);
  const g = await golden;
  assert.equal(g.exitCode, 0, `the golden is done once its stream is in: ${String(g.stderr)}`);
  const gJoin = kaJoin(n2, G, ref(pg.plan), receiveScript(destG, [], join(work, 'late-g.rc')));
  for (let i = 0; i < 300 && !kb.logs().some((l) => l.deployment === d.id && l.session === 'kainstall1' && l.msg === 'ka: late joiner becomes the tail'); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(kb.logs().some((l) => l.deployment === d.id && l.session === 'kainstall1' && l.msg === 'ka: late joiner becomes the tail'), 'G joined after the start');
  await writeFile(flag, '');
  const [rf, rg] = await Promise.all([fJoin, gJoin]);
  assert.equal(rf.exitCode, 0, String(rf.stderr).slice(-2000));
  assert.equal(rg.exitCode, 0, String(rg.stderr).slice(-2000));
  const want = await buildManifest(join(work, 'golden'));
  for (const dest of [destF, destG]) {
    const diffs = compareManifests(want, await buildManifest(dest));
    assert.deepEqual(diffs, [], formatDifferences(diffs));
  }
});

test('a live request is checked strictly by the API: the bad field is named; a deployment without a live source has no live route', async () => {
  const post = async (body: unknown) => {
    const r = await lab.exec(srv.ns, ['curl', '-sS', '-X', 'POST', '-H', `authorization: Bearer ${kb.token()}`, '-H', 'content-type: application/json', '-d', JSON.stringify(body), '-w', '\n%{http_code}', `${BASE}/api/deployments`], { reject: false });
    const lines = String(r.stdout).trim().split('\n');
    return { status: Number(lines.pop()), body: JSON.parse(lines.join('\n')) as { message: string } };
  };
  const live = { host: 'g', paths: [], filesystems: [{ mount: '/', fstype: 'ext4' }], desc: 'linux fill ext4 /\n', bootloader: 'grub-pc', kernels: [] };
  const extra = await post({ image: 'live-g', macs: ['52:54:00:90:00:ee'], live: { ...live, sneaky: true } });
  assert.equal(extra.status, 400);
  assert.match(extra.body.message, /live.*sneaky|additional properties/);
  const badMount = await post({ image: 'live-g', macs: ['52:54:00:90:00:ee'], live: { ...live, filesystems: [{ mount: 'etc', fstype: 'ext4' }] } });
  assert.equal(badMount.status, 400);
  assert.match(badMount.body.message, /live\/filesystems\/0\/mount/);
  const noRoot = await post({ image: 'live-g', macs: ['52:54:00:90:00:ee'], live: { ...live, filesystems: [{ mount: '/boot', fstype: 'ext4' }] } });
  assert.equal(noRoot.status, 400);
  assert.match(noRoot.body.message, /no root file system/);
  const stored = (await api<{ deployments: Deployment[] }>('/api/deployments')).deployments[0]!;
  const r = await lab.exec(srv.ns, ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', `authorization: Bearer ${kb.token()}`, `${BASE}/api/deployments/${stored.id}/live/kainstall1`, '-X', 'POST', '-H', 'content-type: application/zstd', '--data-binary', 'x'], { reject: false });
  assert.equal(String(r.stdout), '409', 'a finished deployment takes no upload');
});

test('a golden killed mid-stream fails the session and the deployment with a message; serve lives on', async () => {
  const big = join(work, 'golden-big');
  await mkdir(join(big, 'etc'), { recursive: true });
  await writeFile(join(big, 'etc/hostname'), 'big\n');
  await execa('dd', ['if=/dev/urandom', `of=${join(big, 'random.bin')}`, 'bs=1M', 'count=200', 'status=none']);
  const golden = lab.spawn(gold.ns, ['node', kabootBin, 'deploy', '--live', '--name', 'golden-live', '--from', big, '--desc', join(work, 'desc'), '--mac', D, '--server', BASE, '--token-file', tokenFile]);
  const d = await deploymentOf(D, golden);
  const { plan } = await planFor(n2, D);
  const ref = plan.disks[0]!.filesystems.find((f) => f.session)!.session!;
  // a consumer that takes its time: the session, and so the golden's upload, must wait for it
  const joined = kaJoin(n2, D, ref, 'sleep 3; cat > /dev/null', ['--ring', '8M']);
  let st: LiveStatus | undefined;
  for (let i = 0; i < 300; i++) {
    st = await api<LiveStatus>(`/api/deployments/${d.id}/live`);
    if (st.feeds[0]?.state === 'feeding' && st.feeds[0].bytes > 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(st?.feeds[0]?.state, 'feeding', JSON.stringify(st));
  assert.ok(st!.feeds[0]!.bytes < 200 * 1024 * 1024, 'the upload waits for the session (backpressure)');
  process.kill(golden.pid!, 'SIGKILL');
  await golden;
  const j = await joined;
  assert.notEqual(j.exitCode, 0, 'the receiver is told the session failed');
  let end = await api<Deployment>(`/api/deployments/${d.id}`);
  for (let i = 0; i < 100 && end.state === 'running'; i++) {
    await new Promise((r) => setTimeout(r, 200));
    end = await api<Deployment>(`/api/deployments/${d.id}`);
  }
  assert.equal(end.state, 'failed');
  assert.match(end.message ?? '', /the golden's upload of \/ broke off after \d+ bytes/);
  assert.equal(end.nodes[0]!.step, 'kainstall1');
  const after = await api<LiveStatus>(`/api/deployments/${d.id}/live`);
  assert.equal(after.feeds[0]?.state, 'failed');
  const health = await api<{ status: string }>('/api/health');
  assert.equal(health.status, 'ok');
});
