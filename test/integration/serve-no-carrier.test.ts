// An appliance must start while its deploy NIC has no link yet (cable out, bridge with
// no port up): os.networkInterfaces() hides such interfaces, kaboot must not.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { NetLab } from '../helpers/netns.js';
import { startKaboot } from '../helpers/kaboot-process.js';
import { udhcpc } from '../helpers/dhcp-lab.js';

let lab: NetLab | undefined;
after(async () => lab?.destroy());

test('kaboot serve starts on an interface without carrier and serves it once the link comes up', async () => {
  lab = await NetLab.create('nocar');
  const srv = await lab.host('srv');
  // A bridge whose only port is a tap nobody has opened yet (a VM not started) has no carrier.
  await lab.sh(srv.ns, 'ip link add br9 type bridge && ip addr add 10.91.0.1/24 dev br9 && ip tuntap add tap9 mode tap && ip link set tap9 master br9 && ip link set tap9 up && ip link set br9 up');
  const carrier = String((await lab.sh(srv.ns, 'sleep 0.2; cat /sys/class/net/br9/carrier')).stdout).trim();
  assert.equal(carrier, '0', 'the bridge has no carrier');
  const kb = await startKaboot(lab, srv.ns, { interfaces: ['br9'], dhcp: { mode: 'full', subnets: [{ subnet: '10.91.0.0/24', range: ['10.91.0.10', '10.91.0.20'] }] }, http: { port: 8080 } });
  const ifaces = kb.logs().find((l) => l.msg === 'serving interfaces') as { interfaces: { name: string }[] } | undefined;
  assert.deepEqual(ifaces?.interfaces.map((i) => i.name), ['br9']);
  // Link comes up: a client on the bridge gets a lease.
  const cli = await lab.host('cli');
  await lab.sh(srv.ns, 'ip link add vb0 type veth peer name vb1 && ip link set vb0 master br9 && ip link set vb0 up');
  await lab.sh(srv.ns, `ip link set vb1 netns ${cli.ns}`);
  await lab.sh(cli.ns, 'ip link set vb1 up');
  const r = await udhcpc(lab, cli.ns, { iface: 'vb1', tries: 10, wait: 1 });
  assert.equal(r.exitCode, 0, r.output);
  assert.match(r.output, /lease of 10\.91\.0\.\d+ obtained/);
  await kb.stop();
});
