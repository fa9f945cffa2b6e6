// Proxy mode beside a real address server (dnsmasq) on the same link: ordinary clients
// (dhclient, udhcpc) get their lease from dnsmasq and nothing from kaboot; a PXE client
// gets its address from dnsmasq and its boot file from kaboot, on port 67 and 4011.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { NetLab, type Host } from '../helpers/netns.js';
import { dhclient, probePxe, startDhcp, udhcpc, writeDhcpConfig, type ProbeReply, type RunningServer } from '../helpers/dhcp-lab.js';
import { tempDir, type TempDir } from '../helpers/temp-dir.js';
import { MessageType } from '../../src/dhcp/packet.js';

let lab: NetLab;
let dir: TempDir;
let server: RunningServer;
let srv: Host;
const KABOOT = '10.32.0.1';
const DNSMASQ = '10.32.0.2';

before(async () => {
  dir = tempDir('dhcp-proxy');
  lab = await NetLab.create('dprox');
  srv = await lab.host('srv', { cidr: `${KABOOT}/24` });
  const dns = await lab.host('dnsmasq', { cidr: `${DNSMASQ}/24` });
  lab.spawn(dns.ns, [
    'dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--interface=eth0', '--bind-interfaces', '--no-ping',
    '--dhcp-range=10.32.0.100,10.32.0.150,255.255.255.0,10m', '--dhcp-option=3,10.32.0.254',
    `--dhcp-leasefile=${join(dir.path, 'dnsmasq.leases')}`, `--pid-file=${join(dir.path, 'dnsmasq.pid')}`,
  ]);
  const cfg = writeDhcpConfig(dir.path, { mode: 'proxy' });
  server = await startDhcp(lab, srv.ns, cfg);
});

after(async () => {
  server?.kill();
  await lab?.destroy();
  dir?.remove();
});

async function probe(name: string, args: string[]): Promise<ProbeReply[]> {
  const c = await lab.host(name);
  const r = await probePxe(lab, c.ns, args);
  assert.equal(r.exitCode, 0, r.output);
  return r.replies;
}

test('dhclient gets its lease from dnsmasq and nothing from kaboot', async () => {
  const c = await lab.host('dhclient');
  const r = await dhclient(lab, c.ns, { leases: join(dir.path, 'dhclient.leases'), pid: join(dir.path, 'dhclient.pid') });
  assert.equal(r.exitCode, 0, r.output);
  assert.equal(r.env?.new_dhcp_server_identifier, DNSMASQ);
  assert.match(r.env?.new_ip_address ?? '', /^10\.32\.0\.1\d\d$/);
});

test('busybox udhcpc gets its lease from dnsmasq and nothing from kaboot', async () => {
  const c = await lab.host('udhcpc');
  const r = await udhcpc(lab, c.ns);
  assert.equal(r.exitCode, 0, r.output);
  assert.equal(r.env?.serverid, DNSMASQ);
  const stats = await server.stats();
  assert.ok(stats.received >= 2, JSON.stringify(stats));
  assert.equal(stats.offers + stats.acks + stats.naks, 0, `kaboot answered a non-PXE client: ${JSON.stringify(stats)}`);
});

test('a BIOS PXE client gets an address from dnsmasq and pxelinux.0 from kaboot (no address, option 43 bypass, pxelinux magic)', async () => {
  const replies = await probe('bios', ['--vendor', 'PXEClient:Arch:00000:UNDI:002001', '--arch', '0']);
  const fromDnsmasq = replies.find((r) => r.serverId === DNSMASQ && r.type === MessageType.Offer);
  const fromKaboot = replies.find((r) => r.serverId === KABOOT);
  assert.ok(fromDnsmasq, JSON.stringify(replies));
  assert.match(fromDnsmasq.yiaddr, /^10\.32\.0\.1\d\d$/);
  assert.ok(fromKaboot, JSON.stringify(replies));
  assert.equal(fromKaboot.type, MessageType.Offer);
  assert.equal(fromKaboot.yiaddr, '0.0.0.0');
  assert.equal(fromKaboot.siaddr, KABOOT);
  assert.equal(fromKaboot.file, 'pxelinux.0');
  assert.equal(fromKaboot.vendorClass, 'PXEClient');
  assert.equal(fromKaboot.discoveryControl, 8);
  assert.equal(fromKaboot.pxelinuxMagic, true);
});

test('a UEFI PXE client is sent to port 4011 and gets its boot file there', async () => {
  const replies = await probe('uefi', ['--vendor', 'PXEClient:Arch:00007:UNDI:003016', '--arch', '7', '--request-4011', KABOOT]);
  const offer = replies.find((r) => r.serverId === KABOOT && r.type === MessageType.Offer);
  assert.ok(offer, JSON.stringify(replies));
  assert.equal(offer.yiaddr, '0.0.0.0');
  assert.equal(offer.discoveryControl, undefined);
  const ack = replies.find((r) => r.from === `${KABOOT}:4011` && r.type === MessageType.Ack);
  assert.ok(ack, `no ACK from port 4011: ${JSON.stringify(replies)}`);
  assert.equal(ack.yiaddr, '0.0.0.0');
  assert.equal(ack.file, 'ipxe.efi');
  assert.equal(ack.vendorClass, 'PXEClient');
});

test('iPXE (user class iPXE) gets the iPXE script URL', async () => {
  const c = '52:54:00:32:00:99';
  const replies = await probe('ipxe', ['--mac', c, '--vendor', 'PXEClient:Arch:00007:UNDI:003010', '--arch', '7', '--user-class', 'iPXE']);
  const offer = replies.find((r) => r.serverId === KABOOT);
  assert.ok(offer, JSON.stringify(replies));
  assert.equal(offer.bootfile, `http://${KABOOT}:8080/ipxe/52-54-00-32-00-99.ipxe`);
});

test('each boot decision is logged with mac, arch, firmware, mode, file, via and reason', async () => {
  const line = await server.waitFor((l) => l.msg === 'boot decision' && l.firmware === 'ipxe');
  for (const k of ['mac', 'arch', 'firmware', 'mode', 'file', 'via', 'reason']) assert.ok(k in line, `${k} missing in ${JSON.stringify(line)}`);
  assert.equal(line.mode, 'proxy');
  assert.equal(line.via, 'http');
});
