import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { decodePacket, encodePacket, maxReplySize, BOOTP_MIN_SIZE, type DecodeResult } from '../../src/dhcp/codec.js';
import { DhcpEncodeError, type DhcpDecodeErrorCode } from '../../src/dhcp/errors.js';
import { getOpt, setOpt } from '../../src/dhcp/options.js';
import { DiscoveryControl } from '../../src/dhcp/pxe-options.js';
import { walkTlvs } from '../../src/dhcp/wire.js';
import { BOOTREPLY, BOOTREQUEST, MessageType, Opt, macOf, type DhcpPacket } from '../../src/dhcp/packet.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/dhcp/', import.meta.url));
const fixture = (name: string) => readFileSync(join(FIXTURES, name));

function decoded(buf: Uint8Array): DhcpPacket {
  const r = decodePacket(buf);
  if (!r.ok) assert.fail(`decode failed: ${r.error.code}: ${r.error.message}`);
  return r.packet;
}

function errorCode(r: DecodeResult): DhcpDecodeErrorCode | undefined {
  return r.ok ? undefined : r.error.code;
}

/** A request with the given options-field bytes and optional sname/file contents. */
function raw(options: number[], fields: { sname?: number[]; file?: number[]; op?: number; hlen?: number } = {}): Buffer {
  const b = Buffer.alloc(240);
  b[0] = fields.op ?? BOOTREQUEST;
  b[1] = 1;
  b[2] = fields.hlen ?? 6;
  b.writeUInt32BE(0xdeadbeef, 4);
  Buffer.from('525400abcdef', 'hex').copy(b, 28);
  Buffer.from(fields.sname ?? []).copy(b, 44);
  Buffer.from(fields.file ?? []).copy(b, 108);
  Buffer.from([99, 130, 83, 99]).copy(b, 236);
  return Buffer.concat([b, Buffer.from(options)]);
}

function packet(options: Map<number, Buffer>, over: Partial<DhcpPacket> = {}): DhcpPacket {
  return {
    op: BOOTREPLY,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 0x01020304,
    secs: 0,
    flags: 0x8000,
    ciaddr: '0.0.0.0',
    yiaddr: '10.1.2.3',
    siaddr: '10.1.2.1',
    giaddr: '0.0.0.0',
    chaddr: Buffer.concat([Buffer.from('525400abcdef', 'hex'), Buffer.alloc(10)]),
    sname: '',
    file: '',
    options,
    ...over,
  };
}

function assertSamePacket(a: DhcpPacket, b: DhcpPacket) {
  const { options: ao, ...af } = a;
  const { options: bo, ...bf } = b;
  assert.deepEqual(af, bf);
  assert.deepEqual(new Map([...ao].sort((x, y) => x[0] - y[0])), new Map([...bo].sort((x, y) => x[0] - y[0])));
}

describe('fixtures captured from real clients', () => {
  test('dhclient DISCOVER and REQUEST', () => {
    for (const name of ['dhclient-discover.bin', 'dhclient-request.bin']) {
      const p = decoded(fixture(name));
      assert.equal(p.op, BOOTREQUEST);
      assert.equal(macOf(p), '52:54:00:c0:ff:01');
      assert.equal(getOpt(p.options, Opt.HostName), 'kaboot-dhclient');
      assert.deepEqual(getOpt(p.options, Opt.ParameterRequestList), [1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42]);
      assert.equal(getOpt(p.options, Opt.VendorClass), undefined);
    }
    const req = decoded(fixture('dhclient-request.bin'));
    assert.equal(getOpt(req.options, Opt.MessageType), MessageType.Request);
    assert.equal(getOpt(req.options, Opt.RequestedIp), '10.77.0.100');
    assert.equal(getOpt(req.options, Opt.ServerId), '10.77.0.1');
    assert.equal(getOpt(decoded(fixture('dhclient-discover.bin')).options, Opt.MessageType), MessageType.Discover);
  });

  test('busybox udhcpc, plain and with a PXE vendor class', () => {
    const plain = decoded(fixture('udhcpc-discover.bin'));
    assert.equal(macOf(plain), '52:54:00:c0:ff:01');
    assert.equal(getOpt(plain.options, Opt.HostName), 'kaboot-udhcpc');
    assert.equal(getOpt(plain.options, Opt.VendorClass), 'udhcp 1.35.0');
    assert.deepEqual(getOpt(plain.options, Opt.ParameterRequestList), [1, 3, 6, 12, 15, 28, 42]);
    assert.deepEqual(getOpt(plain.options, Opt.ClientId), Buffer.from('01525400c0ff01', 'hex'));
    assert.equal(getOpt(plain.options, Opt.MaxMessageSize), 576);
    assert.equal(getOpt(plain.options, Opt.ClientArch), undefined, 'udhcpc sends no option 93');

    const pxe = decoded(fixture('udhcpc-pxe-discover.bin'));
    assert.equal(getOpt(pxe.options, Opt.VendorClass), 'PXEClient:Arch:00000:UNDI:002001');
    assert.equal(getOpt(pxe.options, Opt.HostName), 'kaboot-pxe');
    assert.deepEqual(getOpt(pxe.options, Opt.ParameterRequestList), [1, 3, 6, 12, 15, 28, 42, 43, 66, 67]);
    const req = decoded(fixture('udhcpc-pxe-request.bin'));
    assert.equal(getOpt(req.options, Opt.MessageType), MessageType.Request);
    assert.equal(getOpt(req.options, Opt.RequestedIp), '10.77.0.100');
  });

  test('iPXE on BIOS (SeaBIOS + efi-e1000.rom)', () => {
    for (const name of ['ipxe-bios-discover.bin', 'ipxe-bios-request.bin']) {
      const p = decoded(fixture(name));
      assert.equal(macOf(p), '52:54:00:c0:ff:10');
      assert.deepEqual(getOpt(p.options, Opt.ClientArch), [0]);
      assert.deepEqual(getOpt(p.options, Opt.ClientNdi), { type: 1, major: 2, minor: 1 });
      assert.equal(getOpt(p.options, Opt.VendorClass), 'PXEClient:Arch:00000:UNDI:002001');
      assert.deepEqual(getOpt(p.options, Opt.UserClass), ['iPXE']);
      assert.deepEqual(getOpt(p.options, Opt.ClientUuid), { type: 0, uuid: '8c1f5c52-1d3c-4e0a-9d8b-0123456789ab' });
      assert.equal(getOpt(p.options, Opt.MaxMessageSize), 1472);
      assert.equal(maxReplySize(p), 1472);
      const ipxe = getOpt(p.options, Opt.Ipxe);
      assert.ok(ipxe && ipxe.size > 5, 'iPXE sends its feature list in 175');
      assert.ok(getOpt(p.options, Opt.ParameterRequestList)?.includes(Opt.Ipxe));
    }
  });

  test('iPXE on UEFI (OVMF + efi-virtio.rom)', () => {
    const p = decoded(fixture('ipxe-uefi-discover.bin'));
    assert.deepEqual(getOpt(p.options, Opt.ClientArch), [7]);
    assert.deepEqual(getOpt(p.options, Opt.ClientNdi), { type: 1, major: 3, minor: 10 });
    assert.equal(getOpt(p.options, Opt.VendorClass), 'PXEClient:Arch:00007:UNDI:003010');
    assert.deepEqual(getOpt(p.options, Opt.UserClass), ['iPXE']);
    assert.ok(getOpt(p.options, Opt.Ipxe) instanceof Map);
    assert.equal(maxReplySize(p, 1400), 1400, 'capped by the MTU');
  });

  test("OVMF's own UEFI PXE client", () => {
    for (const name of ['ovmf-pxe-discover.bin', 'ovmf-pxe-request.bin']) {
      const p = decoded(fixture(name));
      assert.equal(macOf(p), '52:54:00:c0:ff:10');
      assert.equal(p.flags & 0x8000, 0x8000, 'OVMF asks for broadcast replies');
      assert.deepEqual(getOpt(p.options, Opt.ClientArch), [7]);
      assert.deepEqual(getOpt(p.options, Opt.ClientNdi), { type: 1, major: 3, minor: 0 });
      assert.equal(getOpt(p.options, Opt.VendorClass), 'PXEClient:Arch:00007:UNDI:003000');
      assert.equal(getOpt(p.options, Opt.UserClass), undefined);
      assert.deepEqual(getOpt(p.options, Opt.ClientUuid), { type: 0, uuid: '8c1f5c52-1d3c-4e0a-9d8b-0123456789ab' });
    }
  });

  test('ProxyDHCP exchange with dnsmasq, BIOS: PXE menu in 43, then the 4011 boot server request', () => {
    const offer = decoded(fixture('dnsmasq-proxy-bios-offer.bin'));
    assert.equal(offer.op, BOOTREPLY);
    assert.equal(offer.yiaddr, '0.0.0.0', 'a proxy offers no address');
    assert.equal(getOpt(offer.options, Opt.MessageType), MessageType.Offer);
    assert.equal(getOpt(offer.options, Opt.ServerId), '10.77.0.2');
    assert.equal(getOpt(offer.options, Opt.VendorClass), 'PXEClient');
    assert.deepEqual(getOpt(offer.options, Opt.VendorSpecific), {
      discoveryControl: DiscoveryControl.NoBroadcast | DiscoveryControl.NoMulticast,
      bootServers: [{ type: 0x8000, addresses: ['10.77.0.2'] }],
      bootMenu: [{ type: 0x8000, description: 'kaboot BIOS' }],
      menuPrompt: { timeout: 0, prompt: 'kaboot' },
    });
    assert.deepEqual(getOpt(offer.options, Opt.ClientUuid), { type: 0, uuid: '8c1f5c52-1d3c-4e0a-9d8b-0123456789ab' });

    const req = decoded(fixture('ipxe-bios-request-4011.bin'));
    assert.equal(getOpt(req.options, Opt.MessageType), MessageType.Request);
    assert.equal(req.ciaddr, '10.77.0.100');
    assert.equal(getOpt(req.options, Opt.VendorClass), 'PXEClient', 'iPXE drops the Arch part on 4011');
    assert.deepEqual(getOpt(req.options, Opt.VendorSpecific), { bootItem: { type: 0x8000, layer: 0 } });
    assert.deepEqual(getOpt(req.options, Opt.UserClass), ['iPXE']);

    const ack = decoded(fixture('dnsmasq-proxy-bios-ack-4011.bin'));
    assert.equal(getOpt(ack.options, Opt.MessageType), MessageType.Ack);
    assert.equal(ack.siaddr, '10.77.0.2');
    assert.equal(ack.file, 'pxelinux.0');
    assert.deepEqual(getOpt(ack.options, Opt.VendorSpecific), { bootItem: { type: 0x8000, layer: 0 }, menuPrompt: { timeout: 0, prompt: 'kaboot' } });
  });

  test('ProxyDHCP exchange with dnsmasq, UEFI: OVMF asks port 4011 without a boot item', () => {
    const offer = decoded(fixture('dnsmasq-proxy-uefi-offer.bin'));
    assert.equal(getOpt(offer.options, Opt.VendorClass), 'PXEClient');
    assert.equal(offer.options.has(Opt.VendorSpecific), false);
    assert.equal(offer.siaddr, '10.77.0.2');
    const req = decoded(fixture('ovmf-pxe-request-4011.bin'));
    assert.equal(getOpt(req.options, Opt.MessageType), MessageType.Request);
    assert.equal(req.ciaddr, '10.77.0.100');
    assert.deepEqual(getOpt(req.options, Opt.ClientArch), [7]);
    assert.equal(req.options.has(Opt.VendorSpecific), false);
    const ack = decoded(fixture('dnsmasq-proxy-uefi-ack-4011.bin'));
    assert.equal(ack.file, 'ipxe.0');
    assert.equal(ack.sname, '10.77.0.2');
    assert.equal(ack.xid, req.xid);
  });

  test("isc-dhcpd's overloaded replies: options in file, one split across areas, no End", () => {
    for (const name of ['isc-dhcpd-offer.bin', 'isc-dhcpd-ack.bin']) {
      const b = fixture(name);
      assert.equal(b.length, 548, 'isc-dhcpd fills the 576-byte datagram');
      assert.deepEqual([...b.subarray(545, 548)], [52, 1, 1], 'option 52 closes the options field, which has no End');
      const p = decoded(b);
      assert.equal(p.file, '');
      assert.equal(p.sname, '');
      assert.equal(p.options.has(Opt.Overload), false);
      assert.equal(p.options.get(17)?.toString(), '/srv/isc/' + '0123456789'.repeat(19));
      assert.equal(p.options.get(40)?.toString(), 'nis-' + 'n'.repeat(60), 'option 40 lives in the file field');
      assert.equal(p.options.get(18)?.toString(), '/ext/' + 'e'.repeat(60), 'option 18 is split between options and file');
      const codes = (from: number, to: number) => {
        const w = walkTlvs(b, from, to);
        return w.ok ? w.items.map((t) => t.code) : [];
      };
      assert.ok(codes(240, 548).includes(18) && codes(108, 236).includes(18), 'option 18 has a part in each area');
      assert.deepEqual(codes(108, 236), [40, 18]);
      assert.equal(getOpt(p.options, Opt.DomainName), 'lab.example');
      assert.equal(p.yiaddr, '10.77.0.100');
    }
  });

  test('every fixture round-trips through encode and decode', () => {
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.bin'));
    assert.ok(files.length >= 20);
    for (const f of files) {
      const p = decoded(fixture(f));
      const again = decoded(encodePacket(p, { maxSize: 1500 }));
      assertSamePacket(again, p);
    }
  });
});

describe('decode: layout, Pad and End', () => {
  test('fixed fields', () => {
    const b = raw([53, 1, 1, 255]);
    b[3] = 2;
    b.writeUInt16BE(7, 8);
    b.writeUInt16BE(0x8000, 10);
    Buffer.from([10, 0, 0, 9, 10, 0, 0, 10, 10, 0, 0, 11, 10, 0, 0, 12]).copy(b, 12);
    Buffer.from('pxe-server\0junk').copy(b, 44);
    Buffer.from('pxelinux.0').copy(b, 108);
    const p = decoded(b);
    assert.equal(p.hops, 2);
    assert.equal(p.xid, 0xdeadbeef);
    assert.equal(p.secs, 7);
    assert.equal(p.flags, 0x8000);
    assert.deepEqual([p.ciaddr, p.yiaddr, p.siaddr, p.giaddr], ['10.0.0.9', '10.0.0.10', '10.0.0.11', '10.0.0.12']);
    assert.equal(p.sname, 'pxe-server');
    assert.equal(p.file, 'pxelinux.0');
    assert.equal(macOf(p), '52:54:00:ab:cd:ef');
    assert.equal(p.chaddr.length, 16);
  });

  test('a 128-byte file without NUL is taken whole', () => {
    const p = decoded(raw([255], { file: [...Buffer.alloc(128, 0x61)] }));
    assert.equal(p.file, 'a'.repeat(128));
  });

  test('Pad is skipped, bytes after End are ignored, a missing End is tolerated', () => {
    const p = decoded(raw([0, 0, 53, 1, 1, 0, 12, 2, 0x68, 0x69, 255, 12, 200, 1, 2, 3]));
    assert.deepEqual([...p.options.keys()], [53, 12]);
    assert.equal(getOpt(p.options, Opt.HostName), 'hi');
    const q = decoded(raw([53, 1, 3, 12, 1, 0x78]));
    assert.equal(getOpt(q.options, Opt.HostName), 'x');
  });

  test('unknown options are kept raw, in order; zero-length options are kept', () => {
    const p = decoded(raw([53, 1, 1, 250, 3, 1, 2, 3, 80, 0, 255]));
    assert.deepEqual([...p.options.keys()], [53, 250, 80]);
    assert.deepEqual(p.options.get(250), Buffer.from([1, 2, 3]));
    assert.equal(p.options.get(80)?.length, 0);
  });

  test('accepts a Uint8Array that is not a Buffer, and copies what it keeps', () => {
    const b = raw([53, 1, 1, 12, 1, 0x41, 255]);
    const u8 = new Uint8Array(b.length + 3);
    u8.set(b, 3);
    const p = decoded(u8.subarray(3));
    assert.equal(getOpt(p.options, Opt.HostName), 'A');
    u8.fill(0);
    assert.equal(getOpt(p.options, Opt.HostName), 'A');
    assert.equal(macOf(p), '52:54:00:ab:cd:ef');
  });
});

describe('decode: RFC 3396 and option overload', () => {
  test('repeated codes are concatenated in order', () => {
    const p = decoded(raw([53, 1, 1, 55, 2, 1, 3, 12, 1, 0x61, 55, 1, 6, 12, 1, 0x62, 255]));
    assert.deepEqual(getOpt(p.options, Opt.ParameterRequestList), [1, 3, 6]);
    assert.equal(getOpt(p.options, Opt.HostName), 'ab');
    assert.deepEqual([...p.options.keys()], [53, 55, 12]);
  });

  test('overload 1: options then file; sname stays text', () => {
    const p = decoded(raw([53, 1, 5, 52, 1, 1, 12, 2, 0x61, 0x62, 255], { file: [12, 1, 0x63, 15, 3, 0x6c, 0x61, 0x6e, 255], sname: [...Buffer.from('srv')] }));
    assert.equal(getOpt(p.options, Opt.HostName), 'abc');
    assert.equal(getOpt(p.options, Opt.DomainName), 'lan');
    assert.equal(p.file, '');
    assert.equal(p.sname, 'srv');
    assert.equal(p.options.has(Opt.Overload), false, 'option 52 belongs to the codec');
  });

  test('overload 2: sname only; file stays text', () => {
    const p = decoded(raw([53, 1, 5, 52, 1, 2, 255], { sname: [67, 4, ...Buffer.from('a.efi'.slice(0, 4)), 255], file: [...Buffer.from('boot.0')] }));
    assert.equal(getOpt(p.options, Opt.BootfileName), 'a.ef');
    assert.equal(p.file, 'boot.0');
    assert.equal(p.sname, '');
  });

  test('overload 3: the order is options, file, sname (RFC 3396 §5)', () => {
    const p = decoded(raw([52, 1, 3, 12, 1, 0x31, 255], { file: [12, 1, 0x32, 255], sname: [12, 1, 0x33, 255] }));
    assert.equal(getOpt(p.options, Opt.HostName), '123');
    assert.equal(p.file, '');
    assert.equal(p.sname, '');
  });

  test('an overloaded area without End is read to its end', () => {
    const file = [...Buffer.alloc(128)];
    file.splice(0, 4, 12, 2, 0x41, 0x42);
    const p = decoded(raw([52, 1, 1], { file }));
    assert.equal(getOpt(p.options, Opt.HostName), 'AB');
  });
});

describe('decode errors, one per code', () => {
  const cases: [DhcpDecodeErrorCode, string, Buffer][] = [
    ['short', 'empty', Buffer.alloc(0)],
    ['short', '239 bytes', raw([]).subarray(0, 239)],
    ['bad-op', 'op 3', raw([255], { op: 3 })],
    ['bad-op', 'op 0', raw([255], { op: 0 })],
    ['bad-hlen', 'hlen 17', raw([255], { hlen: 17 })],
    ['bad-magic', 'no cookie', (() => { const b = raw([255]); b[239] = 0; return b; })()],
    ['option-overrun', 'value past the end', raw([53, 1, 1, 12, 5, 0x61])],
    ['option-overrun', 'no length byte', raw([53, 1, 1, 12])],
    ['option-overrun', 'in the overloaded file', raw([52, 1, 1, 255], { file: [...Buffer.alloc(126), 12, 5] })],
    ['option-overrun', 'in the overloaded sname', raw([52, 1, 2, 255], { sname: [...Buffer.alloc(63), 12] })],
    ['bad-overload', 'value 0', raw([52, 1, 0, 255])],
    ['bad-overload', 'value 4', raw([52, 1, 4, 255])],
    ['bad-overload', 'two bytes', raw([52, 2, 1, 2, 255])],
    ['bad-overload', 'empty', raw([52, 0, 255])],
    ['bad-overload', 'repeated', raw([52, 1, 1, 52, 1, 1, 255])],
    ['overload-loop', '52 inside file', raw([52, 1, 1, 255], { file: [52, 1, 1, 255] })],
    ['overload-loop', '52 inside sname', raw([52, 1, 3, 255], { file: [255], sname: [52, 1, 3, 255] })],
  ];
  for (const [code, what, buf] of cases) {
    test(`${code}: ${what}`, () => {
      const r = decodePacket(buf);
      assert.equal(errorCode(r), code);
      assert.ok(!r.ok && r.error.message.length > 0);
    });
  }

  test('an option-overrun error names the offset of the bad option', () => {
    const r = decodePacket(raw([53, 1, 1, 12, 5, 0x61]));
    assert.ok(!r.ok);
    assert.equal(r.error.offset, 243);
  });

  test('a BOOTP reply (op 2) decodes too', () => {
    assert.equal(decoded(raw([255], { op: 2 })).op, BOOTREPLY);
  });
});

describe('encode', () => {
  function offer(): Map<number, Buffer> {
    const o = new Map<number, Buffer>();
    setOpt(o, Opt.SubnetMask, '255.255.255.0');
    setOpt(o, Opt.Routers, ['10.1.2.1']);
    setOpt(o, Opt.ServerId, '10.1.2.1');
    setOpt(o, Opt.MessageType, MessageType.Offer);
    setOpt(o, Opt.LeaseTime, 3600);
    return o;
  }

  test('layout: header, cookie, 53 first and 54 second, End, padded to 300 bytes', () => {
    const b = encodePacket(packet(offer(), { file: 'pxelinux.0', sname: 'kaboot' }));
    assert.equal(b.length, BOOTP_MIN_SIZE);
    assert.equal(b[0], BOOTREPLY);
    assert.equal(b.readUInt32BE(4), 0x01020304);
    assert.deepEqual([...b.subarray(16, 20)], [10, 1, 2, 3]);
    assert.equal(b.toString('latin1', 108, 118), 'pxelinux.0');
    assert.equal(b[118], 0);
    assert.equal(b.toString('latin1', 44, 50), 'kaboot');
    assert.deepEqual([...b.subarray(236, 240)], [99, 130, 83, 99]);
    assert.deepEqual([...b.subarray(240, 249)], [53, 1, 2, 54, 4, 10, 1, 2, 1]);
    assert.deepEqual([...b.subarray(249, 255)], [1, 4, 255, 255, 255, 0]);
    const end = b.indexOf(255, 240 + 9 + 6 + 6 + 6);
    assert.equal(b[end - 6], 51);
    assert.ok(b.subarray(end + 1).every((x) => x === 0));
    const p = decoded(b);
    assertSamePacket(p, packet(offer(), { file: 'pxelinux.0', sname: 'kaboot' }));
  });

  test('a long message is not padded', () => {
    const o = offer();
    o.set(224, Buffer.alloc(200, 1));
    const b = encodePacket(packet(o));
    assert.equal(b.length, 240 + 3 + 6 + 6 + 6 + 6 + 202 + 1);
  });

  test('an option longer than 255 bytes is split into repeated codes (RFC 3396)', () => {
    const o = offer();
    const big = Buffer.from(Array.from({ length: 600 }, (_, i) => i & 0xff));
    o.set(224, big);
    const b = encodePacket(packet(o), { maxSize: 1500 });
    const at = b.indexOf(Buffer.from([224, 255, 0, 1, 2]), 240);
    assert.ok(at > 0);
    assert.deepEqual([b[at + 257], b[at + 258]], [224, 255]);
    assert.deepEqual([b[at + 514], b[at + 515]], [224, 90]);
    assert.deepEqual(decoded(b).options.get(224), big);
  });

  test('overload with a small maxSize: options spill into file, then sname, and round-trip', () => {
    const o = offer();
    setOpt(o, Opt.DomainName, 'example.org');
    o.set(224, Buffer.alloc(90, 7));
    o.set(225, Buffer.alloc(30, 8));
    o.set(226, Buffer.alloc(50, 9));
    const p = packet(o);
    const b = encodePacket(p, { maxSize: 28 + 240 + 64 });
    const q = decoded(b);
    assertSamePacket(q, p);
    assert.deepEqual([...b.subarray(240, 246)], [53, 1, 2, 52, 1, 3], '52 follows 53');
    assert.equal(b[108], 224, 'file holds the first option that did not fit');
    assert.equal(b[108 + 92], 225);
    assert.equal(b[44], 226, 'sname holds the last');
  });

  test('overload uses only the file field when that is enough', () => {
    const o = offer();
    o.set(224, Buffer.alloc(100, 7));
    const b = encodePacket(packet(o), { maxSize: 28 + 240 + 64 });
    assert.deepEqual([...b.subarray(243, 246)], [52, 1, 1]);
    assertSamePacket(decoded(b), packet(o));
  });

  test('a non-empty file field is never overloaded: sname only (52 = 2)', () => {
    const o = offer();
    o.set(224, Buffer.alloc(50, 7));
    const p = packet(o, { file: 'ipxe.efi' });
    const b = encodePacket(p, { maxSize: 28 + 240 + 40 });
    assert.deepEqual([...b.subarray(243, 246)], [52, 1, 2]);
    assert.equal(b.toString('latin1', 108, 116), 'ipxe.efi');
    assertSamePacket(decoded(b), p);
  });

  test('an option too long for any single area is split across areas', () => {
    const o = new Map<number, Buffer>();
    setOpt(o, Opt.MessageType, MessageType.Ack);
    const big = Buffer.from(Array.from({ length: 200 }, (_, i) => i));
    o.set(224, big);
    const p = packet(o);
    const b = encodePacket(p, { maxSize: 28 + 240 + 60 });
    assertSamePacket(decoded(b), p);
    assert.equal(b[108], 224);
  });

  test('the default maxSize is 576: a reply that fits is not overloaded', () => {
    const o = offer();
    o.set(224, Buffer.alloc(250, 1));
    const b = encodePacket(packet(o));
    assert.equal(b.indexOf(Buffer.from([52, 1]), 240), -1);
    assert.ok(b.length <= 576 - 28);
  });

  test('too-big when nothing fits, even overloaded', () => {
    const o = offer();
    o.set(224, Buffer.alloc(255, 1));
    o.set(225, Buffer.alloc(255, 1));
    assert.throws(() => encodePacket(packet(o)), (e: unknown) => e instanceof DhcpEncodeError && e.code === 'too-big');
    assert.throws(() => encodePacket(packet(offer()), { maxSize: 200 }), (e: unknown) => e instanceof DhcpEncodeError && e.code === 'too-big');
  });

  test('option 52 in the map is ignored, Pad and End are never written as options', () => {
    const o = offer();
    o.set(Opt.Overload, Buffer.from([3]));
    o.set(Opt.Pad, Buffer.from([1]));
    o.set(Opt.End, Buffer.from([1]));
    const q = decoded(encodePacket(packet(o)));
    assertSamePacket(q, packet(offer()));
  });

  test('bad fields throw DhcpEncodeError bad-field', () => {
    const bad: Partial<DhcpPacket>[] = [
      { yiaddr: '10.1.2' },
      { siaddr: '300.1.1.1' },
      { xid: -1 },
      { secs: 70000 },
      { hlen: 17 },
      { chaddr: Buffer.alloc(17) },
      { file: 'x'.repeat(129) },
      { sname: 'x'.repeat(65) },
      { op: 3 as 1 },
    ];
    for (const over of bad) {
      assert.throws(() => encodePacket(packet(offer(), over)), (e: unknown) => e instanceof DhcpEncodeError && e.code === 'bad-field', JSON.stringify(over));
    }
  });

  test('file and sname: byte-exact for what was decoded, UTF-8 beyond latin1', () => {
    const p = decoded(raw([255], { file: [0x62, 0xe9, 0xff] }));
    assert.equal(p.file, 'b\u00e9\u00ff');
    const b = encodePacket(packet(new Map(), { file: p.file }));
    assert.deepEqual([...b.subarray(108, 112)], [0x62, 0xe9, 0xff, 0]);
    const u = encodePacket(packet(new Map(), { file: 'b\u20ac' }));
    assert.deepEqual([...u.subarray(108, 113)], [0x62, 0xe2, 0x82, 0xac, 0]);
  });

  test('maxReplySize: 576 without option 57, at least 576, at most the MTU', () => {
    const o = new Map<number, Buffer>();
    assert.equal(maxReplySize({ options: o }), 576);
    setOpt(o, Opt.MaxMessageSize, 400);
    assert.equal(maxReplySize({ options: o }), 576);
    setOpt(o, Opt.MaxMessageSize, 9000);
    assert.equal(maxReplySize({ options: o }), 1500);
    assert.equal(maxReplySize({ options: o }, 9000), 9000);
    o.set(Opt.MaxMessageSize, Buffer.from([1]));
    assert.equal(maxReplySize({ options: o }), 576);
  });
});
