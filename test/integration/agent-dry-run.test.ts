// kaboot-agent --dry-run in a namespace against a real `kaboot serve` in another, with a real
// DHCP server (busybox udhcpd) on the same segment: network up, lease, appliance found by the
// kernel command line or by DHCP next-server, status reported, every step's lines in the node's log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NetLab, type Host } from '../helpers/netns.js';
import { startKaboot, repoRoot, type KabootProcess } from '../helpers/kaboot-process.js';
import { tempDirRemovedOnPass } from '../helpers/temp-dir.js';

let lab: NetLab;
let srv: Host;
let kb: KabootProcess;
let work: string;
const net = '10.86.0';

before(async () => {
  work = tempDirRemovedOnPass('agent-it');
  lab = await NetLab.create('agnt');
  srv = await lab.host('srv', { cidr: `${net}.1/24` });
  kb = await startKaboot(lab, srv.ns, { dhcp: { mode: 'off' }, tftp: { enabled: false }, http: { port: 80 } });
  writeFileSync(join(work, 'udhcpd.conf'), [
    `start ${net}.100`, `end ${net}.150`, 'interface eth0', `siaddr ${net}.1`, 'opt subnet 255.255.255.0', `opt router ${net}.1`,
    `lease_file ${join(work, 'udhcpd.leases')}`, `pidfile ${join(work, 'udhcpd.pid')}`, '',
  ].join('\n'));
  writeFileSync(join(work, 'udhcpd.leases'), '');
  lab.spawn(srv.ns, ['busybox', 'udhcpd', '-f', join(work, 'udhcpd.conf')]);
});

after(async () => {
  await kb?.stop();
  await lab?.destroy();
});

async function agent(node: Host, cmdline: string, extra: string[] = []) {
  const file = join(work, `cmdline-${node.name}`);
  writeFileSync(file, cmdline + '\n');
  return lab.exec(node.ns, ['node', '--import', 'tsx', join(repoRoot, 'src/agent/cli.ts'), '--dry-run', '--cmdline', file, '--run-dir', join(work, `run-${node.name}`), ...extra], { reject: false, cwd: repoRoot, timeout: 120_000 });
}

function nodeLog(mac: string): string {
  return readFileSync(join(kb.stateDir, 'logs', `${mac.replace(/:/g, '-')}.log`), 'utf8');
}

test('DHCP, then the appliance from kaboot.server=, status booting, the whole run in the node log', async () => {
  const node = await lab.host('n1', { mac: '52:54:00:86:00:01' });
  const r = await agent(node, `console=ttyS0 kaboot.server=${net}.1:80 kaboot.token=${kb.token()}`);
  assert.equal(r.exitCode, 0, String(r.stderr));
  const out = String(r.stderr);
  assert.match(out, new RegExp(`eth0: ${net}\\.1\\d\\d/24 from ${net}\\.1, next-server ${net}\\.1`));
  assert.match(out, new RegExp(`found the kaboot appliance at http://${net}\\.1:80\n`));
  const nodes = JSON.parse(String((await lab.exec(node.ns, ['curl', '-sS', `http://${net}.1/api/nodes/${node.mac}`])).stdout)) as { state: string };
  assert.equal(nodes.state, 'booting');
  const log = nodeLog(node.mac);
  assert.match(log, / network agent step network: start\n/);
  assert.match(log, / network (stdout|stderr) udhcpc: lease of /, 'udhcpc\'s own lines reach the appliance');
  assert.match(log, / find-appliance status state=booting agent .* eth0 52:54:00:86:00:01, (bios|uefi)\n/);
});

test('no kaboot.server=: the DHCP next-server is the appliance', async () => {
  const node = await lab.host('n2', { mac: '52:54:00:86:00:02' });
  const r = await agent(node, `quiet kaboot.token=${kb.token()}`);
  assert.equal(r.exitCode, 0, String(r.stderr));
  assert.match(String(r.stderr), new RegExp(`found the kaboot appliance at http://${net}\\.1:80\n`));
  assert.match(nodeLog(node.mac), / find-appliance status state=booting /);
});

test('ip= and BOOTIF= from iPXE: the firmware\'s lease is used as it is, no DHCP asked, the appliance found', async () => {
  const node = await lab.host('n4', { mac: '52:54:00:86:00:04' });
  const r = await agent(node, `kaboot.server=${net}.1:80 kaboot.token=${kb.token()} BOOTIF=01-52-54-00-86-00-04 ip=${net}.204:${net}.1:${net}.1:255.255.255.0`);
  assert.equal(r.exitCode, 0, String(r.stderr));
  const out = String(r.stderr);
  assert.match(out, new RegExp(`eth0: ${net}\\.204/24, the boot firmware's lease \\(ip= on the kernel line\\), next-server ${net}\\.1`));
  assert.doesNotMatch(out, /udhcpc/);
  assert.match(out, new RegExp(`found the kaboot appliance at http://${net}\\.1:80\n`));
  const addr = String((await lab.exec(node.ns, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout);
  assert.match(addr, new RegExp(`inet ${net}\\.204/24`));
});

test('the firmware\'s lease leads nowhere: the next attempt asks DHCP, whose next-server is the appliance', async () => {
  const node = await lab.host('n5', { mac: '52:54:00:86:00:05' });
  const r = await agent(node, `kaboot.token=${kb.token()} BOOTIF=01-52-54-00-86-00-05 ip=${net}.205:${net}.9:${net}.9:255.255.255.0`, ['--retry-delay-ms', '10']);
  assert.equal(r.exitCode, 0, String(r.stderr));
  const out = String(r.stderr);
  assert.match(out, new RegExp(`eth0: ${net}\\.205/24, the boot firmware's lease`));
  assert.match(out, /can't reach a kaboot appliance at http:\/\/10\.86\.0\.9:80 \(attempt 1 of 5\)/);
  assert.match(out, /the next attempt asks DHCP instead of using the boot firmware's lease/);
  assert.match(out, new RegExp(`eth0: ${net}\\.1\\d\\d/24 from ${net}\\.1, next-server ${net}\\.1`));
  assert.match(out, new RegExp(`found the kaboot appliance at http://${net}\\.1:80\n`));
});

test('an address where nothing answers: five attempts, the clear message, then reboot (dry run: said, not done)', async () => {
  const node = await lab.host('n3', { mac: '52:54:00:86:00:03', cidr: `${net}.203/24` });
  const r = await agent(node, `kaboot.server=${net}.2:8080 kaboot.token=x`, ['--retry-delay-ms', '10', '--no-dhcp']);
  assert.equal(r.exitCode, 1);
  const out = String(r.stderr);
  for (let i = 1; i <= 4; i++) assert.match(out, new RegExp(`can't reach a kaboot appliance at http://${net}\\.2:8080 \\(attempt ${i} of 5\\); trying again`));
  assert.match(out, /\(attempt 5 of 5\); rebooting\n/);
  assert.match(out, /dry run: would reboot now/);
});
