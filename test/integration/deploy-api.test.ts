// A deployment end to end on the appliance side, with real peers in namespaces: a real
// `kaboot serve`, an image captured by `kaboot image capture`, a stand-in stage2.sqfs
// (mksquashfs), the CLI creating the deployment, curl fetching pxelinux.cfg over TFTP and
// the plan over HTTP, two `kaboot ka-client` processes per session receiving byte-exact
// streams, status reports flipping one node to local boot, `kaboot logs` and `kaboot exec`
// through a command poller driven here with curl.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, writeFile, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { NetLab, type Host } from '../helpers/netns.js';
import { startKaboot, makeKabootDir, kabootBin, type KabootProcess } from '../helpers/kaboot-process.js';
import { parsePlan, type DeployPlan } from '../../src/deploy/plan.js';
import type { Deployment } from '../../src/deploy/deployment.js';
import { tempDirRemovedOnPass } from '../helpers/temp-dir.js';

const SRV = '10.87.0.1';
const BASE = `http://${SRV}:8080`;
const MAC1 = '52:54:00:87:00:11';
const MAC2 = '52:54:00:87:00:12';
const MAC3 = '52:54:00:87:00:13';

let lab: NetLab;
let srv: Host;
let n1: Host;
let n2: Host;
let kb: KabootProcess;
let work: string;
let deployment: Deployment;

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

before(async () => {
  work = tempDirRemovedOnPass('deploy');
  lab = await NetLab.create('dep');
  srv = await lab.host('srv', { cidr: `${SRV}/24` });
  n1 = await lab.host('n1', { cidr: '10.87.0.11/24', mac: MAC1 });
  n2 = await lab.host('n2', { cidr: '10.87.0.12/24', mac: MAC2 });

  const config = { dhcp: { mode: 'off' }, tftp: { enabled: true, port: 69 }, http: { port: 8080 } };
  const dir = join(work, 'kaboot');
  await mkdir(dir);
  const paths = makeKabootDir(config, dir);

  // a small golden and its image, captured by the CLI
  const golden = join(work, 'golden');
  await mkdir(join(golden, 'etc'), { recursive: true });
  await mkdir(join(golden, 'var/cache/apt'), { recursive: true });
  await writeFile(join(golden, 'etc/fstab'), 'UUID=1111 / ext4 errors=remount-ro 0 1\n');
  await writeFile(join(golden, 'etc/hostname'), 'golden\n');
  await writeFile(join(golden, 'var/cache/apt/big.bin'), Buffer.alloc(300_000, 7));
  await writeFile(join(work, 'desc'), 'linux 300 ext4 /\nswap 64\n');
  await execa('node', [kabootBin, 'image', 'capture', 'tiny', '--from', golden, '--desc', join(work, 'desc'), '--bootloader', 'grub-pc', '--config', paths.configFile]);

  // a stand-in stage2 (the real one is `kaboot stage2 build`'s)
  const s2 = join(work, 'stage2-root');
  await mkdir(join(s2, 'bin'), { recursive: true });
  await writeFile(join(s2, 'bin/marker'), 'stage2 stand-in\n'.repeat(5000));
  await execa('mksquashfs', [s2, join(paths.imagesDir, 'stage2.sqfs'), '-noappend', '-quiet', '-comp', 'zstd']);

  kb = await startKaboot(lab, srv.ns, config, { dir });
});

after(async () => {
  await kb?.stop();
  await lab?.destroy();
});

async function kaboot(ns: string, args: string[], opts: { reject?: boolean } = {}) {
  return lab.exec(ns, ['node', kabootBin, ...args], { reject: opts.reject ?? false });
}

async function curl(ns: string, args: string[]): Promise<{ code: number; status: number; body: string }> {
  const r = await lab.exec(ns, ['curl', '-sS', '-w', '\n%{http_code}', ...args], { reject: false });
  const out = String(r.stdout);
  const i = out.lastIndexOf('\n');
  return { code: r.exitCode ?? -1, status: Number(out.slice(i + 1)), body: out.slice(0, i) };
}

async function tftpGet(ns: string, path: string): Promise<string> {
  const r = await lab.exec(ns, ['curl', '-sS', `tftp://${SRV}/${path}`], { reject: false });
  assert.equal(r.exitCode, 0, `tftp ${path}: ${r.stderr}`);
  return String(r.stdout);
}

const tokenOf = (cfg: string) => /kaboot\.token=(\S+)/.exec(cfg)?.[1];

test('bad requests get clear errors; no stage2, no deployment', async () => {
  const stage2 = join(kb.imagesDir, 'stage2.sqfs');
  await rename(stage2, stage2 + '.away');
  const noStage2 = await kaboot(srv.ns, ['deploy', 'tiny', '--mac', MAC1, '--server', BASE, '--config', kb.configFile]);
  await rename(stage2 + '.away', stage2);
  assert.equal(noStage2.exitCode, 1);
  assert.match(String(noStage2.stderr), /409 no stage2 at .*kaboot stage2 build/);
  const r = await kaboot(srv.ns, ['deploy', 'tiny', '--mac', MAC1, '-n', '2', '--server', BASE, '--config', kb.configFile]);
  assert.equal(r.exitCode, 1);
  assert.match(String(r.stderr), /either by MAC .* or by number/);
  const noImage = await kaboot(srv.ns, ['deploy', 'nope', '--mac', MAC1, '--server', BASE, '--config', kb.configFile]);
  assert.match(String(noImage.stderr), /no image nope/);
  const badX = await kaboot(srv.ns, ['deploy', 'tiny', '--mac', MAC1, '-x', '/', '--server', BASE, '--config', kb.configFile]);
  assert.match(String(badX.stderr), /-x \//);
});

test('kaboot deploy creates a deployment of two MACs; their pxelinux.cfg carries the deployment token, not the API token', async () => {
  const r = await kaboot(srv.ns, ['deploy', 'tiny', '--mac', MAC1, '--mac', MAC2, '-x', '/var/cache', '--hostname-pattern', 'node{n}', '--session-wait', '30', '--server', BASE, '--config', kb.configFile, '--json']);
  assert.equal(r.exitCode, 0, String(r.stderr));
  deployment = JSON.parse(String(r.stdout)) as Deployment;
  assert.match(deployment.id, /^d-\d{14}-[0-9a-f]{4}$/);
  assert.equal(deployment.state, 'waiting');
  assert.deepEqual(deployment.sessions.map((s) => s.name), ['getstage2', 'kainstall1']);
  assert.equal((deployment as Partial<Deployment>).token, undefined, 'the API never shows the deployment token');

  for (const [host, mac] of [[n1, MAC1], [n2, MAC2]] as const) {
    const cfg = await tftpGet(host.ns, `pxelinux.cfg/01-${mac.replace(/:/g, '-')}`);
    assert.match(cfg, /^DEFAULT kamethod/m);
    assert.match(cfg, new RegExp(`kaboot\\.deployment=${deployment.id}`));
    const t = tokenOf(cfg);
    assert.ok(t && t.length >= 32, cfg);
    assert.ok(!cfg.includes(kb.token()), 'the API token is never on a kernel line');
    const ipxe = await curl(host.ns, [`${BASE}/ipxe/${mac.replace(/:/g, '-')}.ipxe`]);
    assert.match(ipxe.body, new RegExp(`kaboot\\.token=${t}`));
  }
});

let plan1: DeployPlan;
let plan2: DeployPlan;
let token: string;

test('the plan: the deployment token opens it; a wrong token or another deployment\'s gets 401', async () => {
  token = tokenOf(await tftpGet(n1.ns, `pxelinux.cfg/01-${MAC1.replace(/:/g, '-')}`))!;
  const p1 = await curl(n1.ns, ['-H', `authorization: Bearer ${token}`, `${BASE}/api/nodes/${MAC1}/plan?firmware=bios`]);
  assert.equal(p1.status, 200, p1.body);
  plan1 = parsePlan(JSON.parse(p1.body));
  assert.equal(plan1.deployment, deployment.id);
  assert.equal(plan1.hostname, 'node1');
  assert.equal(plan1.disks[0]!.device, 'first');
  assert.deepEqual(plan1.disks[0]!.filesystems.map((f) => [f.partition, f.fstype, f.mount ?? null, !!f.session]), [[1, 'ext4', '/', true], [2, 'swap', null, false]]);
  assert.deepEqual(plan1.disks[0]!.filesystems[0]!.exclude, ['var/cache']);
  assert.equal(plan1.bootloader.kind, 'grub');

  const p2 = await curl(n2.ns, ['-H', `authorization: Bearer ${token}`, `${BASE}/api/nodes/${MAC2}/plan?firmware=uefi`]);
  assert.equal(p2.status, 200, p2.body);
  plan2 = parsePlan(JSON.parse(p2.body));
  assert.match(plan2.disks[0]!.desc, /^label gpt\nesp 512/);
  assert.deepEqual(plan2.disks[0]!.filesystems.map((f) => [f.partition, f.mount ?? null]), [[1, '/boot/efi'], [2, '/'], [3, null]]);

  const wrong = await curl(n1.ns, ['-H', 'authorization: Bearer not-the-token-at-all-xxxxxxxxxxxx', `${BASE}/api/nodes/${MAC1}/plan?firmware=bios`]);
  assert.equal(wrong.status, 401);
  const badFw = await curl(n1.ns, ['-H', `authorization: Bearer ${token}`, `${BASE}/api/nodes/${MAC1}/plan?firmware=arm`]);
  assert.equal(badFw.status, 400);

  // a second deployment's token opens its own node, not the first deployment's
  const other = await kaboot(srv.ns, ['deploy', 'tiny', '--mac', MAC3, '--server', BASE, '--config', kb.configFile, '--json']);
  assert.equal(other.exitCode, 0, String(other.stderr));
  const otherToken = tokenOf(await tftpGet(n1.ns, `pxelinux.cfg/01-${MAC3.replace(/:/g, '-')}`))!;
  assert.notEqual(otherToken, token);
  const cross = await curl(n1.ns, ['-H', `authorization: Bearer ${otherToken}`, `${BASE}/api/nodes/${MAC1}/plan?firmware=bios`]);
  assert.equal(cross.status, 401);
  const own = await curl(n1.ns, ['-H', `authorization: Bearer ${otherToken}`, `${BASE}/api/nodes/${MAC3}/plan?firmware=bios`]);
  assert.equal(own.status, 200, own.body);
  const cancel = await kaboot(srv.ns, ['deploy', 'cancel', (JSON.parse(String(other.stdout)) as Deployment).id, '--server', BASE, '--config', kb.configFile]);
  assert.equal(cancel.exitCode, 0, String(cancel.stderr));
  assert.match(String(cancel.stdout), /cancelled/);
});

test('two ka-client processes receive getstage2 and kainstall1 byte-exact', async () => {
  const stage2 = await readFile(join(kb.imagesDir, 'stage2.sqfs'));
  assert.equal(plan1.stage2.sha256, sha(stage2));
  const fs = plan1.disks[0]!.filesystems[0]!.session!;
  for (const s of [plan1.stage2, fs]) {
    const runs = ([[n1, MAC1], [n2, MAC2]] as const).map(([host, mac]) =>
      kaboot(host.ns, ['ka-client', '-s', s.name, '-c', `${SRV}:${s.port}`, '--secret', s.secret, '--name', mac, '--data-port', '0', '-e', `cat > ${join(work, `${mac.replace(/:/g, '')}-${s.name}`)}`]));
    const results = await Promise.all(runs);
    for (const r of results) assert.equal(r.exitCode, 0, `${s.name}: ${r.stderr}`);
    for (const mac of [MAC1, MAC2]) {
      const got = await readFile(join(work, `${mac.replace(/:/g, '')}-${s.name}`));
      assert.equal(got.length, s.bytes);
      assert.equal(sha(got), s.sha256, `${s.name} on ${mac}`);
    }
  }
});

test('status deployed flips the node to local boot; failed keeps it on kamethod and the deployment names the step', async () => {
  const post = (mac: string, body: object) => curl(n1.ns, ['-X', 'POST', '-H', `authorization: Bearer ${token}`, '-H', 'content-type: application/json', '-d', JSON.stringify(body), `${BASE}/api/nodes/${mac}/status`]);
  const logLine = await curl(n2.ns, ['-X', 'POST', '-H', `authorization: Bearer ${token}`, '-H', 'content-type: application/x-ndjson', '--data-binary', JSON.stringify({ step: 'bootloader', stream: 'stderr', line: 'grub-install: error: no such disk' }) + '\n', `${BASE}/api/nodes/${MAC2}/log`]);
  assert.equal(logLine.status, 200, logLine.body);
  assert.equal((await post(MAC1, { state: 'deployed', step: 'report' })).status, 200);
  assert.equal((await post(MAC2, { state: 'failed', step: 'bootloader', message: 'grub-install failed' })).status, 200);

  const cfg1 = await tftpGet(n1.ns, `pxelinux.cfg/01-${MAC1.replace(/:/g, '-')}`);
  assert.match(cfg1, /^DEFAULT local/m);
  const cfg2 = await tftpGet(n2.ns, `pxelinux.cfg/01-${MAC2.replace(/:/g, '-')}`);
  assert.match(cfg2, /^DEFAULT kamethod/m);
  assert.match((await curl(n1.ns, [`${BASE}/ipxe/${MAC1.replace(/:/g, '-')}.ipxe`])).body, /sanboot/);
  assert.match((await curl(n2.ns, [`${BASE}/ipxe/${MAC2.replace(/:/g, '-')}.ipxe`])).body, /boots kamethod/);

  let d: Deployment | undefined;
  for (let i = 0; i < 50; i++) {
    const r = await kaboot(srv.ns, ['deploy', 'show', deployment.id, '--json', '--server', BASE, '--config', kb.configFile]);
    d = JSON.parse(String(r.stdout)) as Deployment;
    if (d.state !== 'running' && d.state !== 'waiting') break;
    await new Promise((res) => setTimeout(res, 200));
  }
  assert.equal(d!.state, 'failed');
  const node2 = d!.nodes.find((n) => n.mac === MAC2)!;
  assert.equal(node2.state, 'failed');
  assert.equal(node2.step, 'bootloader');
  assert.match(d!.message ?? '', /52:54:00:87:00:12 at bootloader/);
  const node1 = d!.nodes.find((n) => n.mac === MAC1)!;
  assert.equal(node1.state, 'deployed');
  assert.ok((node1.bytes ?? 0) >= plan1.stage2.bytes, 'the session results give the bytes received');
  assert.ok(kb.logs().some((l) => l.msg === 'deployment finished'), 'summary logged');

  const text = await kaboot(srv.ns, ['deploy', 'show', deployment.id, '--server', BASE, '--config', kb.configFile]);
  assert.match(String(text.stdout), /52:54:00:87:00:12\s+failed\s+bootloader/);
});

test('kaboot logs prints the node log', async () => {
  const r = await kaboot(srv.ns, ['logs', MAC2, '--server', BASE, '--config', kb.configFile]);
  assert.equal(r.exitCode, 0, String(r.stderr));
  assert.match(String(r.stdout), /bootloader stderr grub-install: error: no such disk/);
  assert.match(String(r.stdout), /state=failed grub-install failed/);
  const byName = await kaboot(srv.ns, ['logs', 'node2', '--server', BASE, '--config', kb.configFile]);
  assert.equal(byName.exitCode, 0, String(byName.stderr));
  assert.equal(String(byName.stdout), String(r.stdout), 'the host name the deployment gave names the node too');
});

test('kaboot exec round-trips a command through the node\'s poller', async () => {
  const exec = kaboot(srv.ns, ['exec', MAC2, '--server', BASE, '--config', kb.configFile, '--', 'sh', '-c', 'echo hi; exit 3']);
  // the agent's side, by hand: long-poll, log the output, post the exit code
  const polled = await curl(n2.ns, ['-H', `authorization: Bearer ${token}`, `${BASE}/api/nodes/${MAC2}/commands?wait=20`]);
  assert.equal(polled.status, 200, polled.body);
  const cmd = JSON.parse(polled.body) as { id: string; argv: string[] };
  assert.deepEqual(cmd.argv, ['sh', '-c', 'echo hi; exit 3']);
  const line = JSON.stringify({ step: `exec:${cmd.id}`, stream: 'stdout', line: 'hi' }) + '\n';
  assert.equal((await curl(n2.ns, ['-X', 'POST', '-H', `authorization: Bearer ${token}`, '-H', 'content-type: application/x-ndjson', '--data-binary', line, `${BASE}/api/nodes/${MAC2}/log`])).status, 200);
  const res = await curl(n2.ns, ['-X', 'POST', '-H', `authorization: Bearer ${token}`, '-H', 'content-type: application/json', '-d', '{"exit_code":3}', `${BASE}/api/nodes/${MAC2}/commands/${cmd.id}/result`]);
  assert.equal(res.status, 200, res.body);
  const r = await exec;
  assert.equal(r.exitCode, 3, String(r.stderr));
  assert.equal(String(r.stdout), 'hi', 'execa strips the final newline');
  // the command's state needs the API token; the node's token cannot read it
  const state = await curl(srv.ns, ['-H', `authorization: Bearer ${kb.token()}`, `${BASE}/api/nodes/${MAC2}/commands/${cmd.id}`]);
  assert.deepEqual(JSON.parse(state.body), { id: cmd.id, argv: cmd.argv, state: 'done', exit_code: 3 });
  assert.equal((await curl(n2.ns, ['-H', `authorization: Bearer ${token}`, `${BASE}/api/nodes/${MAC2}/commands/${cmd.id}`])).status, 401);
  // an empty poll answers 204
  assert.equal((await curl(n2.ns, ['-H', `authorization: Bearer ${token}`, `${BASE}/api/nodes/${MAC2}/commands?wait=1`])).status, 204);
});

test('Debian loaders come over TFTP too, a symlinked one (ipxe.efi -> /boot/ipxe.efi) included', async () => {
  const { realpathSync, readFileSync } = await import('node:fs');
  const { loaderPath } = await import('../../src/boot/loaders.js');
  for (const name of ['ipxe.efi', 'pxelinux.0', 'ldlinux.c32']) {
    const r = await lab.exec(n1.ns, ['curl', '-sS', '--tftp-blksize', '1468', `tftp://${SRV}/${name}`], { reject: false, encoding: 'buffer' });
    assert.equal(r.exitCode, 0, `tftp ${name}: ${String(r.stderr)}`);
    assert.equal(sha(r.stdout as Uint8Array), sha(readFileSync(realpathSync(loaderPath(name)!))), `${name} byte-exact`);
  }
});
