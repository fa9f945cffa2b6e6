import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  getOpt,
  readOpt,
  setOpt,
  optionTable,
  validateOptions,
  describeOptions,
  optionName,
  isKnownOpt,
  PXELINUX_MAGIC,
  type KnownOpt,
  type OptionTypes,
} from '../../src/dhcp/options.js';
import { decodePxeOptions, encodePxeOptions, DiscoveryControl, type PxeVendorOptions } from '../../src/dhcp/pxe-options.js';
import { orderReplyOptions, alwaysSentOptions } from '../../src/dhcp/option-order.js';
import { DhcpEncodeError } from '../../src/dhcp/errors.js';
import { MessageType, Opt, type OptionMap } from '../../src/dhcp/packet.js';

function roundTrip<K extends KnownOpt>(code: K, value: OptionTypes[K], wire?: number[]) {
  const m: OptionMap = new Map();
  setOpt(m, code, value);
  if (wire) assert.deepEqual([...m.get(code)!], wire, `wire bytes of option ${code}`);
  assert.deepEqual(getOpt(m, code), value, `round trip of option ${code}`);
}

function malformed(code: KnownOpt, bytes: number[], errCode: 'bad-length' | 'bad-value' = 'bad-length') {
  const m: OptionMap = new Map([[code, Buffer.from(bytes)]]);
  const r = readOpt(m, code);
  assert.ok(r && !r.ok, `option ${code} ${JSON.stringify(bytes)} should not decode`);
  assert.equal(r.error.code, errCode);
  assert.equal(r.error.option, code);
  assert.match(r.error.message, new RegExp(`option ${code} `));
  assert.equal(getOpt(m, code), undefined);
}

function encodeFails(fn: () => unknown) {
  assert.throws(fn, (e: unknown) => e instanceof DhcpEncodeError && e.code === 'bad-option');
}

describe('option value types round-trip', () => {
  test('single addresses (1, 28, 50, 54)', () => {
    roundTrip(Opt.SubnetMask, '255.255.255.0', [255, 255, 255, 0]);
    roundTrip(Opt.BroadcastAddress, '10.0.0.255');
    roundTrip(Opt.RequestedIp, '10.0.0.7');
    roundTrip(Opt.ServerId, '192.168.10.1', [192, 168, 10, 1]);
    malformed(Opt.ServerId, [1, 2, 3]);
    malformed(Opt.SubnetMask, [1, 2, 3, 4, 5]);
    encodeFails(() => setOpt(new Map(), Opt.ServerId, '1.2.3'));
    encodeFails(() => setOpt(new Map(), Opt.ServerId, '1.2.3.256'));
  });

  test('address lists (3, 6, 42)', () => {
    roundTrip(Opt.Routers, ['10.0.0.1'], [10, 0, 0, 1]);
    roundTrip(Opt.DnsServers, ['10.0.0.1', '8.8.8.8'], [10, 0, 0, 1, 8, 8, 8, 8]);
    roundTrip(Opt.NtpServers, ['10.0.0.2']);
    malformed(Opt.Routers, []);
    malformed(Opt.DnsServers, [1, 2, 3, 4, 5, 6]);
    encodeFails(() => setOpt(new Map(), Opt.Routers, []));
  });

  test('u32 (51, 58, 59, 211), u16 (57, 26), u8 (53)', () => {
    roundTrip(Opt.LeaseTime, 86400, [0, 1, 0x51, 0x80]);
    roundTrip(Opt.RenewalTime, 43200);
    roundTrip(Opt.RebindingTime, 0xffffffff, [255, 255, 255, 255]);
    roundTrip(Opt.PxelinuxRebootTime, 30);
    roundTrip(Opt.MaxMessageSize, 1472, [5, 0xc0]);
    roundTrip(Opt.InterfaceMtu, 1500);
    roundTrip(Opt.MessageType, MessageType.Ack, [5]);
    malformed(Opt.LeaseTime, [0, 1, 2]);
    malformed(Opt.MaxMessageSize, [5]);
    malformed(Opt.MessageType, []);
    malformed(Opt.MessageType, [1, 1]);
    encodeFails(() => setOpt(new Map(), Opt.LeaseTime, -1));
    encodeFails(() => setOpt(new Map(), Opt.LeaseTime, 2 ** 32));
    encodeFails(() => setOpt(new Map(), Opt.MaxMessageSize, 1.5));
    encodeFails(() => setOpt(new Map(), Opt.MessageType, 256 as MessageType));
  });

  test('strings (12, 15, 56, 60, 66, 67, 209, 210)', () => {
    roundTrip(Opt.HostName, 'node-01', [...Buffer.from('node-01')]);
    roundTrip(Opt.DomainName, 'example.org');
    roundTrip(Opt.Message, 'address not on this subnet');
    roundTrip(Opt.VendorClass, 'PXEClient');
    roundTrip(Opt.TftpServerName, '10.0.0.1');
    roundTrip(Opt.BootfileName, 'pxelinux.0');
    roundTrip(Opt.PxelinuxConfigFile, 'pxelinux.cfg/01-52-54-00-12-34-56');
    roundTrip(Opt.PxelinuxPathPrefix, '/');
    roundTrip(Opt.HostName, 'n\u00f6de');
    const m: OptionMap = new Map([[Opt.HostName, Buffer.from('pc\0\0')]]);
    assert.equal(getOpt(m, Opt.HostName), 'pc', 'trailing NULs that some clients send are dropped');
    m.set(Opt.HostName, Buffer.from([0x61, 0xe9]));
    assert.equal(getOpt(m, Opt.HostName), 'a\u00e9', 'bytes that are not UTF-8 are read one per character');
  });

  test('parameter request list (55)', () => {
    roundTrip(Opt.ParameterRequestList, [1, 3, 6, 43, 60, 66, 67], [1, 3, 6, 43, 60, 66, 67]);
    roundTrip(Opt.ParameterRequestList, []);
    encodeFails(() => setOpt(new Map(), Opt.ParameterRequestList, [256]));
  });

  test('user class (77): RFC 3004 list, and the plain string iPXE sends', () => {
    roundTrip(Opt.UserClass, ['iPXE'], [4, ...Buffer.from('iPXE')]);
    roundTrip(Opt.UserClass, ['a', 'bc'], [1, 0x61, 2, 0x62, 0x63]);
    const m: OptionMap = new Map([[Opt.UserClass, Buffer.from('iPXE')]]);
    assert.deepEqual(getOpt(m, Opt.UserClass), ['iPXE']);
    m.set(Opt.UserClass, Buffer.from('MSFT 5.0'));
    assert.deepEqual(getOpt(m, Opt.UserClass), ['MSFT 5.0']);
    m.set(Opt.UserClass, Buffer.from([2, 0x61]));
    assert.deepEqual(getOpt(m, Opt.UserClass), ['\u0002a']);
    malformed(Opt.UserClass, []);
    encodeFails(() => setOpt(new Map(), Opt.UserClass, ['']));
    encodeFails(() => setOpt(new Map(), Opt.UserClass, []));
  });

  test('client architecture (93): list of u16', () => {
    roundTrip(Opt.ClientArch, [7], [0, 7]);
    roundTrip(Opt.ClientArch, [0, 9, 16], [0, 0, 0, 9, 0, 16]);
    malformed(Opt.ClientArch, [0]);
    malformed(Opt.ClientArch, [0, 7, 1]);
    malformed(Opt.ClientArch, []);
  });

  test('client NDI (94)', () => {
    roundTrip(Opt.ClientNdi, { type: 1, major: 3, minor: 10 }, [1, 3, 10]);
    malformed(Opt.ClientNdi, [1, 2]);
  });

  test('client UUID (97): type 0, 16 bytes in EFI GUID order', () => {
    roundTrip(Opt.ClientUuid, { type: 0, uuid: '8c1f5c52-1d3c-4e0a-9d8b-0123456789ab' }, [
      0, 0x52, 0x5c, 0x1f, 0x8c, 0x3c, 0x1d, 0x0a, 0x4e, 0x9d, 0x8b, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
    ]);
    malformed(Opt.ClientUuid, [0, ...Buffer.alloc(15)]);
    malformed(Opt.ClientUuid, [1, ...Buffer.alloc(16)], 'bad-value');
    encodeFails(() => setOpt(new Map(), Opt.ClientUuid, { type: 0, uuid: 'not-a-uuid' }));
  });

  test('client id (61) is raw bytes', () => {
    roundTrip(Opt.ClientId, Buffer.from('01525400c0ff01', 'hex'), [1, 0x52, 0x54, 0, 0xc0, 0xff, 1]);
  });

  test('pxelinux magic (208)', () => {
    roundTrip(Opt.PxelinuxMagic, true, [0xf1, 0x00, 0x74, 0x7e]);
    assert.deepEqual([...PXELINUX_MAGIC], [0xf1, 0x00, 0x74, 0x7e]);
    malformed(Opt.PxelinuxMagic, [0xf1, 0x00, 0x74, 0x7f], 'bad-value');
  });

  test('encapsulated sub-options: iPXE 175 and relay agent 82', () => {
    const subs = new Map([
      [19, Buffer.from([1])],
      [177, Buffer.from('018086100e', 'hex')],
    ]);
    roundTrip(Opt.Ipxe, subs, [19, 1, 1, 177, 5, 1, 0x80, 0x86, 0x10, 0x0e]);
    roundTrip(Opt.RelayAgentInfo, new Map([[1, Buffer.from('eth0')], [2, Buffer.from([1, 2])]]));
    const m: OptionMap = new Map([[Opt.Ipxe, Buffer.from([0, 19, 1, 1, 255, 7])]]);
    assert.deepEqual(getOpt(m, Opt.Ipxe), new Map([[19, Buffer.from([1])]]), 'Pad and End inside are honoured');
    malformed(Opt.Ipxe, [19, 5, 1], 'bad-value');
  });

  test('option 43 as PXE vendor options', () => {
    roundTrip(Opt.VendorSpecific, { discoveryControl: DiscoveryControl.UseBootFile }, [6, 1, 8, 255]);
    malformed(Opt.VendorSpecific, [6, 2, 8], 'bad-value');
  });

  test('every known code has a table entry with its own code and a name', () => {
    for (const [code, codec] of Object.entries(optionTable)) {
      assert.equal(codec.code, Number(code));
      assert.match(codec.name, /^[a-z0-9-]+$/);
    }
    assert.equal(optionName(Opt.VendorClass), 'vendor-class-identifier');
    assert.equal(optionName(249), 'option-249');
    assert.ok(isKnownOpt(93));
    assert.ok(!isKnownOpt(249));
  });

  test('readOpt is undefined when absent; getOpt never throws on any bytes', () => {
    const m: OptionMap = new Map();
    assert.equal(readOpt(m, Opt.ClientArch), undefined);
    for (const code of Object.keys(optionTable).map(Number) as KnownOpt[]) {
      for (let len = 0; len < 40; len++) {
        const mm: OptionMap = new Map([[code, Buffer.from(Array.from({ length: len }, (_, i) => (i * 37 + len) & 0xff))]]);
        assert.doesNotThrow(() => getOpt(mm, code));
      }
    }
  });

  test('validateOptions lists malformed known options; describeOptions is JSON-friendly', () => {
    const m: OptionMap = new Map([
      [Opt.MessageType, Buffer.from([1])],
      [Opt.ClientArch, Buffer.from([7])],
      [Opt.ClientUuid, Buffer.alloc(3)],
      [250, Buffer.from([1, 2])],
    ]);
    assert.deepEqual(
      validateOptions(m).map((e) => [e.option, e.code]),
      [
        [93, 'bad-length'],
        [97, 'bad-length'],
      ],
    );
    const d = describeOptions(m);
    assert.deepEqual(d, { 'dhcp-message-type': 1, 'pxe-client-arch': '07', 'pxe-client-uuid': '000000', 'option-250': '0102' });
    assert.doesNotThrow(() => JSON.stringify(describeOptions(new Map([[Opt.Ipxe, Buffer.from([1, 1, 1])], [Opt.ClientId, Buffer.from([1])]]))));
  });
});

describe('PXE vendor options (43)', () => {
  test('a full boot server answer round-trips', () => {
    const v: PxeVendorOptions = {
      discoveryControl: DiscoveryControl.NoMulticast | DiscoveryControl.OnlyListedServers,
      discoveryMulticastAddr: '224.0.1.2',
      bootServers: [{ type: 0x8000, addresses: ['10.0.0.1', '10.0.0.2'] }],
      bootMenu: [
        { type: 0x8000, description: 'kaboot' },
        { type: 0, description: 'Local boot' },
      ],
      menuPrompt: { timeout: 5, prompt: 'Press F8 for the menu' },
      bootItem: { type: 0x8000, layer: 0 },
      mtftpIp: '224.1.1.1',
      mtftpClientPort: 1758,
      mtftpServerPort: 1759,
      mtftpTimeout: 1,
      mtftpDelay: 10,
      other: new Map([[180, Buffer.from([1, 2])]]),
    };
    const b = encodePxeOptions(v);
    assert.equal(b[0], 6, 'discovery control first');
    assert.equal(b[b.length - 1], 255, 'ends with End');
    const r = decodePxeOptions(b);
    assert.ok(r.ok);
    assert.deepEqual(r.value, v);
  });

  test('wire bytes of the common answers', () => {
    assert.deepEqual([...encodePxeOptions({ discoveryControl: 8 })], [6, 1, 8, 255]);
    assert.deepEqual([...encodePxeOptions({ bootItem: { type: 0x8000, layer: 0 } })], [71, 4, 0x80, 0, 0, 0, 255]);
    assert.deepEqual(
      [...encodePxeOptions({ bootMenu: [{ type: 0x8000, description: 'kb' }], menuPrompt: { timeout: 0, prompt: 'x' } })],
      [9, 5, 0x80, 0, 2, 0x6b, 0x62, 10, 2, 0, 0x78, 255],
    );
    assert.deepEqual(
      [...encodePxeOptions({ bootServers: [{ type: 0x8000, addresses: ['10.0.0.1'] }] })],
      [8, 7, 0x80, 0, 1, 10, 0, 0, 1, 255],
    );
    assert.deepEqual([...encodePxeOptions({})], [255]);
  });

  test('decodes what dnsmasq sends as a ProxyDHCP server', () => {
    // the shape dnsmasq gives 43 with --pxe-service and --pxe-prompt: 6 = 3, 8, 9, 10, End
    const bytes = Buffer.from([6, 1, 3, 8, 7, 0x80, 0x00, 1, 10, 0, 0, 1, 9, 9, 0x80, 0x00, 6, ...Buffer.from('kaboot'), 10, 4, 0, ...Buffer.from('PXE'), 255]);
    const r = decodePxeOptions(bytes);
    assert.ok(r.ok);
    assert.deepEqual(r.value, {
      discoveryControl: 3,
      bootServers: [{ type: 0x8000, addresses: ['10.0.0.1'] }],
      bootMenu: [{ type: 0x8000, description: 'kaboot' }],
      menuPrompt: { timeout: 0, prompt: 'PXE' },
    });
  });

  test('malformed sub-options give typed errors', () => {
    const bad: number[][] = [
      [6, 2, 8, 8, 255],
      [6, 5, 8],
      [8, 4, 0x80, 0, 2, 10],
      [8, 2, 0x80, 0],
      [9, 4, 0x80, 0, 5, 0x61],
      [9, 2, 0x80, 0],
      [10, 0],
      [71, 3, 0, 0, 0],
      [1, 3, 1, 1, 1],
      [2, 1, 0],
      [4, 2, 0, 0],
      [7, 1, 0],
    ];
    for (const b of bad) {
      const r = decodePxeOptions(Buffer.from(b));
      assert.ok(!r.ok, JSON.stringify(b));
      assert.equal(r.error.code, 'bad-value');
      assert.equal(r.error.option, 43);
    }
  });

  test('values that cannot be encoded throw DhcpEncodeError', () => {
    encodeFails(() => encodePxeOptions({ discoveryControl: 256 }));
    encodeFails(() => encodePxeOptions({ bootItem: { type: 65536, layer: 0 } }));
    encodeFails(() => encodePxeOptions({ bootServers: [{ type: 0, addresses: ['x'] }] }));
    encodeFails(() => encodePxeOptions({ menuPrompt: { timeout: 0, prompt: 'x'.repeat(255) } }));
    encodeFails(() => encodePxeOptions({ other: new Map([[255, Buffer.alloc(1)]]) }));
    encodeFails(() => encodePxeOptions({ other: new Map([[200, Buffer.alloc(256)]]) }));
  });
});

describe('orderReplyOptions (parameter request list rule)', () => {
  function reply(): OptionMap {
    const m: OptionMap = new Map();
    setOpt(m, Opt.SubnetMask, '255.255.255.0');
    setOpt(m, Opt.Routers, ['10.0.0.1']);
    setOpt(m, Opt.DomainName, 'lan');
    setOpt(m, Opt.LeaseTime, 600);
    setOpt(m, Opt.ServerId, '10.0.0.1');
    setOpt(m, Opt.HostName, 'n1');
    setOpt(m, Opt.VendorClass, 'PXEClient');
    setOpt(m, Opt.BootfileName, 'ipxe.efi');
    setOpt(m, Opt.MessageType, MessageType.Offer);
    return m;
  }

  test('53 and 54 first, then the requested ones in the client order, then the always-sent ones', () => {
    const out = orderReplyOptions(reply(), [15, 3, 1, 99, 15], alwaysSentOptions());
    assert.deepEqual([...out.keys()], [53, 54, 15, 3, 1, 51]);
  });

  test('PXE and pxelinux sets', () => {
    assert.deepEqual([...orderReplyOptions(reply(), [1], alwaysSentOptions({ pxe: true })).keys()], [53, 54, 1, 3, 51, 60, 67]);
    assert.ok(alwaysSentOptions({ pxelinux: true }).includes(208));
    assert.ok(!alwaysSentOptions().includes(208));
  });

  test('without option 55, everything in the reply order', () => {
    assert.deepEqual([...orderReplyOptions(reply(), undefined, []).keys()], [53, 54, 1, 3, 15, 51, 12, 60, 67]);
  });

  test('relay agent information is echoed last even if not requested', () => {
    const m = reply();
    m.delete(Opt.MessageType);
    m.set(Opt.RelayAgentInfo, Buffer.from([1, 1, 5]));
    m.set(Opt.MessageType, Buffer.from([2]));
    const out = orderReplyOptions(m, [82, 1], []);
    assert.deepEqual([...out.keys()], [53, 54, 1, 82]);
    assert.deepEqual(out.get(82), Buffer.from([1, 1, 5]));
  });
});
