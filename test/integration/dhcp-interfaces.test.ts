// One kaboot, three links: each served interface answers from its own subnet, and the
// reply leaves by the interface the request came in on; an interface with no configured
// subnet gets no answer at all (full mode never hands out addresses where it was not told to).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { NetLab, type Host } from '../helpers/netns.js';
import { startDhcp, udhcpc, writeDhcpConfig, type RunningServer } from '../helpers/dhcp-lab.js';
import { tempDir, type TempDir } from '../helpers/temp-dir.js';

let a: NetLab;
let b: NetLab;
let c: NetLab;
let dir: TempDir;
let server: RunningServer;
let srv: Host;

/** Give `ns` one more interface, `ifname`, on `lab`'s bridge. */
async function leg(lab: NetLab, ns: string, ifname: string, cidr: string) {
  const outer = `x${randomBytes(3).toString('hex')}`;
  await execa('ip', ['link', 'add', outer, 'netns', lab.switchNs, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns]);
  await lab.sh(lab.switchNs, `ip link set ${outer} master br0 && ip link set ${outer} up`);
  await execa('ip', ['-n', ns, 'link', 'set', ifname, 'up']);
  await execa('ip', ['-n', ns, 'addr', 'add', cidr, 'brd', '+', 'dev', ifname]);
}

before(async () => {
  dir = tempDir('dhcp-ifaces');
  a = await NetLab.create('difa');
  b = await NetLab.create('difb');
  c = await NetLab.create('difc');
  srv = await a.host('srv', { cidr: '10.34.0.1/24' });
  await leg(b, srv.ns, 'eth1', '10.35.0.1/24');
  await leg(c, srv.ns, 'eth2', '10.36.0.1/24');
  const cfg = writeDhcpConfig(dir.path, {
    mode: 'full',
    subnets: [
      { subnet: '10.34.0.0/24', range: ['10.34.0.100', '10.34.0.110'], routers: ['10.34.0.254'] },
      { subnet: '10.35.0.0/24', range: ['10.35.0.100', '10.35.0.110'], routers: ['10.35.0.254'] },
    ],
  }, { interfaces: ['eth0', 'eth1', 'eth2'] });
  server = await startDhcp(a, srv.ns, cfg);
});

after(async () => {
  server?.kill();
  for (const lab of [c, b, a]) await lab?.destroy();
  dir?.remove();
});

/** udhcpc on a new host `name` on `lab`'s link. */
async function clientOn(lab: NetLab, name: string, tries = 5) {
  const h = await lab.host(name);
  return udhcpc(lab, h.ns, { tries });
}

test('each link gets an address from its own subnet, from the server address on that link', async () => {
  const onA = await clientOn(a, 'ca');
  assert.equal(onA.exitCode, 0, onA.output);
  assert.match(onA.env?.ip ?? '', /^10\.34\.0\.1(0\d|10)$/);
  assert.equal(onA.env?.router, '10.34.0.254');
  assert.equal(onA.env?.serverid, '10.34.0.1');
  const onB = await clientOn(b, 'cb');
  assert.equal(onB.exitCode, 0, onB.output);
  assert.match(onB.env?.ip ?? '', /^10\.35\.0\.1(0\d|10)$/);
  assert.equal(onB.env?.router, '10.35.0.254');
  assert.equal(onB.env?.serverid, '10.35.0.1');
});

test('a served interface without a configured subnet answers nothing', async () => {
  const before = await server.stats();
  const onC = await clientOn(c, 'cc', 3);
  assert.notEqual(onC.exitCode, 0, 'udhcpc got a lease on an unconfigured network');
  assert.equal(onC.env, undefined);
  const after = await server.stats();
  assert.ok(after.received > before.received, 'the requests reached kaboot');
  assert.equal(after.offers, before.offers);
  assert.equal(after.acks, before.acks);
  assert.ok(server.lines.some((l) => l.msg === 'no configured subnet on this interface: requests there are ignored' && l.iface === 'eth2'));
});
