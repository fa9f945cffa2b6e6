// ka-d.sh -m with real peers: a disk image on a loop device, partitioned by sfdisk, with
// boot code written before its partition table; `kaboot image capture --desc-from LOOP`
// records the desc and the first 446 bytes (never the table); `kaboot image push` carries
// them with their sha256; `kaboot deploy IMAGE -m` sends them through the kambr session,
// received here by `kaboot ka-client` byte for byte. An image without boot code refuses -m
// with what to do.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { NetLab, type Host } from '../helpers/netns.js';
import { startKaboot, makeKabootDir, kabootBin, type KabootProcess } from '../helpers/kaboot-process.js';
import type { Deployment } from '../../src/deploy/deployment.js';
import type { ImageManifest } from '../../src/images/manifest.js';
import type { DeployPlan } from '../../src/deploy/plan.js';
import { tempDirRemovedOnPass } from '../helpers/temp-dir.js';

const SRV = '10.89.0.1';
const BASE = `http://${SRV}:8080`;
const MAC = '52:54:00:89:00:0a';
const dash = (mac: string) => mac.replace(/:/g, '-');

let lab: NetLab;
let srv: Host;
let cli: Host;
let kb: KabootProcess;
let work: string;
let loop = '';
let configFile = '';
const code = Buffer.alloc(446);
for (let i = 0; i < code.length; i++) code[i] = (i * 31 + 0x5a) & 0xff;

before(async () => {
  work = tempDirRemovedOnPass('deploy-mbr');
  const disk = join(work, 'golden.img');
  await execa('truncate', ['-s', '64M', disk]);
  await execa('sfdisk', ['--quiet', disk], { input: 'label: dos\n,32M,83\n,,83\n' });
  // boot code in the first 446 bytes, the table sfdisk wrote after them untouched
  await execa('dd', [`of=${disk}`, 'bs=446', 'count=1', 'conv=notrunc', 'status=none'], { input: code });
  loop = (await execa('losetup', ['--find', '--show', '--partscan', disk])).stdout.trim();
  assert.match(loop, /^\/dev\/loop\d+$/);

  const config = { dhcp: { mode: 'off' }, tftp: { enabled: true, port: 69 }, http: { port: 8080 } };
  const dir = join(work, 'kaboot');
  await mkdir(dir);
  configFile = makeKabootDir(config, dir).configFile;
  const golden = join(work, 'golden');
  await mkdir(join(golden, 'etc'), { recursive: true });
  await writeFile(join(golden, 'etc/hostname'), 'golden\n');
  const s2 = join(work, 's2');
  await mkdir(join(s2, 'bin'), { recursive: true });
  await writeFile(join(s2, 'bin/marker'), 'x');
  await execa('mksquashfs', [s2, join(dir, 'images', 'stage2.sqfs'), '-noappend', '-quiet']);

  lab = await NetLab.create('depm');
  srv = await lab.host('srv', { cidr: `${SRV}/24` });
  cli = await lab.host('cli', { cidr: '10.89.0.2/24' });
  kb = await startKaboot(lab, srv.ns, config, { dir });
});

after(async () => {
  await kb?.stop().catch(() => undefined);
  await lab?.destroy();
  if (loop) await execa('losetup', ['-d', loop], { reject: false });
  if (work) await rm(work, { recursive: true, force: true });
});

const golden = () => join(work, 'golden');

test('capture --desc-from LOOP records the desc and the 446 bytes of boot code, not the partition table', async () => {
  const r = await execa('node', [kabootBin, 'image', 'capture', 'withmbr', '--from', golden(), '--desc-from', loop, '--config', configFile, '--json'], { reject: false });
  assert.equal(r.exitCode, 0, r.stderr);
  const m = JSON.parse(r.stdout) as ImageManifest;
  assert.match(m.desc ?? '', /linux 32/);
  const name = loop.slice('/dev/'.length);
  assert.deepEqual(m.boot_code?.map((b) => [b.drive, b.source, b.file]), [[name, loop, `mbr/${name}.bin`]]);
  const stored = await readFile(join(kb.imagesDir, 'store', 'withmbr', m.boot_code![0]!.file));
  assert.equal(stored.length, 446);
  assert.deepEqual(stored, code);
  // the table is still on the golden, and not in the stored bytes
  const sector = await readFile(loop).then((b) => b.subarray(0, 512));
  assert.deepEqual(sector.subarray(0, 446), code);
  assert.notDeepEqual(sector.subarray(446, 512), Buffer.alloc(66));
});

test('push carries the boot code with its sha256; --mbr FILE records a file given explicitly', async () => {
  const token = kb.token();
  const push = await lab.exec(cli.ns, ['node', kabootBin, 'image', 'push', 'pushed', '--to', BASE, '--token', token, '--from', golden(), '--desc-from', loop, '--json'], { reject: false });
  assert.equal(push.exitCode, 0, String(push.stderr));
  const m = (JSON.parse(String(push.stdout)) as { manifest: ImageManifest }).manifest;
  assert.equal(m.source.kind, 'push');
  assert.deepEqual(await readFile(join(kb.imagesDir, 'store', 'pushed', m.boot_code![0]!.file)), code);

  const file = join(work, 'mbr.bin');
  await writeFile(file, Buffer.alloc(446, 0xeb));
  const desc = join(work, 'desc');
  await writeFile(desc, 'linux fill ext4 /\n');
  const r = await execa('node', [kabootBin, 'image', 'capture', 'fromfile', '--from', golden(), '--desc', desc, '--mbr', file, '--config', configFile, '--json'], { reject: false });
  assert.equal(r.exitCode, 0, r.stderr);
  const f = JSON.parse(r.stdout) as ImageManifest;
  assert.deepEqual(f.boot_code?.map((b) => [b.drive, b.source]), [['first', file]]);
  const none = await execa('node', [kabootBin, 'image', 'capture', 'nombr', '--from', golden(), '--desc', desc, '--config', configFile, '--json'], { reject: false });
  assert.equal(none.exitCode, 0, none.stderr);
  assert.equal((JSON.parse(none.stdout) as ImageManifest).boot_code, undefined, 'a desc from a file reads no disk');
});

test('deploy IMAGE -m sends the image\'s boot code through kambr, byte for byte; an image without any refuses -m', async () => {
  const refused = await lab.exec(srv.ns, ['node', kabootBin, 'deploy', 'nombr', '--mac', MAC, '-m', '--server', BASE, '--config', kb.configFile], { reject: false });
  assert.equal(refused.exitCode, 1);
  assert.match(String(refused.stderr), /-m: image nombr holds no MBR boot code\. Capture the golden again/);

  // the desc read from the loop disk has no mount points: -p gives the node's
  const r = await lab.exec(srv.ns, ['node', kabootBin, 'deploy', 'withmbr', '--mac', MAC, '-p', `vda=${join(work, 'desc')}`, '-m', '--server', BASE, '--config', kb.configFile, '--json'], { reject: false });
  assert.equal(r.exitCode, 0, String(r.stderr));
  const d = JSON.parse(String(r.stdout)) as Deployment;
  assert.deepEqual(d.sessions.map((s) => s.name), ['getstage2', 'kainstall1', 'kambr']);
  assert.equal(d.request.copy_mbr, undefined, '-m is resolved into the boot code itself');
  assert.match(d.message ?? '', /-m: the MBR boot code of the golden's loop\d+ \(\/dev\/loop\d+\) goes to vda/);
  const pxe = String((await lab.exec(cli.ns, ['curl', '-sS', `tftp://${SRV}/pxelinux.cfg/01-${dash(MAC)}`])).stdout);
  const token = /kaboot\.token=(\S+)/.exec(pxe)![1]!;
  const plan = JSON.parse(String((await lab.exec(cli.ns, ['curl', '-sS', '-H', `authorization: Bearer ${token}`, `${BASE}/api/nodes/${MAC}/plan?firmware=bios`])).stdout)) as DeployPlan;
  assert.equal(plan.disks[0]!.device, 'vda');
  const ref = plan.disks[0]!.mbr!;
  assert.equal(ref.name, 'kambr');
  assert.equal(ref.bytes, 446);
  const got = join(work, 'got-mbr.bin');
  const join1 = await lab.exec(cli.ns, ['node', kabootBin, 'ka-client', '-s', 'kambr', '-c', `${SRV}:${ref.port}`, '--secret', ref.secret, '--name', MAC, '--data-port', '0', '-e', `cat > ${got}`], { reject: false });
  assert.equal(join1.exitCode, 0, String(join1.stderr));
  assert.deepEqual(await readFile(got), code);
  const cancel = await lab.exec(srv.ns, ['node', kabootBin, 'deploy', 'cancel', d.id, '--server', BASE, '--config', kb.configFile], { reject: false });
  assert.equal(cancel.exitCode, 0, String(cancel.stderr));
});
