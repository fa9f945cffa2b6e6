// Full mode with real clients: ISC dhclient and busybox udhcpc get leases from kaboot
// with the configured options, in network namespaces.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { NetLab } from '../helpers/netns.js';
import { envDumpScript, parseEnv, startDhcp, tempDir, udhcpc, writeDhcpConfig, type RunningServer, type TempDir } from '../helpers/dhcp-lab.js';

let lab: NetLab;
let dir: TempDir;
let server: RunningServer;
const SUBNET = {
  subnet: '10.31.0.0/24',
  range: ['10.31.0.100', '10.31.0.150'],
  routers: ['10.31.0.254'],
  dns_servers: ['10.31.0.53', '10.31.0.54'],
  domain_name: 'ka.example',
  lease_time: 900,
  max_lease_time: 1800,
  hosts: [{ mac: '52:54:00:31:00:77', address: '10.31.0.77', hostname: 'fixed77' }],
};

before(async () => {
  dir = tempDir('dhcp-full');
  lab = await NetLab.create('dfull');
  const srv = await lab.host('srv', { cidr: '10.31.0.1/24' });
  const cfg = writeDhcpConfig(dir.path, { mode: 'full', subnets: [SUBNET] });
  server = await startDhcp(lab, srv.ns, cfg);
});

after(async () => {
  server?.kill();
  await lab?.destroy();
  dir?.remove();
});

let dhclientNs = '';
let dhclientIp = '';

test('dhclient gets a lease with routers, DNS, domain and lease time', async () => {
  const c = await lab.host('dhclient');
  dhclientNs = c.ns;
  const out = join(dir.path, 'dhclient.env');
  const script = envDumpScript(dir.path, 'dhclient-script', out, 'BOUND|REBOOT');
  const r = await lab.exec(c.ns, ['timeout', '30', 'dhclient', '-1', '-v', '-sf', script, '-lf', join(dir.path, 'dhclient.leases'), '-pf', join(dir.path, 'dhclient.pid'), 'eth0'], { reject: false, all: true });
  assert.equal(r.exitCode, 0, String(r.all));
  assert.ok(existsSync(out), `dhclient ran its script: ${String(r.all)}`);
  const env = parseEnv(readFileSync(out, 'utf8'));
  assert.match(env.new_ip_address ?? '', /^10\.31\.0\.(1[0-4]\d|150)$/);
  assert.equal(env.new_routers, '10.31.0.254');
  assert.equal(env.new_domain_name_servers, '10.31.0.53 10.31.0.54');
  assert.equal(env.new_domain_name, 'ka.example');
  assert.equal(env.new_subnet_mask, '255.255.255.0');
  assert.equal(env.new_dhcp_lease_time, '900');
  assert.equal(env.new_dhcp_server_identifier, '10.31.0.1');
  dhclientIp = env.new_ip_address!;
});

test('dhclient started again with its lease file asks for its address back (INIT-REBOOT) and gets it', async () => {
  assert.ok(dhclientNs && dhclientIp, 'the first dhclient test ran');
  // The first dhclient went to the background holding its lease: stop it (it is ours, by its pid file).
  const pid = Number(readFileSync(join(dir.path, 'dhclient.pid'), 'utf8').trim());
  if (pid > 0) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  const out = join(dir.path, 'dhclient2.env');
  const script = envDumpScript(dir.path, 'dhclient2-script', out, 'BOUND|REBOOT');
  const r = await lab.exec(dhclientNs, ['timeout', '30', 'dhclient', '-1', '-v', '-sf', script, '-lf', join(dir.path, 'dhclient.leases'), '-pf', join(dir.path, 'dhclient2.pid'), 'eth0'], { reject: false, all: true });
  assert.equal(r.exitCode, 0, String(r.all));
  const env = parseEnv(readFileSync(out, 'utf8'));
  assert.equal(env.reason, 'REBOOT', String(r.all));
  assert.equal(env.new_ip_address, dhclientIp);
});

test('busybox udhcpc gets a lease with the configured options', async () => {
  const c = await lab.host('udhcpc');
  const r = await udhcpc(lab, c.ns, { request: ['domain'] });
  assert.equal(r.exitCode, 0, r.output);
  const env = r.env ?? {};
  assert.match(env.ip ?? '', /^10\.31\.0\.(1[0-4]\d|150)$/);
  assert.equal(env.router, '10.31.0.254');
  assert.equal(env.dns, '10.31.0.53 10.31.0.54');
  assert.equal(env.domain, 'ka.example');
  assert.equal(env.lease, '900');
  assert.equal(env.serverid, '10.31.0.1');
});

test('a reserved MAC gets its fixed address and host name', async () => {
  const c = await lab.host('fixed', { mac: '52:54:00:31:00:77' });
  const r = await udhcpc(lab, c.ns, { request: ['hostname'] });
  assert.equal(r.exitCode, 0, r.output);
  assert.equal(r.env?.ip, '10.31.0.77');
  assert.equal(r.env?.hostname, 'fixed77');
});

test('the server counted the ACKs and journaled the leases', async () => {
  const stats = await server.stats();
  assert.ok(stats.acks >= 3, JSON.stringify(stats));
  assert.equal(stats.decodeErrors, 0);
  const journal = readFileSync(join(dir.path, 'state', 'dhcp-leases.journal'), 'utf8');
  assert.match(journal, /"address":"10\.31\.0\.77".*"state":"bound"/);
});
