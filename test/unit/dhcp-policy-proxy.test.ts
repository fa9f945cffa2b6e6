// ProxyDHCP: boot information for network-boot clients only, never an address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { proxyPolicy, type ProxyPolicyContext } from '../../src/dhcp/proxy-policy.js';
import type { Outcome } from '../../src/dhcp/full-policy.js';
import { MessageType, Opt, type DhcpPacket } from '../../src/dhcp/packet.js';
import { getOpt } from '../../src/dhcp/options.js';
import { decideBoot } from '../../src/boot/decide.js';
import { defaults } from '../../src/config/schema.js';
import type { NodeRecord } from '../../src/nodes/registry.js';
import { buildRequest, typeOf, type RequestFields } from '../helpers/dhcp-client.js';

const SERVER = '10.5.0.1';
const MAC = '52:54:00:aa:bb:cc';
const BIOS = { [Opt.VendorClass]: 'PXEClient:Arch:00000:UNDI:002001', [Opt.ClientArch]: [0] };
const UEFI = { [Opt.VendorClass]: 'PXEClient:Arch:00007:UNDI:003016', [Opt.ClientArch]: [7] };
const UUID = Buffer.from('00' + '11223344556677889900aabbccddeeff', 'hex');

function ctx(port: 'dhcp' | 'pxe', f: Partial<ProxyPolicyContext> = {}, nodes: Record<string, NodeRecord> = {}): ProxyPolicyContext {
  return {
    serverId: SERVER,
    ourAddresses: new Set([SERVER]),
    nextServer: SERVER,
    boot: defaults.boot,
    decide: (client) => decideBoot({ client, ...(nodes[client.mac] ? { node: nodes[client.mac]! } : {}), boot: defaults.boot, serverIp: SERVER, httpPort: 8080 }),
    port,
    source: { address: '0.0.0.0', port: 68 },
    ...f,
  };
}

const run = (type: MessageType, f: RequestFields, c: ProxyPolicyContext): Outcome => proxyPolicy(buildRequest(type, MAC, f), c);
function reply(o: Outcome): { packet: DhcpPacket; to: { address: string; port: number } } {
  assert.equal(o.kind, 'reply', o.kind === 'silent' ? o.reason : '');
  return (o as Extract<Outcome, { kind: 'reply' }>).reply;
}

test('proxy: clients without a PXE vendor class get nothing (dhclient, udhcpc)', () => {
  assert.equal(run(MessageType.Discover, {}, ctx('dhcp')).kind, 'silent');
  assert.equal(run(MessageType.Discover, { options: { [Opt.VendorClass]: 'udhcp 1.36.1' } }, ctx('dhcp')).kind, 'silent');
  assert.equal(run(MessageType.Request, { options: { [Opt.ServerId]: SERVER } }, ctx('dhcp')).kind, 'silent');
  assert.equal(run(MessageType.Request, {}, ctx('pxe')).kind, 'silent');
});

test('proxy: BIOS PXE DISCOVER → OFFER without an address, with PXEClient, server id, next-server, file, option 43 and pxelinux options', () => {
  const { packet, to } = reply(run(MessageType.Discover, { options: BIOS, raw: [[Opt.ClientUuid, UUID]] }, ctx('dhcp')));
  assert.equal(typeOf(packet), MessageType.Offer);
  assert.equal(packet.yiaddr, '0.0.0.0');
  assert.equal(packet.siaddr, SERVER);
  assert.equal(packet.file, 'pxelinux.0');
  assert.equal(getOpt(packet.options, Opt.ServerId), SERVER);
  assert.equal(getOpt(packet.options, Opt.VendorClass), 'PXEClient');
  assert.equal(getOpt(packet.options, Opt.VendorSpecific)?.discoveryControl, 8);
  assert.equal(getOpt(packet.options, Opt.PxelinuxMagic), true);
  assert.deepEqual(packet.options.get(Opt.ClientUuid), UUID);
  for (const code of [Opt.SubnetMask, Opt.Routers, Opt.LeaseTime]) assert.equal(packet.options.has(code), false);
  assert.equal(to.address, '255.255.255.255');
  assert.equal(to.port, 68);
});

test('proxy: UEFI PXE DISCOVER → OFFER without option 43 (the ROM then asks port 4011)', () => {
  const { packet } = reply(run(MessageType.Discover, { options: UEFI }, ctx('dhcp')));
  assert.equal(packet.yiaddr, '0.0.0.0');
  assert.equal(packet.file, 'ipxe.efi');
  assert.equal(packet.options.has(Opt.VendorSpecific), false);
});

test('proxy: port 4011 REQUEST → ACK with the boot file, back to where it came from, boot item echoed', () => {
  const item = Buffer.from([71, 4, 0x80, 0x00, 0x00, 0x00, 255]);
  const o = run(MessageType.Request, { ciaddr: '10.5.0.77', options: UEFI, raw: [[Opt.VendorSpecific, item]] }, ctx('pxe', { source: { address: '10.5.0.77', port: 68 } }));
  const { packet, to } = reply(o);
  assert.equal(typeOf(packet), MessageType.Ack);
  assert.equal(packet.yiaddr, '0.0.0.0');
  assert.equal(packet.ciaddr, '10.5.0.77');
  assert.equal(packet.file, 'ipxe.efi');
  assert.deepEqual(getOpt(packet.options, Opt.VendorSpecific)?.bootItem, { type: 0x8000, layer: 0 });
  assert.deepEqual(to, { address: '10.5.0.77', port: 68, broadcast: false });
});

test('proxy: iPXE (user class iPXE) gets the iPXE script URL, on 67 and on 4011', () => {
  const f = { options: UEFI, raw: [[Opt.UserClass, Buffer.from('iPXE')]] as [number, Buffer][] };
  const url = `http://${SERVER}:8080/ipxe/52-54-00-aa-bb-cc.ipxe`;
  assert.equal(getOpt(reply(run(MessageType.Discover, f, ctx('dhcp'))).packet.options, Opt.BootfileName), url);
  assert.equal(getOpt(reply(run(MessageType.Request, f, ctx('pxe', { source: { address: '10.5.0.9', port: 68 } }))).packet.options, Opt.BootfileName), url);
});

test('proxy: a REQUEST on port 67 for the address server is left alone; one naming us gets an ACK without address', () => {
  assert.equal(run(MessageType.Request, { options: { ...BIOS, [Opt.ServerId]: '10.5.0.254', [Opt.RequestedIp]: '10.5.0.77' } }, ctx('dhcp')).kind, 'silent');
  assert.equal(run(MessageType.Request, { options: { ...BIOS, [Opt.RequestedIp]: '10.5.0.77' } }, ctx('dhcp')).kind, 'silent');
  const { packet } = reply(run(MessageType.Request, { options: { ...BIOS, [Opt.ServerId]: SERVER } }, ctx('dhcp')));
  assert.equal(typeOf(packet), MessageType.Ack);
  assert.equal(packet.yiaddr, '0.0.0.0');
});

test('proxy: a relayed PXE DISCOVER is answered to the relay', () => {
  const { to, packet } = reply(run(MessageType.Discover, { giaddr: '10.9.0.1', options: BIOS }, ctx('dhcp')));
  assert.deepEqual(to, { address: '10.9.0.1', port: 67, broadcast: false });
  assert.equal(packet.giaddr, '10.9.0.1');
});

test('proxy: an architecture without a boot file gets nothing; UEFI HTTP boot gets an http URL and HTTPClient', () => {
  assert.equal(run(MessageType.Discover, { options: { [Opt.VendorClass]: 'PXEClient:Arch:00010:UNDI:003000', [Opt.ClientArch]: [10] } }, ctx('dhcp')).kind, 'silent');
  const { packet } = reply(run(MessageType.Discover, { options: { [Opt.VendorClass]: 'HTTPClient:Arch:00016:UNDI:003001', [Opt.ClientArch]: [16] } }, ctx('dhcp')));
  assert.equal(getOpt(packet.options, Opt.VendorClass), 'HTTPClient');
  assert.equal(getOpt(packet.options, Opt.BootfileName), `http://${SERVER}:8080/ipxe.efi`);
});

test('proxy: INFORM and DECLINE on port 67 are not answered', () => {
  assert.equal(run(MessageType.Inform, { ciaddr: '10.5.0.7', options: BIOS }, ctx('dhcp')).kind, 'silent');
  assert.equal(run(MessageType.Decline, { options: BIOS }, ctx('dhcp')).kind, 'silent');
});

test('proxy: a client with no boot file is not answered, but the decision is kept for the log', () => {
  const o = run(MessageType.Discover, { options: { [Opt.VendorClass]: 'PXEClient:Arch:00010:UNDI:003000', [Opt.ClientArch]: [10] } }, ctx('dhcp'));
  assert.equal(o.kind, 'silent');
  assert.ok(o.boot && 'none' in o.boot.decision && /ARM32/.test(o.boot.decision.none));
});

test('proxy: boot.pxelinux config_file and path_prefix go out as options 209 and 210 to pxelinux only; unset, neither is sent', () => {
  assert.equal(defaults.boot.pxelinux.config_file, undefined);
  const plain = reply(run(MessageType.Discover, { options: BIOS }, ctx('dhcp'))).packet;
  assert.equal(plain.options.has(Opt.PxelinuxConfigFile), false);
  assert.equal(plain.options.has(Opt.PxelinuxPathPrefix), false);
  const boot = { ...defaults.boot, pxelinux: { ...defaults.boot.pxelinux, config_file: 'pxelinux.cfg/lab', path_prefix: 'boot/' } };
  const withKeys = (port: 'dhcp' | 'pxe', source = { address: '0.0.0.0', port: 68 }) => ctx(port, { boot, source, decide: (client) => decideBoot({ client, boot, serverIp: SERVER, httpPort: 8080 }) });
  const bios = reply(run(MessageType.Discover, { options: BIOS }, withKeys('dhcp'))).packet;
  assert.equal(getOpt(bios.options, Opt.PxelinuxMagic), true);
  assert.equal(getOpt(bios.options, Opt.PxelinuxConfigFile), 'pxelinux.cfg/lab');
  assert.equal(getOpt(bios.options, Opt.PxelinuxPathPrefix), 'boot/');
  // pxelinux does not ask for them in option 55; they are sent all the same (after the magic 208)
  const codes = [...bios.options.keys()];
  assert.ok(codes.indexOf(Opt.PxelinuxMagic) < codes.indexOf(Opt.PxelinuxConfigFile), codes.join(','));
  // ipxe.efi is no pxelinux: none of 208-211
  const uefi = reply(run(MessageType.Request, { options: UEFI, ciaddr: '10.5.0.50' }, withKeys('pxe', { address: '10.5.0.50', port: 68 }))).packet;
  assert.equal(uefi.file, 'ipxe.efi');
  for (const code of [Opt.PxelinuxMagic, Opt.PxelinuxConfigFile, Opt.PxelinuxPathPrefix, Opt.PxelinuxRebootTime]) assert.equal(uefi.options.has(code), false);
});
