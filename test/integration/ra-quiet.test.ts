// ipv6_ra: quiet, against a real IPv6 host: rdisc6 (ndisc6) in another namespace solicits
// routers and must get kaboot's advertisement that configures nothing (router lifetime 0,
// M=0 O=0, no prefix); with the key left at its default (off) it must get none.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { NetLab, type Host } from '../helpers/netns.js';
import { startKaboot } from '../helpers/kaboot-process.js';

let lab: NetLab;
let srv: Host;
let cli: Host;

/** Waits until the host's eth0 has a link-local address that finished DAD. */
async function linkLocalReady(host: Host): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const { stdout } = await lab.exec(host.ns, ['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'link']);
    const line = String(stdout);
    const m = /inet6 (fe80::[0-9a-f:]+)\//.exec(line);
    if (m && !/tentative/.test(line)) return m[1]!;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${host.name}: eth0 has no usable link-local address`);
}

function rdisc6(retries: number) {
  return lab.exec(cli.ns, ['rdisc6', '-1', '-n', '-r', String(retries), '-w', '1000', 'eth0'], { reject: false, all: true });
}

const baseConfig = { interfaces: ['eth0'], dhcp: { mode: 'off' }, tftp: { enabled: false }, http: { port: 8080 } };

before(async () => {
  lab = await NetLab.create('raq');
  srv = await lab.host('srv', { cidr: '10.93.0.1/24' });
  cli = await lab.host('cli', { cidr: '10.93.0.2/24' });
  await linkLocalReady(srv);
  await linkLocalReady(cli);
});
after(async () => lab?.destroy());

test('ipv6_ra: quiet answers a router solicitation with lifetime 0, M=0, O=0 and no prefix', async () => {
  const srvMac = srv.mac;
  const srvLinkLocal = await linkLocalReady(srv);
  const cliLinkLocal = await linkLocalReady(cli);
  const kb = await startKaboot(lab, srv.ns, { ...baseConfig, ipv6_ra: 'quiet' });
  try {
    const started = kb.logs().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('ipv6 ra: answering'));
    assert.deepEqual(started.map((l) => l.iface), ['eth0'], 'one line per interface');
    const r = await rdisc6(3);
    const out = String(r.all);
    assert.equal(r.exitCode, 0, out);
    assert.match(out, /Stateful address conf\.\s*:\s*No/);
    assert.match(out, /Stateful other conf\.\s*:\s*No/);
    assert.match(out, /Router lifetime\s*:\s*0 \(0x00000000\) seconds/);
    assert.match(out, /Hop limit\s*:\s*undefined/);
    assert.doesNotMatch(out, /Prefix/i);
    assert.doesNotMatch(out, /Recursive DNS/i);
    assert.match(out, new RegExp(`Source link-layer address:\\s*${srvMac.toUpperCase().replace(/:/g, ':')}`, 'i'));
    assert.match(out, new RegExp(`from ${srvLinkLocal}`), 'sent from the link-local address');
    // The answer was to the solicitation (unicast to the solicitor), not only the one sent at start.
    // (The log reaches its file a little after the packet leaves: read it until the line is there.)
    let sent: unknown[] = [];
    for (let i = 0; i < 50 && !sent.includes(cliLinkLocal); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      sent = kb.logs().filter((l) => l.msg === 'ipv6 ra: sent').map((l) => l.to);
    }
    assert.deepEqual(sent.slice(0, 1), ['ff02::1'], 'one to all nodes at start');
    assert.ok(sent.includes(cliLinkLocal), `answered ${cliLinkLocal}: ${JSON.stringify(sent)}`);
    // Nothing in the solicitor's kernel took the advertisement as a router or a prefix.
    const routes = String((await lab.exec(cli.ns, ['ip', '-6', 'route', 'show', 'default'])).stdout);
    assert.equal(routes.trim(), '');
    const global = String((await lab.exec(cli.ns, ['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global'])).stdout);
    assert.equal(global.trim(), '');
  } finally {
    await kb.stop();
  }
  assert.equal(kb.proc.exitCode, 0, 'serve stops cleanly');
});

test('ipv6_ra left at its default (off) sends no advertisement', async () => {
  const kb = await startKaboot(lab, srv.ns, baseConfig);
  try {
    assert.equal(kb.logs().some((l) => typeof l.msg === 'string' && l.msg.startsWith('ipv6 ra')), false);
    const r = await rdisc6(2);
    assert.notEqual(r.exitCode, 0, String(r.all));
    assert.match(String(r.all), /No response/);
  } finally {
    await kb.stop();
  }
});
