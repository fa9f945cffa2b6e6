// A scripted network-boot client, run inside a namespace: broadcasts one DISCOVER as a
// PXE ROM or iPXE would (vendor class, arch, user class), prints every reply it hears
// as a JSON line, and, with --request-4011, takes the address an address server offered
// and asks kaboot's port 4011 for the boot file as a UEFI ROM does.
//   node --import tsx test/helpers/dhcp-probe.ts --mac 52:54:00:.. --vendor PXEClient:Arch:00000:UNDI:002001 --arch 0
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { openDeviceSocket } from '../../src/net/udp-socket.js';
import { decodePacket, encodePacket } from '../../src/dhcp/codec.js';
import { MessageType, Opt, type DhcpPacket } from '../../src/dhcp/packet.js';
import { getOpt } from '../../src/dhcp/options.js';
import { buildRequest, type OptionList } from './dhcp-client.js';

const { values } = parseArgs({
  options: {
    iface: { type: 'string', default: 'eth0' },
    mac: { type: 'string' },
    vendor: { type: 'string' },
    arch: { type: 'string' },
    'user-class': { type: 'string' },
    wait: { type: 'string', default: '3000' },
    'request-4011': { type: 'string' },
  },
});

function describe(p: DhcpPacket, from: string) {
  const pxe = getOpt(p.options, Opt.VendorSpecific);
  return {
    from,
    type: getOpt(p.options, Opt.MessageType),
    yiaddr: p.yiaddr,
    siaddr: p.siaddr,
    file: p.file,
    serverId: getOpt(p.options, Opt.ServerId),
    vendorClass: getOpt(p.options, Opt.VendorClass),
    bootfile: getOpt(p.options, Opt.BootfileName),
    discoveryControl: pxe?.discoveryControl,
    pxelinuxMagic: p.options.has(Opt.PxelinuxMagic),
  };
}

const mac = values.mac ?? execFileSync('cat', [`/sys/class/net/${values.iface}/address`]).toString().trim();
const sock = await openDeviceSocket(values.iface!, 68, { broadcast: true });
const replies: ReturnType<typeof describe>[] = [];
sock.on('message', (msg, rinfo) => {
  const r = decodePacket(msg);
  if (!r.ok) return;
  const d = describe(r.packet, `${rinfo.address}:${rinfo.port}`);
  replies.push(d);
  console.log(JSON.stringify(d));
});

const options: OptionList = { [Opt.ParameterRequestList]: [1, 3, 6, 43, 60, 66, 67] };
if (values.vendor) options[Opt.VendorClass] = values.vendor;
if (values.arch) options[Opt.ClientArch] = [Number(values.arch)];
const raw: [number, Buffer][] = values['user-class'] ? [[Opt.UserClass, Buffer.from(values['user-class'])]] : [];
const discover = buildRequest(MessageType.Discover, mac, { broadcast: true, options, raw });
sock.send(encodePacket(discover), 67, '255.255.255.255');
const wait = Number(values.wait);
await new Promise((r) => setTimeout(r, wait));

const server4011 = values['request-4011'];
if (server4011) {
  const lease = replies.find((r) => r.type === MessageType.Offer && r.yiaddr !== '0.0.0.0');
  if (!lease) {
    console.log(JSON.stringify({ error: 'no address offer to take' }));
    process.exit(2);
  }
  execFileSync('ip', ['addr', 'add', `${lease.yiaddr}/24`, 'dev', values.iface!]);
  const req = buildRequest(MessageType.Request, mac, { ciaddr: lease.yiaddr, options, raw });
  sock.send(encodePacket(req), 4011, server4011);
  await new Promise((r) => setTimeout(r, wait));
}
sock.close();
