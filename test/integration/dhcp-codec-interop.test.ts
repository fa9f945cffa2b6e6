// Real clients read what kaboot's encoder writes when it must work hard: an OFFER/ACK
// too big for the client's 576 bytes, overloaded into file and sname (option 52), with a
// 300-byte root path (option 17) split into repeated codes across areas (RFC 3396).
// dhclient and busybox udhcpc, in a network namespace, get the lease and hand the
// options to their scripts; the test compares what the scripts saw.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, chmodSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetLab, type Host } from '../helpers/netns.js';
import { decodePacket } from '../../src/dhcp/codec.js';
import { getOpt } from '../../src/dhcp/options.js';
import { Opt } from '../../src/dhcp/packet.js';

const LISTENER = fileURLToPath(new URL('../fixtures/dhcp/capture-listener.ts', import.meta.url));
const ROOT_PATH = '/srv/kaboot/' + Array.from({ length: 288 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
const SERVER = '10.78.0.1';
const OFFERED = '10.78.0.100';

async function waitFor(path: string, seconds: number): Promise<void> {
  for (let i = 0; i < seconds * 10; i++) {
    if (existsSync(path)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${path} did not appear within ${seconds} s`);
}

/** KEY=value lines of `env` output (values here hold no newlines) */
function envFile(path: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) m.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return m;
}

describe('real clients read overloaded and RFC 3396-split replies', () => {
  let lab: NetLab;
  let srv: Host;
  let cli: Host;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kaboot-interop-'));
    lab = await NetLab.create('cdc');
    srv = await lab.host('srv', { cidr: `${SERVER}/24` });
    cli = await lab.host('cli');
    // the listener answers to 255.255.255.255, which needs a route out of eth0
    await lab.sh(srv.ns, 'ip route add default dev eth0');
  });

  after(async () => {
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** resolves once the listener is bound; returns the process in an object (a bare execa
   * subprocess is a thenable, and returning it from an async function would await its end) */
  /** a client script that dumps its environment (dhclient gives its script a clean one) */
  function clientScript(label: string): string {
    const script = join(dir, `${label}-script.sh`);
    writeFileSync(script, `#!/bin/sh\nenv > "${dir}/${label}-\${reason:-$1}.env"\n`);
    chmodSync(script, 0o755);
    return script;
  }

  async function runListener(label: string): Promise<{ proc: ReturnType<NetLab['spawn']> }> {
    const p = lab.spawn(srv.ns, ['node', '--import', 'tsx', LISTENER, dir, label, SERVER, OFFERED, 'rich']);
    for (let i = 0; ; i++) {
      const { stdout } = await lab.sh(srv.ns, 'ss -Hulnp "sport = :67"');
      if (String(stdout).includes('node')) break;
      if (i > 200) throw new Error('listener did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    return { proc: p };
  }

  function checkAck(label: string) {
    const raw = readFileSync(join(dir, `${label}-ack.bin`));
    const overload = raw.indexOf(Buffer.from([52, 1]), 240);
    assert.ok(overload > 0 && raw[overload + 2]! & 1, 'the ACK is overloaded into file');
    assert.ok(raw.length <= 576 - 28, `the ACK fits the client's 576 bytes (${raw.length})`);
    const d = decodePacket(raw);
    assert.ok(d.ok);
    assert.equal(d.packet.options.get(17)?.toString(), ROOT_PATH);
    assert.equal(getOpt(d.packet.options, Opt.DomainName), 'lab.example');
  }

  test('dhclient (isc-dhcp-client)', async () => {
    const label = 'dhclient';
    const { proc: listener } = await runListener(label);
    const conf = join(dir, 'dhclient.conf');
    writeFileSync(conf, 'request subnet-mask, routers, domain-name, domain-name-servers, host-name, root-path;\n');
    const client = lab.spawn(cli.ns, ['dhclient', '-d', '-1', '-cf', conf, '-lf', join(dir, 'dhclient.leases'), '-pf', join(dir, 'dhclient.pid'), '-sf', clientScript(label), 'eth0']);
    await waitFor(join(dir, `${label}-BOUND.env`), 40);
    await new Promise((r) => setTimeout(r, 200));
    const env = envFile(join(dir, `${label}-BOUND.env`));
    assert.equal(env.get('new_ip_address'), OFFERED);
    assert.equal(env.get('new_subnet_mask'), '255.255.255.0');
    assert.equal(env.get('new_routers'), SERVER);
    assert.equal(env.get('new_domain_name'), 'lab.example');
    assert.equal(env.get('new_host_name'), 'kaboot-node');
    assert.equal(env.get('new_root_path'), ROOT_PATH, 'option 17, split across options and file, reassembled');
    checkAck(label);
    client.kill('SIGKILL');
    listener.kill('SIGKILL');
  });

  test('busybox udhcpc', async () => {
    const label = 'udhcpc';
    const { proc: listener } = await runListener(label);
    const client = lab.spawn(cli.ns, ['busybox', 'udhcpc', '-f', '-q', '-i', 'eth0', '-t', '5', '-T', '2', '-s', clientScript(label), '-O', 'rootpath', '-O', 'hostname', '-O', 'domain']);
    await waitFor(join(dir, `${label}-bound.env`), 40);
    await new Promise((r) => setTimeout(r, 200));
    const env = envFile(join(dir, `${label}-bound.env`));
    assert.equal(env.get('ip'), OFFERED);
    assert.equal(env.get('subnet'), '255.255.255.0');
    assert.equal(env.get('router'), SERVER);
    assert.equal(env.get('domain'), 'lab.example');
    assert.equal(env.get('hostname'), 'kaboot-node');
    assert.equal(env.get('rootpath'), ROOT_PATH, 'option 17, split across options and file, reassembled');
    checkAck(label);
    client.kill('SIGKILL');
    listener.kill('SIGKILL');
  });
});
