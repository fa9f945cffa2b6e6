// Count mode (kaboot deploy -n N): the next N unknown nodes that PXE boot (their
// pxelinux.cfg over TFTP, or their iPXE script) join the deployment, the N+1th does not.
// A kill -9 of `kaboot serve` mid-deployment: on restart the deployment is failed
// ("appliance restarted"), its nodes stay on kamethod with their token. A failed KA result
// fails the node; -D and -M sessions carry a raw partition and an MBR.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { NetLab, type Host } from '../helpers/netns.js';
import { startKaboot, makeKabootDir, kabootBin, type KabootProcess } from '../helpers/kaboot-process.js';
import type { Deployment } from '../../src/deploy/deployment.js';
import { tempDirRemovedOnPass } from '../helpers/temp-dir.js';

const SRV = '10.88.0.1';
const BASE = `http://${SRV}:8080`;
const A = '52:54:00:88:00:0a';
const B = '52:54:00:88:00:0b';
const C = '52:54:00:88:00:0c';
const dash = (mac: string) => mac.replace(/:/g, '-');

let lab: NetLab;
let srv: Host;
let cli: Host;
let kb: KabootProcess;
let dir: string;
const config = { dhcp: { mode: 'off' }, tftp: { enabled: true, port: 69 }, http: { port: 8080 }, boot: { default: 'local' } };

before(async () => {
  const work = tempDirRemovedOnPass('deploy-count');
  lab = await NetLab.create('depn');
  srv = await lab.host('srv', { cidr: `${SRV}/24` });
  cli = await lab.host('cli', { cidr: '10.88.0.2/24' });
  dir = join(work, 'kaboot');
  await mkdir(dir);
  const paths = makeKabootDir(config, dir);
  const golden = join(work, 'golden');
  await mkdir(join(golden, 'etc'), { recursive: true });
  await writeFile(join(golden, 'etc/hostname'), 'golden\n');
  await writeFile(join(work, 'desc'), 'linux fill ext4 /\n');
  await execa('node', [kabootBin, 'image', 'capture', 'tiny', '--from', golden, '--desc', join(work, 'desc'), '--config', paths.configFile]);
  const s2 = join(work, 's2');
  await mkdir(join(s2, 'bin'), { recursive: true });
  await writeFile(join(s2, 'bin/marker'), 'x');
  await execa('mksquashfs', [s2, join(paths.imagesDir, 'stage2.sqfs'), '-noappend', '-quiet']);
  kb = await startKaboot(lab, srv.ns, config, { dir });
});

after(async () => {
  await kb?.stop().catch(() => undefined);
  await lab?.destroy();
});

async function tftp(path: string): Promise<{ ok: boolean; text: string }> {
  const r = await lab.exec(cli.ns, ['curl', '-sS', `tftp://${SRV}/${path}`], { reject: false });
  return { ok: r.exitCode === 0, text: String(r.stdout) };
}
async function http(path: string): Promise<string> {
  return String((await lab.exec(cli.ns, ['curl', '-sS', `${BASE}${path}`], { reject: false })).stdout);
}
async function show(id: string): Promise<Deployment> {
  const r = await lab.exec(srv.ns, ['node', kabootBin, 'deploy', 'show', id, '--json', '--server', BASE, '--config', kb.configFile], { reject: false });
  assert.equal(r.exitCode, 0, String(r.stderr));
  return JSON.parse(String(r.stdout)) as Deployment;
}

let id: string;

test('deploy -n 2 recruits the next two unknown nodes (TFTP and iPXE), not a third', async () => {
  const r = await lab.exec(srv.ns, ['node', kabootBin, 'deploy', 'tiny', '-n', '2', '--server', BASE, '--config', kb.configFile, '--json'], { reject: false });
  assert.equal(r.exitCode, 0, String(r.stderr));
  const d = JSON.parse(String(r.stdout)) as Deployment;
  id = d.id;
  assert.equal(d.recruiting, true);
  assert.equal(d.want, 2);

  const a = await tftp(`pxelinux.cfg/01-${dash(A)}`);
  assert.ok(a.ok, 'a recruited node gets a file of its own');
  assert.match(a.text, /^DEFAULT kamethod/m);
  assert.match(a.text, new RegExp(`kaboot\\.deployment=${id}`));
  const b = await http(`/ipxe/${dash(B)}.ipxe`);
  assert.match(b, /boots kamethod/);
  assert.match(b, new RegExp(`kaboot\\.deployment=${id} `));

  const c = await tftp(`pxelinux.cfg/01-${dash(C)}`);
  assert.equal(c.ok, false, 'the third unknown node is not recruited: no file, pxelinux falls back to default');
  const cScript = await http(`/ipxe/${dash(C)}.ipxe`);
  assert.match(cScript, /boots from its local disk/);
  assert.doesNotMatch(cScript, /kaboot\.token/);

  const now = await show(id);
  assert.deepEqual(now.nodes.map((n) => [n.n, n.mac, n.state]), [[1, A, 'waiting'], [2, B, 'waiting']]);
  assert.equal(now.recruiting, false);
});

test('after a kill -9 the deployment comes back failed ("appliance restarted"); its nodes stay on kamethod with its token', async () => {
  const before = await tftp(`pxelinux.cfg/01-${dash(A)}`);
  await kb.kill9();
  kb = await startKaboot(lab, srv.ns, config, { dir });
  const d = await show(id);
  assert.equal(d.state, 'failed');
  assert.match(d.message ?? '', /appliance restarted/);
  assert.deepEqual(d.nodes.map((n) => [n.state, n.step]), [['failed', 'appliance'], ['failed', 'appliance']]);
  const after = await tftp(`pxelinux.cfg/01-${dash(A)}`);
  assert.equal(after.text, before.text, 'same kernel line, same token');
  const saved = JSON.parse(readFileSync(join(kb.stateDir, 'deployments', `${id}.json`), 'utf8')) as Deployment;
  assert.equal(saved.state, 'failed');
  // a new deployment may take the nodes again
  const again = await lab.exec(srv.ns, ['node', kabootBin, 'deploy', 'tiny', '--mac', A, '--server', BASE, '--config', kb.configFile], { reject: false });
  assert.equal(again.exitCode, 0, String(again.stderr));
  assert.doesNotMatch((await tftp(`pxelinux.cfg/01-${dash(A)}`)).text, new RegExp(id));
});

test('a node whose KA session result is a failure is failed at that session, and the deployment with it', async () => {
  const r = await lab.exec(srv.ns, ['node', kabootBin, 'deploy', 'list', '--json', '--server', BASE, '--config', kb.configFile], { reject: false });
  const d = (JSON.parse(String(r.stdout)) as { deployments: Deployment[] }).deployments.find((x) => x.state === 'waiting')!;
  assert.ok(d, 'the deployment of the last test waits');
  const token = /kaboot\.token=(\S+)/.exec((await tftp(`pxelinux.cfg/01-${dash(A)}`)).text)![1]!;
  const planText = String((await lab.exec(cli.ns, ['curl', '-sS', '-H', `authorization: Bearer ${token}`, `${BASE}/api/nodes/${A}/plan?firmware=bios`])).stdout);
  const plan = JSON.parse(planText) as { stage2: { name: string; port: number; secret: string } };
  const join = await lab.exec(cli.ns, ['node', kabootBin, 'ka-client', '-s', plan.stage2.name, '-c', `${SRV}:${plan.stage2.port}`, '--secret', plan.stage2.secret, '--name', A, '--data-port', '0', '-e', 'cat >/dev/null; exit 1'], { reject: false });
  assert.equal(join.exitCode, 1, 'the consumer failed');
  let now = await show(d.id);
  for (let i = 0; i < 50 && now.state === 'running'; i++) {
    await new Promise((res) => setTimeout(res, 200));
    now = await show(d.id);
  }
  assert.equal(now.state, 'failed');
  assert.equal(now.nodes[0]!.state, 'failed');
  assert.equal(now.nodes[0]!.step, 'getstage2');
  assert.match(now.nodes[0]!.message ?? '', /session getstage2/);
  assert.match((await tftp(`pxelinux.cfg/01-${dash(A)}`)).text, /^DEFAULT kamethod/m);
});

test('-p, -D and -M: a raw partition and an MBR sent by sessions of their own, byte-exact', async () => {
  const work = tempDirRemovedOnPass('deploy-raw');
  const raw = join(work, 'part2.img');
  await writeFile(raw, Buffer.concat([Buffer.alloc(200_000, 1), Buffer.from('raw partition end')]));
  await writeFile(join(work, 'mbr.bin'), Buffer.alloc(446, 0xeb));
  await writeFile(join(work, 'desc'), 'linux 100 ext4 /\nlinux 50\n');
  const r = await lab.exec(srv.ns, ['node', kabootBin, 'deploy', 'tiny', '--mac', C, '-p', `vda=${join(work, 'desc')}`, '-D', `vda:2=${raw}`, '-M', `vda=${join(work, 'mbr.bin')}`, '--server', BASE, '--config', kb.configFile, '--json'], { reject: false });
  assert.equal(r.exitCode, 0, String(r.stderr));
  const d = JSON.parse(String(r.stdout)) as Deployment;
  assert.deepEqual(d.sessions.map((s) => s.name), ['getstage2', 'kainstall1', 'karaw-vda-2', 'kambr']);
  const token = /kaboot\.token=(\S+)/.exec((await tftp(`pxelinux.cfg/01-${dash(C)}`)).text)![1]!;
  const plan = JSON.parse(String((await lab.exec(cli.ns, ['curl', '-sS', '-H', `authorization: Bearer ${token}`, `${BASE}/api/nodes/${C}/plan?firmware=bios`])).stdout)) as import('../../src/deploy/plan.js').DeployPlan;
  const disk = plan.disks[0]!;
  assert.equal(disk.device, 'vda');
  assert.deepEqual(disk.raw.map((x) => [x.partition, x.session.name]), [[2, 'karaw-vda-2']]);
  assert.equal(disk.mbr?.name, 'kambr');
  const got = join(work, 'got.img');
  const join1 = await lab.exec(cli.ns, ['node', kabootBin, 'ka-client', '-s', 'karaw-vda-2', '-c', `${SRV}:${disk.raw[0]!.session.port}`, '--secret', disk.raw[0]!.session.secret, '--name', C, '--data-port', '0', '-e', `zstd -dc > ${got}`], { reject: false });
  assert.equal(join1.exitCode, 0, String(join1.stderr));
  assert.deepEqual(readFileSync(got), readFileSync(raw));
  const mbr = join(work, 'got-mbr.bin');
  const join2 = await lab.exec(cli.ns, ['node', kabootBin, 'ka-client', '-s', 'kambr', '-c', `${SRV}:${disk.mbr!.port}`, '--secret', disk.mbr!.secret, '--name', C, '--data-port', '0', '-e', `cat > ${mbr}`], { reject: false });
  assert.equal(join2.exitCode, 0, String(join2.stderr));
  assert.deepEqual(readFileSync(mbr), Buffer.alloc(446, 0xeb));
  const cancel = await lab.exec(srv.ns, ['node', kabootBin, 'deploy', 'cancel', d.id, '--server', BASE, '--config', kb.configFile], { reject: false });
  assert.equal(cancel.exitCode, 0, String(cancel.stderr));
});

test('deploy --wait prints the nodes\' progress and exits 1 when the deployment does not end done', async () => {
  const D = '52:54:00:88:00:0d';
  const waiting = lab.exec(srv.ns, ['node', kabootBin, 'deploy', 'tiny', '--mac', D, '--wait', '--server', BASE, '--config', kb.configFile], { reject: false });
  let id: string | undefined;
  for (let i = 0; i < 100 && !id; i++) {
    await new Promise((res) => setTimeout(res, 200));
    const list = await lab.exec(srv.ns, ['node', kabootBin, 'deploy', 'list', '--json', '--server', BASE, '--config', kb.configFile], { reject: false });
    id = (JSON.parse(String(list.stdout)) as { deployments: Deployment[] }).deployments.find((x) => x.nodes.some((n) => n.mac === D))?.id;
  }
  assert.ok(id);
  const token = /kaboot\.token=(\S+)/.exec((await tftp(`pxelinux.cfg/01-${dash(D)}`)).text)![1]!;
  await lab.exec(cli.ns, ['curl', '-sS', '-X', 'POST', '-H', `authorization: Bearer ${token}`, '-H', 'content-type: application/json', '-d', '{"state":"deploying","step":"partition"}', `${BASE}/api/nodes/${D}/status`]);
  await lab.exec(srv.ns, ['node', kabootBin, 'deploy', 'cancel', id, '--server', BASE, '--config', kb.configFile]);
  const r = await waiting;
  assert.equal(r.exitCode, 1);
  const out = String(r.stdout);
  assert.match(out, new RegExp(`deployment ${id} created`));
  assert.match(out, /52:54:00:88:00:0d cancelled step=partition/);
  assert.match(out, new RegExp(`deployment ${id}: image tiny, cancelled`));
});
