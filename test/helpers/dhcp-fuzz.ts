// Floods a DHCP server with random and mutated datagrams: random bytes, truncated and
// bit-flipped real requests, bad option lengths, looping and invalid overloads,
// oversized packets, malformed values of known options. Seeded, so a failure can be
// replayed: --seed N. Prints {"sent": n, "seed": s} at the end.
import dgram from 'node:dgram';
import { parseArgs } from 'node:util';
import { encodePacket } from '../../src/dhcp/codec.js';
import { MessageType, Opt } from '../../src/dhcp/packet.js';
import { buildRequest } from './dhcp-client.js';

const { values } = parseArgs({
  options: {
    server: { type: 'string' },
    ports: { type: 'string', default: '67,4011' },
    count: { type: 'string', default: '100000' },
    seed: { type: 'string' },
  },
});

// xorshift32: small, seedable, good enough to pick mutations.
let state = Number(values.seed ?? (Date.now() & 0x7fffffff)) >>> 0 || 1;
const seed = state;
const rnd = () => {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state / 0x100000000;
};
const int = (n: number) => Math.floor(rnd() * n);
const bytes = (n: number) => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
};
const mac = () => [...bytes(6)].map((x) => x.toString(16).padStart(2, '0')).join(':');

function validRequest(): Buffer {
  const types = [MessageType.Discover, MessageType.Request, MessageType.Decline, MessageType.Release, MessageType.Inform];
  const type = types[int(types.length)]!;
  const raw: [number, Buffer][] = [];
  if (rnd() < 0.5) raw.push([Opt.VendorClass, Buffer.from(rnd() < 0.5 ? 'PXEClient:Arch:00000:UNDI:002001' : 'HTTPClient:Arch:00016')]);
  if (rnd() < 0.5) raw.push([Opt.ClientArch, bytes(2 * int(3))]);
  if (rnd() < 0.3) raw.push([Opt.UserClass, rnd() < 0.5 ? Buffer.from('iPXE') : bytes(int(20))]);
  if (rnd() < 0.3) raw.push([Opt.VendorSpecific, bytes(int(40))]);
  if (rnd() < 0.3) raw.push([Opt.Ipxe, bytes(int(10))]);
  if (rnd() < 0.4) raw.push([Opt.RequestedIp, bytes(rnd() < 0.8 ? 4 : int(8))]);
  if (rnd() < 0.4) raw.push([Opt.ServerId, bytes(rnd() < 0.8 ? 4 : int(8))]);
  if (rnd() < 0.3) raw.push([Opt.ParameterRequestList, bytes(int(60))]);
  if (rnd() < 0.3) raw.push([Opt.MaxMessageSize, bytes(int(4))]);
  if (rnd() < 0.3) raw.push([Opt.LeaseTime, bytes(int(6))]);
  if (rnd() < 0.3) raw.push([Opt.ClientId, bytes(int(20))]);
  if (rnd() < 0.2) raw.push([Opt.RelayAgentInfo, bytes(int(30))]);
  if (rnd() < 0.2) raw.push([int(254) + 1, bytes(int(255))]);
  const p = buildRequest(type, mac(), {
    ciaddr: rnd() < 0.3 ? `10.61.${int(256)}.${int(256)}` : '0.0.0.0',
    giaddr: rnd() < 0.1 ? `${int(256)}.${int(256)}.${int(256)}.${int(256)}` : '0.0.0.0',
    flags: int(0x10000),
    raw,
  });
  try {
    return encodePacket(p, { maxSize: 1500 });
  } catch {
    return bytes(300);
  }
}

const OPTIONS_AT = 240;

function mutate(): Buffer {
  const kind = int(9);
  switch (kind) {
    case 0:
      return bytes(int(1500));
    case 1: {
      const b = validRequest();
      return b.subarray(0, int(b.length));
    }
    case 2: {
      const b = validRequest();
      for (let i = int(10) + 1; i > 0; i--) b[int(b.length)] = int(256);
      return b;
    }
    case 3: {
      // an option whose length runs past the end
      const b = validRequest();
      const at = OPTIONS_AT + int(Math.max(1, b.length - OPTIONS_AT - 1));
      b[at] = int(254) + 1;
      if (at + 1 < b.length) b[at + 1] = 200 + int(56);
      return b;
    }
    case 4: {
      // overload: option 52 pointing at file/sname that hold option 52 again, or a bad value
      const b = Buffer.alloc(300);
      validRequest().copy(b, 0, 0, 240);
      b.writeUInt32BE(0x63825363, 236);
      const value = rnd() < 0.7 ? 3 : int(256);
      Buffer.from([53, 1, 1, 52, 1, value, 255]).copy(b, 240);
      Buffer.from([52, 1, 3, 52, 1, 1, 255]).copy(b, 108); // file
      Buffer.from([52, 1, 2, 255]).copy(b, 44); // sname
      return b;
    }
    case 5: {
      // oversized: far more options than any MTU
      const b = validRequest();
      const extra = Buffer.concat(Array.from({ length: 20 + int(200) }, () => {
        const len = int(256);
        return Buffer.concat([Buffer.from([int(254) + 1, len]), bytes(len)]);
      }));
      return Buffer.concat([b.subarray(0, 240), Buffer.from([53, 1, 1]), extra, Buffer.from([255])]);
    }
    case 6: {
      // header fields out of range: op, hlen
      const b = validRequest();
      b[0] = int(256);
      b[2] = int(256);
      return b;
    }
    case 7: {
      // options area with no End and trailing garbage, or only pads
      const b = validRequest();
      return Buffer.concat([b.subarray(0, 243), rnd() < 0.5 ? Buffer.alloc(int(1200)) : bytes(int(1200))]);
    }
    default:
      return validRequest();
  }
}

const sock = dgram.createSocket('udp4');
await new Promise<void>((r) => sock.bind(0, r));
const ports = values.ports!.split(',').map(Number);
const count = Number(values.count);
let sent = 0;
let errors = 0;
while (sent < count) {
  // Bursts of 100, then yield, so the socket buffer drains rather than drops everything.
  const batch: Promise<void>[] = [];
  for (let i = 0; i < 100 && sent < count; i++, sent++) {
    const buf = mutate();
    const port = ports[sent % ports.length]!;
    batch.push(new Promise((r) => sock.send(buf, port, values.server!, (e) => { if (e) errors++; r(); })));
  }
  await Promise.all(batch);
}
sock.close();
console.log(JSON.stringify({ sent, errors, seed }));
