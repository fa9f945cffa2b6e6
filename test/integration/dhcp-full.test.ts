// Full mode with real clients: ISC dhclient and busybox udhcpc get leases from kaboot
// with the configured options, in network namespaces.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NetLab } from '../helpers/netns.js';
import { dhclient, startDhcp, stopDhclient, udhcpc, writeDhcpConfig, type DhclientFiles, type RunningServer } from '../helpers/dhcp-lab.js';
import { tempDir, type TempDir } from '../helpers/temp-dir.js';

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
const dhclientFiles = (pid: string): DhclientFiles => ({ leases: join(dir.path, 'dhclient.leases'), pid: join(dir.path, pid) });

test('dhclient gets a lease with routers, DNS, domain and lease time', async () => {
  const c = await lab.host('dhclient');
  dhclientNs = c.ns;
  const r = await dhclient(lab, c.ns, dhclientFiles('dhclient.pid'));
  assert.equal(r.exitCode, 0, r.output);
  assert.ok(r.env, `dhclient ran its script: ${r.output}`);
  const env = r.env;
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
  // The first dhclient went to the background holding its lease: stop it.
  await stopDhclient(dhclientFiles('dhclient.pid'));
  const r = await dhclient(lab, dhclientNs, dhclientFiles('dhclient2.pid'));
  assert.equal(r.exitCode, 0, r.output);
  assert.equal(r.env?.reason, 'REBOOT', r.output);
  assert.equal(r.env?.new_ip_address, dhclientIp);
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
