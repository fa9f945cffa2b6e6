// Device sockets in network namespaces: a server with two interfaces on two separate
// segments opens port 67 on each (the same port twice), and DHCP-like broadcasts from
// a client on each segment reach only the socket of their own interface; a broadcast
// reply sent through one socket leaves by that interface only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { ResultPromise } from 'execa';
import { NetLab, type Host } from '../helpers/netns.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const peerScript = fileURLToPath(new URL('./net-udp-peer.ts', import.meta.url));

interface PeerEvent { event: string; name?: string; data?: string; from?: string; port?: number; code?: string; message?: string; sockets?: Record<string, { address: string; port: number }> }

/** One net-udp-peer.ts process in a namespace, and the events it reported so far. */
class Peer {
  readonly events: PeerEvent[] = [];
  private waiters: Array<() => void> = [];
  constructor(readonly label: string, private readonly proc: ResultPromise) {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      this.events.push(JSON.parse(line) as PeerEvent);
      for (const w of this.waiters.splice(0)) w();
    });
    void proc.then(() => { for (const w of this.waiters.splice(0)) w(); });
  }

  static start(lab: NetLab, host: Host, label: string, sockets: Array<{ name: string; port: number; ifname?: string; address?: string; broadcast?: boolean }>): Peer {
    const proc = lab.spawn(host.ns, [process.execPath, '--import', 'tsx', peerScript, JSON.stringify({ sockets })], {
      cwd: repo, stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', buffer: { stdout: false, stderr: true },
    });
    return new Peer(label, proc);
  }

  /** The first event that matches; fails (with what was seen) if the peer exits or 10 s pass first. */
  async waitFor(what: string, match: (e: PeerEvent) => boolean): Promise<PeerEvent> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = this.events.find(match);
      if (found) return found;
      const exited = this.proc.exitCode !== null;
      if (exited || Date.now() > deadline) {
        const stderr = exited ? String((await this.proc).stderr ?? '') : '';
        assert.fail(`${this.label}: no ${what}; events: ${JSON.stringify(this.events)}${stderr ? `; stderr: ${stderr}` : ''}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** Ends the peer (it exits when its stdin closes), freeing its ports for the next test. */
  async stop() {
    this.proc.stdin!.end();
    await this.proc;
  }

  ready() { return this.waitFor('ready', (e) => e.event === 'ready' || e.event === 'open-failed'); }

  async send(name: string, address: string, port: number, data: string) {
    const report = await this.trySend(name, address, port, data);
    assert.equal(report.event, 'sent', `${this.label}: send of ${data} failed: ${report.message}`);
  }

  /** Sends and returns the peer's report, 'sent' or 'send-failed'. */
  async trySend(name: string, address: string, port: number, data: string): Promise<PeerEvent> {
    this.proc.stdin!.write(`${JSON.stringify({ name, address, port, data })}\n`);
    const report = await this.waitFor(`send of ${data}`, (e) => (e.event === 'sent' || e.event === 'send-failed') && e.name === name);
    // forget it so the next send waits for its own report
    this.events.splice(this.events.indexOf(report), 1);
    return report;
  }

  async setBroadcast(name: string, on: boolean) {
    this.proc.stdin!.write(`${JSON.stringify({ name, setBroadcast: on })}\n`);
    const report = await this.waitFor('broadcast-set', (e) => e.event === 'broadcast-set' && e.name === name);
    this.events.splice(this.events.indexOf(report), 1);
  }

  received(name: string) {
    return this.events.filter((e) => e.event === 'message' && e.name === name).map((e) => e.data);
  }

  receive(name: string, data: string) {
    return this.waitFor(`${name} receiving ${data}`, (e) => e.event === 'message' && e.name === name && e.data === data);
  }
}

let lab: NetLab;
let srv: Host;
let c0: Host;
let c1: Host;
let srvEth1Mac: string;

before(async () => {
  lab = await NetLab.create('nds');
  await lab.bridge('br1');
  srv = await lab.host('srv', { cidr: '10.50.0.1/24' });
  srvEth1Mac = await lab.attach(srv, 'eth1', { bridge: 'br1', cidr: '10.60.0.1/24' });
  c0 = await lab.host('c0', { cidr: '10.50.0.10/24' });
  c1 = await lab.host('c1', { cidr: '10.60.0.10/24', bridge: 'br1' });
  // A client sends its broadcasts by its default route, as a host with one NIC does.
  // The server has none on purpose: only the device binding tells its replies where to go.
  for (const c of [c0, c1]) await lab.exec(c.ns, ['ip', 'route', 'add', 'default', 'dev', 'eth0']);
});

after(async () => {
  await lab?.destroy();
});

test('two device sockets share port 67; each sees only its own segment, and a broadcast reply leaves by its own interface', async (t) => {
  const server = Peer.start(lab, srv, 'server', [{ name: 'eth0', ifname: 'eth0', port: 67 }, { name: 'eth1', ifname: 'eth1', port: 67 }]);
  const client0 = Peer.start(lab, c0, 'client0', [{ name: 'c', port: 68 }]);
  const client1 = Peer.start(lab, c1, 'client1', [{ name: 'c', port: 68 }]);
  t.after(() => Promise.all([server.stop(), client0.stop(), client1.stop()]));
  const ready = await server.ready();
  assert.equal(ready.event, 'ready', `server could not open its sockets: ${ready.message}`);
  assert.deepEqual(ready.sockets, { eth0: { address: '0.0.0.0', family: 'IPv4', port: 67 }, eth1: { address: '0.0.0.0', family: 'IPv4', port: 67 } });
  for (const c of [client0, client1]) assert.equal((await c.ready()).event, 'ready');

  await client0.send('c', '255.255.255.255', 67, 'discover-from-c0');
  await client1.send('c', '255.255.255.255', 67, 'discover-from-c1');
  const d0 = await server.receive('eth0', 'discover-from-c0');
  const d1 = await server.receive('eth1', 'discover-from-c1');
  assert.equal(d0.from, '10.50.0.10');
  assert.equal(d1.from, '10.60.0.10');
  // Fences: a later datagram on each segment. A socket reads its queue in order, so a
  // copy of the other segment's broadcast, had it been delivered, would show before.
  await client0.send('c', '255.255.255.255', 67, 'fence-c0');
  await client1.send('c', '255.255.255.255', 67, 'fence-c1');
  await server.receive('eth0', 'fence-c0');
  await server.receive('eth1', 'fence-c1');
  assert.deepEqual(server.received('eth0'), ['discover-from-c0', 'fence-c0']);
  assert.deepEqual(server.received('eth1'), ['discover-from-c1', 'fence-c1']);

  await server.send('eth1', '255.255.255.255', 68, 'offer-via-eth1');
  await client1.receive('c', 'offer-via-eth1');
  await server.send('eth0', '255.255.255.255', 68, 'fence-via-eth0');
  await client0.receive('c', 'fence-via-eth0');
  assert.deepEqual(client0.received('c'), ['fence-via-eth0']);
  assert.deepEqual(client1.received('c'), ['offer-via-eth1']);
});

// The control: without the device binding the same network does mix the segments, so
// the test above would see a leak if there were one.
test('control: a plain socket on port 67 hears both segments', async (t) => {
  const server = Peer.start(lab, srv, 'plain-server', [{ name: 'any', port: 67 }]);
  const client0 = Peer.start(lab, c0, 'client0', [{ name: 'c', port: 68 }]);
  const client1 = Peer.start(lab, c1, 'client1', [{ name: 'c', port: 68 }]);
  t.after(() => Promise.all([server.stop(), client0.stop(), client1.stop()]));
  for (const p of [server, client0, client1]) assert.equal((await p.ready()).event, 'ready', p.label);
  await client0.send('c', '255.255.255.255', 67, 'discover-from-c0');
  await client1.send('c', '255.255.255.255', 67, 'discover-from-c1');
  await server.receive('any', 'discover-from-c0');
  await server.receive('any', 'discover-from-c1');
});

test('without broadcast a device socket cannot broadcast until setBroadcast(true), which works after bind', async (t) => {
  const server = Peer.start(lab, srv, 'nobroadcast', [{ name: 'eth1', ifname: 'eth1', port: 4011, broadcast: false }]);
  const client1 = Peer.start(lab, c1, 'client1', [{ name: 'c', port: 68 }]);
  t.after(() => Promise.all([server.stop(), client1.stop()]));
  for (const p of [server, client1]) assert.equal((await p.ready()).event, 'ready', p.label);
  const refused = await server.trySend('eth1', '255.255.255.255', 68, 'refused');
  assert.equal(refused.event, 'send-failed');
  assert.match(refused.message ?? '', /EACCES/);
  await server.setBroadcast('eth1', true);
  await server.send('eth1', '255.255.255.255', 68, 'after-setBroadcast');
  await client1.receive('c', 'after-setBroadcast');
  assert.deepEqual(client1.received('c'), ['after-setBroadcast']);
});

test('a missing interface is refused with ENODEV, naming the interface', async () => {
  const peer = Peer.start(lab, srv, 'missing', [{ name: 'x', ifname: 'eth9', port: 67 }]);
  const e = await peer.ready();
  assert.equal(e.event, 'open-failed');
  assert.equal(e.code, 'ENODEV');
  assert.match(e.message ?? '', /cannot open UDP port 67 on interface eth9: .*No such device/);
});

test('a second socket on the same interface and port is refused with EADDRINUSE', async (t) => {
  const first = Peer.start(lab, srv, 'first', [{ name: 'a', ifname: 'eth0', port: 4011 }]);
  t.after(() => first.stop());
  assert.equal((await first.ready()).event, 'ready');
  const second = Peer.start(lab, srv, 'second', [{ name: 'b', ifname: 'eth0', port: 4011 }]);
  const e = await second.ready();
  assert.equal(e.event, 'open-failed');
  assert.equal(e.code, 'EADDRINUSE');
  assert.match(e.message ?? '', /on interface eth0: bind 0\.0\.0\.0:4011 on eth0/);
});

test('interface discovery in the two-NIC namespace: both NICs with their broadcast, loopback left out', async () => {
  const code = `
    import { ipv4Interfaces, selectInterfaces } from ${JSON.stringify(`${repo}src/net/interfaces.ts`)};
    let missing;
    try { selectInterfaces(['eth1', 'eth9']); } catch (e) { missing = { name: e.name, missing: e.missing, message: e.message }; }
    console.log(JSON.stringify({ all: ipv4Interfaces(), chosen: selectInterfaces(['eth1']).map((i) => i.name), missing }));`;
  const { stdout } = await lab.exec(srv.ns, [process.execPath, '--import', 'tsx', '--input-type=module', '-e', code], { cwd: repo });
  const seen = JSON.parse(String(stdout)) as { all: Array<{ name: string; mac: string; addresses: Array<{ cidr: string; broadcast: string }> }>; chosen: string[]; missing: { name: string; missing: string[]; message: string } };
  assert.deepEqual(seen.all, [
    { name: 'eth0', mac: srv.mac, addresses: [{ address: '10.50.0.1', netmask: '255.255.255.0', prefixLength: 24, cidr: '10.50.0.1/24', network: '10.50.0.0', broadcast: '10.50.0.255' }] },
    { name: 'eth1', mac: srvEth1Mac, addresses: [{ address: '10.60.0.1', netmask: '255.255.255.0', prefixLength: 24, cidr: '10.60.0.1/24', network: '10.60.0.0', broadcast: '10.60.0.255' }] },
  ]);
  assert.deepEqual(seen.chosen, ['eth1']);
  assert.equal(seen.missing.name, 'InterfaceSelectionError');
  assert.deepEqual(seen.missing.missing, ['eth9']);
  assert.match(seen.missing.message, /interface eth9 is not present .*eth0 \(10\.50\.0\.1\/24\), eth1 \(10\.60\.0\.1\/24\)/);
});
