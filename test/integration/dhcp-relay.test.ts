// A relayed client: udhcpc on one link, dhcp-helper in a router namespace between two
// bridges, kaboot on the other link. kaboot picks the subnet by giaddr and answers the
// relay by unicast on port 67.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { NetLab, type Host } from '../helpers/netns.js';
import { startDhcp, udhcpc, writeDhcpConfig, type RunningServer } from '../helpers/dhcp-lab.js';
import { tempDir, type TempDir } from '../helpers/temp-dir.js';

let serverSide: NetLab;
let clientSide: NetLab;
let dir: TempDir;
let server: RunningServer;
let router: Host;

before(async () => {
  dir = tempDir('dhcp-relay');
  serverSide = await NetLab.create('drsv');
  clientSide = await NetLab.create('drcl');
  const srv = await serverSide.host('srv', { cidr: '10.41.0.1/24' });
  router = await serverSide.host('router', { cidr: '10.41.0.254/24' });
  // The router's second leg, on the client side's bridge.
  const outer = `r${randomBytes(3).toString('hex')}`;
  await execa('ip', ['link', 'add', outer, 'netns', clientSide.switchNs, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', router.ns]);
  await clientSide.sh(clientSide.switchNs, `ip link set ${outer} master br0 && ip link set ${outer} up`);
  await serverSide.sh(router.ns, 'ip link set eth1 up && ip addr add 10.42.0.1/24 brd + dev eth1');
  await serverSide.sh(srv.ns, 'ip route add 10.42.0.0/24 via 10.41.0.254');
  serverSide.spawn(router.ns, ['dhcp-helper', '-d', '-s', '10.41.0.1', '-i', 'eth1']);
  const cfg = writeDhcpConfig(dir.path, {
    mode: 'full',
    subnets: [
      { subnet: '10.41.0.0/24', range: ['10.41.0.100', '10.41.0.110'], routers: ['10.41.0.254'] },
      { subnet: '10.42.0.0/24', range: ['10.42.0.100', '10.42.0.120'], routers: ['10.42.0.1'], dns_servers: ['10.42.0.53'], lease_time: 1200 },
    ],
  });
  server = await startDhcp(serverSide, srv.ns, cfg);
});

after(async () => {
  server?.kill();
  await clientSide?.destroy();
  await serverSide?.destroy();
  dir?.remove();
});

test('a client behind dhcp-helper gets an address from the relay\'s subnet, chosen by giaddr', async () => {
  const c = await clientSide.host('client');
  const r = await udhcpc(clientSide, c.ns, { tries: 8 });
  assert.equal(r.exitCode, 0, r.output);
  const env = r.env ?? {};
  assert.match(env.ip ?? '', /^10\.42\.0\.(1[01]\d|120)$/);
  assert.equal(env.router, '10.42.0.1');
  assert.equal(env.dns, '10.42.0.53');
  assert.equal(env.lease, '1200');
  assert.equal(env.serverid, '10.41.0.1');
  const stats = await server.stats();
  assert.ok(stats.acks >= 1, JSON.stringify(stats));
});
