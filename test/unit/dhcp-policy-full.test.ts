// RFC 2131 full mode, one state transition per test, against the pure policy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fullPolicy, type FullPolicyContext, type Outcome } from '../../src/dhcp/full-policy.js';
import { LeaseTable } from '../../src/dhcp/leases.js';
import { buildSubnet, subnetForRequest, type ServedSubnet } from '../../src/dhcp/subnets.js';
import { ipToInt } from '../../src/dhcp/pool.js';
import { BROADCAST_FLAG, MessageType, Opt, type DhcpPacket } from '../../src/dhcp/packet.js';
import { getOpt } from '../../src/dhcp/options.js';
import { decodePacket, encodePacket } from '../../src/dhcp/codec.js';
import { decideBoot } from '../../src/boot/decide.js';
import { defaults, type SubnetConfig } from '../../src/config/schema.js';
import { buildRequest, typeOf, type RequestFields } from '../helpers/dhcp-client.js';

const SERVER = '10.0.0.1';
const T0 = 1_700_000_000_000;
const A = '52:54:00:00:00:0a';
const B = '52:54:00:00:00:0b';
const R = '52:54:00:00:00:99';

const subnetConfig: SubnetConfig = {
  subnet: '10.0.0.0/24',
  range: ['10.0.0.100', '10.0.0.102'],
  routers: ['10.0.0.254'],
  dns_servers: ['10.0.0.53', '10.0.0.54'],
  domain_name: 'lab.example',
  lease_time: 3600,
  max_lease_time: 7200,
  hosts: [{ mac: R, address: '10.0.0.50', hostname: 'node50' }],
};

interface World {
  subnet: ServedSubnet;
  leases: LeaseTable;
  at(now: number, f?: Partial<FullPolicyContext>): FullPolicyContext;
  run(type: MessageType, mac: string, f?: RequestFields, now?: number, ctx?: Partial<FullPolicyContext>): Outcome;
}

function world(cfg: SubnetConfig = subnetConfig, authoritative = true): World {
  const subnet = buildSubnet(cfg, [SERVER]);
  const leases = new LeaseTable({ subnets: [subnet] });
  const at = (now: number, f: Partial<FullPolicyContext> = {}): FullPolicyContext => ({
    now,
    subnet,
    serverId: SERVER,
    ourAddresses: new Set([SERVER]),
    dhcp: { authoritative, offer_hold: 30, decline_quarantine: 600 },
    boot: defaults.boot,
    leases,
    nextServer: SERVER,
    decide: (client) => decideBoot({ client, boot: defaults.boot, serverIp: SERVER, httpPort: 80 }),
    ...f,
  });
  return { subnet, leases, at, run: (type, mac, f = {}, now = T0, ctx = {}) => fullPolicy(buildRequest(type, mac, f), at(now, ctx)) };
}

function replyOf(o: Outcome): { packet: DhcpPacket; to: { address: string; port: number; broadcast: boolean } } {
  assert.equal(o.kind, 'reply', o.kind === 'silent' ? o.reason : '');
  return (o as Extract<Outcome, { kind: 'reply' }>).reply;
}

function dora(w: World, mac: string, now = T0, f: RequestFields = {}): string {
  const offer = replyOf(w.run(MessageType.Discover, mac, f, now)).packet;
  const ack = w.run(MessageType.Request, mac, { ...f, options: { ...f.options, [Opt.ServerId]: SERVER, [Opt.RequestedIp]: offer.yiaddr } }, now);
  assert.equal(typeOf(replyOf(ack).packet), MessageType.Ack);
  return replyOf(ack).packet.yiaddr;
}

test('DISCOVER → OFFER with the subnet options, broadcast to 255.255.255.255:68', () => {
  const w = world();
  const { packet, to } = replyOf(w.run(MessageType.Discover, A, { xid: 42 }));
  assert.equal(typeOf(packet), MessageType.Offer);
  assert.equal(packet.xid, 42);
  assert.equal(packet.yiaddr, '10.0.0.100');
  assert.equal(getOpt(packet.options, Opt.ServerId), SERVER);
  assert.equal(getOpt(packet.options, Opt.SubnetMask), '255.255.255.0');
  assert.deepEqual(getOpt(packet.options, Opt.Routers), ['10.0.0.254']);
  assert.deepEqual(getOpt(packet.options, Opt.DnsServers), ['10.0.0.53', '10.0.0.54']);
  assert.equal(getOpt(packet.options, Opt.LeaseTime), 3600);
  assert.equal(getOpt(packet.options, Opt.RenewalTime), 1800);
  assert.equal(getOpt(packet.options, Opt.RebindingTime), 3150);
  assert.deepEqual(to, { address: '255.255.255.255', port: 68, broadcast: true });
  // a reply round-trips through the codec
  const back = decodePacket(encodePacket(packet));
  assert.ok(back.ok);
});

test('options: the parameter request list orders the reply; unrequested extras (domain) are dropped', () => {
  const w = world();
  const { packet } = replyOf(w.run(MessageType.Discover, A, { options: { [Opt.ParameterRequestList]: [6, 3, 1] } }));
  assert.deepEqual([...packet.options.keys()].slice(0, 5), [53, 54, 6, 3, 1]);
  assert.equal(packet.options.has(Opt.DomainName), false);
  assert.equal(packet.options.has(Opt.LeaseTime), true);
  const asked = replyOf(w.run(MessageType.Discover, B, { options: { [Opt.ParameterRequestList]: [15] } })).packet;
  assert.equal(getOpt(asked.options, Opt.DomainName), 'lab.example');
});

test('lease time: the client\'s option 51 is honoured up to max_lease_time', () => {
  const w = world();
  const short = replyOf(w.run(MessageType.Discover, A, { options: { [Opt.LeaseTime]: 600 } })).packet;
  assert.equal(getOpt(short.options, Opt.LeaseTime), 600);
  const long = replyOf(w.run(MessageType.Discover, B, { options: { [Opt.LeaseTime]: 1_000_000 } })).packet;
  assert.equal(getOpt(long.options, Opt.LeaseTime), 7200);
});

test('offer hold: an offered address is not offered to another client until the hold ends', () => {
  const w = world();
  const a = replyOf(w.run(MessageType.Discover, A)).packet.yiaddr;
  const b = replyOf(w.run(MessageType.Discover, B)).packet.yiaddr;
  assert.notEqual(a, b);
  // the same client asking again gets the same offer
  assert.equal(replyOf(w.run(MessageType.Discover, A)).packet.yiaddr, a);
});

test('REQUEST (selecting) for us → ACK; the lease is committed and bound', async () => {
  const w = world();
  const offer = replyOf(w.run(MessageType.Discover, A)).packet;
  const o = w.run(MessageType.Request, A, { options: { [Opt.ServerId]: SERVER, [Opt.RequestedIp]: offer.yiaddr } });
  assert.equal(o.kind, 'reply');
  await (o as { commit?: Promise<void> }).commit;
  const ack = replyOf(o).packet;
  assert.equal(typeOf(ack), MessageType.Ack);
  assert.equal(ack.yiaddr, offer.yiaddr);
  assert.equal(w.leases.get(ipToInt(offer.yiaddr))?.state, 'bound');
});

test('REQUEST (selecting) naming another server → silent, and our offer is withdrawn', () => {
  const w = world({ ...subnetConfig, range: ['10.0.0.100', '10.0.0.100'] });
  const offer = replyOf(w.run(MessageType.Discover, A)).packet;
  assert.equal(w.run(MessageType.Discover, B).kind, 'silent', 'the only address is held for A');
  const o = w.run(MessageType.Request, A, { options: { [Opt.ServerId]: '10.0.0.2', [Opt.RequestedIp]: offer.yiaddr } });
  assert.equal(o.kind, 'silent');
  assert.equal(replyOf(w.run(MessageType.Discover, B)).packet.yiaddr, offer.yiaddr, 'the address is free again');
});

test('REQUEST (selecting) for an address leased to another client → NAK, broadcast', () => {
  const w = world();
  const a = dora(w, A);
  const o = w.run(MessageType.Request, B, { options: { [Opt.ServerId]: SERVER, [Opt.RequestedIp]: a } });
  const { packet, to } = replyOf(o);
  assert.equal(typeOf(packet), MessageType.Nak);
  assert.equal(packet.yiaddr, '0.0.0.0');
  assert.equal(to.broadcast, true);
  assert.ok(getOpt(packet.options, Opt.Message));
});

test('INIT-REBOOT: own address → ACK; wrong subnet → NAK; taken → NAK', () => {
  const w = world();
  const a = dora(w, A);
  assert.equal(typeOf(replyOf(w.run(MessageType.Request, A, { options: { [Opt.RequestedIp]: a } })).packet), MessageType.Ack);
  const wrong = replyOf(w.run(MessageType.Request, A, { options: { [Opt.RequestedIp]: '192.168.1.7' } }));
  assert.equal(typeOf(wrong.packet), MessageType.Nak);
  assert.equal(wrong.to.address, '255.255.255.255');
  assert.equal(typeOf(replyOf(w.run(MessageType.Request, B, { options: { [Opt.RequestedIp]: a } })).packet), MessageType.Nak);
});

test('INIT-REBOOT of an unknown client: authoritative ACKs a free pool address; not authoritative stays silent', () => {
  const auth = world();
  assert.equal(typeOf(replyOf(auth.run(MessageType.Request, A, { options: { [Opt.RequestedIp]: '10.0.0.101' } })).packet), MessageType.Ack);
  const quiet = world(subnetConfig, false);
  assert.equal(quiet.run(MessageType.Request, A, { options: { [Opt.RequestedIp]: '10.0.0.101' } }).kind, 'silent');
  assert.equal(quiet.run(MessageType.Request, A, { options: { [Opt.RequestedIp]: '192.168.1.7' } }).kind, 'silent');
  assert.equal(quiet.run(MessageType.Request, A, { options: { [Opt.RequestedIp]: '10.0.0.7' } }).kind, 'silent');
  // authoritative, inside the subnet but outside the pool: NAK
  assert.equal(typeOf(replyOf(auth.run(MessageType.Request, B, { options: { [Opt.RequestedIp]: '10.0.0.7' } })).packet), MessageType.Nak);
});

test('RENEWING (unicast, ciaddr) → ACK sent to ciaddr:68 with the lease extended', async () => {
  const w = world();
  const a = dora(w, A, T0);
  const o = w.run(MessageType.Request, A, { ciaddr: a }, T0 + 1800_000);
  const { packet, to } = replyOf(o);
  await (o as { commit?: Promise<void> }).commit;
  assert.equal(typeOf(packet), MessageType.Ack);
  assert.equal(packet.ciaddr, a);
  assert.equal(packet.yiaddr, a);
  assert.deepEqual(to, { address: a, port: 68, broadcast: false });
  assert.equal(w.leases.get(ipToInt(a))?.expires, T0 + 1800_000 + 3600_000);
});

test('REBINDING (broadcast, ciaddr) of an expired lease nobody took → ACK; of one another client holds → NAK', () => {
  const w = world();
  const a = dora(w, A, T0);
  const later = T0 + 4000_000;
  assert.equal(typeOf(replyOf(w.run(MessageType.Request, A, { ciaddr: a, broadcast: true }, later)).packet), MessageType.Ack);
  const nak = replyOf(w.run(MessageType.Request, B, { ciaddr: a, broadcast: true }, later));
  assert.equal(typeOf(nak.packet), MessageType.Nak);
});

test('RENEWING with no record and not authoritative → silent', () => {
  const w = world(subnetConfig, false);
  assert.equal(w.run(MessageType.Request, A, { ciaddr: '10.0.0.101' }).kind, 'silent');
});

test('DECLINE quarantines the address; the client gets another one', async () => {
  const w = world();
  const a = dora(w, A);
  const o = w.run(MessageType.Decline, A, { options: { [Opt.ServerId]: SERVER, [Opt.RequestedIp]: a } });
  assert.equal(o.kind, 'silent');
  await o.commit;
  assert.equal(w.leases.get(ipToInt(a))?.state, 'declined');
  const next = replyOf(w.run(MessageType.Discover, A)).packet.yiaddr;
  assert.notEqual(next, a);
  // after the quarantine the address is handed out again
  const w2 = world({ ...subnetConfig, range: ['10.0.0.100', '10.0.0.100'] });
  const only = dora(w2, A);
  w2.run(MessageType.Decline, A, { options: { [Opt.ServerId]: SERVER, [Opt.RequestedIp]: only } });
  assert.equal(w2.run(MessageType.Discover, B, {}, T0 + 599_000).kind, 'silent');
  assert.equal(replyOf(w2.run(MessageType.Discover, B, {}, T0 + 601_000)).packet.yiaddr, only);
});

test('RELEASE frees the address; the same client gets it back first', async () => {
  const w = world({ ...subnetConfig, range: ['10.0.0.100', '10.0.0.101'] });
  const a = dora(w, A);
  const o = w.run(MessageType.Release, A, { ciaddr: a, options: { [Opt.ServerId]: SERVER } });
  assert.equal(o.kind, 'silent');
  await o.commit;
  assert.equal(w.leases.get(ipToInt(a))?.state, 'released');
  assert.equal(replyOf(w.run(MessageType.Discover, A)).packet.yiaddr, a);
  // a RELEASE from another client does nothing
  assert.equal(w.run(MessageType.Release, B, { ciaddr: a }).commit, undefined);
});

test('INFORM → ACK with options, no address and no lease time, to ciaddr', () => {
  const w = world();
  const { packet, to } = replyOf(w.run(MessageType.Inform, A, { ciaddr: '10.0.0.77' }));
  assert.equal(typeOf(packet), MessageType.Ack);
  assert.equal(packet.yiaddr, '0.0.0.0');
  assert.equal(packet.ciaddr, '10.0.0.77');
  assert.equal(packet.options.has(Opt.LeaseTime), false);
  assert.deepEqual(getOpt(packet.options, Opt.Routers), ['10.0.0.254']);
  assert.deepEqual(to, { address: '10.0.0.77', port: 68, broadcast: false });
  assert.equal(w.leases.size, 0);
});

test('reservation: the MAC gets its fixed address and host name; nobody else may have it', () => {
  const w = world();
  const offer = replyOf(w.run(MessageType.Discover, R)).packet;
  assert.equal(offer.yiaddr, '10.0.0.50');
  assert.equal(getOpt(offer.options, Opt.HostName), 'node50');
  assert.equal(dora(w, R), '10.0.0.50');
  assert.equal(typeOf(replyOf(w.run(MessageType.Request, A, { options: { [Opt.RequestedIp]: '10.0.0.50' } })).packet), MessageType.Nak);
  // a reserved client asking for a pool address is sent to its own
  assert.equal(typeOf(replyOf(w.run(MessageType.Request, R, { options: { [Opt.RequestedIp]: '10.0.0.100' } })).packet), MessageType.Nak);
});

test('pool exhaustion: DISCOVER is left unanswered, flagged exhausted', () => {
  const w = world();
  dora(w, '52:54:00:00:01:01');
  dora(w, '52:54:00:00:01:02');
  dora(w, '52:54:00:00:01:03');
  const o = w.run(MessageType.Discover, A);
  assert.equal(o.kind, 'silent');
  assert.equal((o as { exhausted?: boolean }).exhausted, true);
  assert.match((o as { reason: string }).reason, /pool exhausted/);
});

test('expired leases are reused; the old client gets its previous address back', () => {
  const w = world({ ...subnetConfig, range: ['10.0.0.100', '10.0.0.101'] });
  const a = dora(w, A, T0);
  const later = T0 + 3601_000;
  assert.equal(replyOf(w.run(MessageType.Discover, A, {}, later)).packet.yiaddr, a);
  const w2 = world({ ...subnetConfig, range: ['10.0.0.100', '10.0.0.100'] });
  const only = dora(w2, A, T0);
  assert.equal(replyOf(w2.run(MessageType.Discover, B, {}, later)).packet.yiaddr, only);
});

test('client identity: option 61 when present, so a new MAC with the same client id keeps the lease', () => {
  const w = world();
  const id = { [Opt.ClientId]: Buffer.from('01aabbcc', 'hex') };
  const a = dora(w, A, T0, { options: id });
  assert.equal(replyOf(w.run(MessageType.Discover, B, { options: id })).packet.yiaddr, a);
  assert.notEqual(replyOf(w.run(MessageType.Discover, B)).packet.yiaddr, a);
});

test('relay: subnet chosen by giaddr; replies go to giaddr:67; relayed NAK carries the broadcast bit; option 82 echoed', () => {
  const local = buildSubnet(subnetConfig, [SERVER]);
  const remote = buildSubnet({ subnet: '10.20.0.0/24', range: ['10.20.0.10', '10.20.0.20'], routers: ['10.20.0.1'] });
  assert.equal(subnetForRequest('10.20.0.1', local, [local, remote]), remote);
  assert.equal(subnetForRequest('0.0.0.0', local, [local, remote]), local);
  assert.equal(subnetForRequest('172.16.0.1', local, [local, remote]), undefined);
  const leases = new LeaseTable({ subnets: [local, remote] });
  const ctx: FullPolicyContext = {
    now: T0, subnet: remote, serverId: SERVER, ourAddresses: new Set([SERVER]),
    dhcp: { authoritative: true, offer_hold: 30, decline_quarantine: 600 }, boot: defaults.boot, leases, nextServer: SERVER,
    decide: (client) => decideBoot({ client, boot: defaults.boot, serverIp: SERVER, httpPort: 80 }),
  };
  const relayInfo = Buffer.from([1, 3, 0x61, 0x62, 0x63]);
  const o = fullPolicy(buildRequest(MessageType.Discover, A, { giaddr: '10.20.0.1', raw: [[Opt.RelayAgentInfo, relayInfo]] }), ctx);
  const { packet, to } = replyOf(o);
  assert.equal(packet.yiaddr, '10.20.0.10');
  assert.equal(packet.giaddr, '10.20.0.1');
  assert.deepEqual(getOpt(packet.options, Opt.Routers), ['10.20.0.1']);
  assert.deepEqual(to, { address: '10.20.0.1', port: 67, broadcast: false });
  assert.deepEqual(packet.options.get(Opt.RelayAgentInfo), relayInfo);
  const nak = replyOf(fullPolicy(buildRequest(MessageType.Request, A, { giaddr: '10.20.0.1', options: { [Opt.RequestedIp]: '10.0.0.100' } }), ctx));
  assert.equal(typeOf(nak.packet), MessageType.Nak);
  assert.equal(nak.packet.flags & BROADCAST_FLAG, BROADCAST_FLAG);
  assert.equal(nak.to.address, '10.20.0.1');
});

test('a PXE client in full mode gets its address and its boot file (pxelinux options for pxelinux)', () => {
  const w = world();
  const { packet } = replyOf(w.run(MessageType.Discover, A, { options: { [Opt.VendorClass]: 'PXEClient:Arch:00000:UNDI:002001', [Opt.ClientArch]: [0] } }));
  assert.equal(packet.yiaddr, '10.0.0.100');
  assert.equal(packet.siaddr, SERVER);
  assert.equal(packet.file, 'pxelinux.0');
  assert.equal(getOpt(packet.options, Opt.VendorClass), 'PXEClient');
  assert.equal(getOpt(packet.options, Opt.TftpServerName), SERVER);
  assert.equal(getOpt(packet.options, Opt.PxelinuxMagic), true);
  assert.equal(getOpt(packet.options, Opt.PxelinuxRebootTime), 30);
  assert.equal(getOpt(packet.options, Opt.VendorSpecific)?.discoveryControl, 8);
  // next_server overrides the receiving interface
  const ns = replyOf(w.run(MessageType.Discover, B, { options: { [Opt.VendorClass]: 'PXEClient:Arch:00007:UNDI:003016', [Opt.ClientArch]: [7] } }, T0, { nextServer: '10.0.0.9' })).packet;
  assert.equal(ns.siaddr, '10.0.0.9');
  assert.equal(ns.file, 'ipxe.efi');
  assert.equal(ns.options.has(Opt.PxelinuxMagic), false);
  // a plain client gets no boot information
  const plain = replyOf(w.run(MessageType.Discover, '52:54:00:00:00:0c')).packet;
  assert.equal(plain.file, '');
  assert.equal(plain.options.has(Opt.VendorClass), false);
});

test('iPXE in full mode gets the iPXE script URL', () => {
  const w = world();
  const { packet } = replyOf(w.run(MessageType.Discover, A, {
    options: { [Opt.VendorClass]: 'PXEClient:Arch:00007:UNDI:003010', [Opt.ClientArch]: [7] },
    raw: [[Opt.UserClass, Buffer.from('iPXE')]],
  }));
  assert.equal(getOpt(packet.options, Opt.BootfileName), `http://${SERVER}:80/ipxe/52-54-00-00-00-0a.ipxe`);
});

test('messages a server never answers: OFFER/ACK from a client, no message type, DECLINE for another server', () => {
  const w = world();
  assert.equal(w.run(MessageType.Offer, A).kind, 'silent');
  const noType = buildRequest(MessageType.Discover, A);
  noType.options.delete(Opt.MessageType);
  assert.equal(fullPolicy(noType, w.at(T0)).kind, 'silent');
  const a = dora(w, A);
  assert.equal(w.run(MessageType.Decline, A, { options: { [Opt.ServerId]: '10.0.0.2', [Opt.RequestedIp]: a } }).commit, undefined);
});

test('full mode: boot.pxelinux config_file and path_prefix reach a pxelinux client as options 209 and 210', () => {
  const w = world();
  const boot = { ...defaults.boot, pxelinux: { ...defaults.boot.pxelinux, config_file: 'pxelinux.cfg/lab', path_prefix: 'boot/' } };
  const { packet } = replyOf(w.run(MessageType.Discover, A, { options: { [Opt.VendorClass]: 'PXEClient:Arch:00000:UNDI:002001', [Opt.ClientArch]: [0] } }, T0, {
    boot,
    decide: (client) => decideBoot({ client, boot, serverIp: SERVER, httpPort: 80 }),
  }));
  assert.equal(packet.file, 'pxelinux.0');
  assert.equal(getOpt(packet.options, Opt.PxelinuxConfigFile), 'pxelinux.cfg/lab');
  assert.equal(getOpt(packet.options, Opt.PxelinuxPathPrefix), 'boot/');
  // and they survive the wire
  const back = decodePacket(encodePacket(packet));
  assert.ok(back.ok);
  assert.equal(getOpt(back.packet.options, Opt.PxelinuxConfigFile), 'pxelinux.cfg/lab');
  assert.equal(getOpt(back.packet.options, Opt.PxelinuxPathPrefix), 'boot/');
});
