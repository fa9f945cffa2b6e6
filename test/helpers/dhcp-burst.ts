// Many DORA exchanges at once, acting as a relay (bound to its own address on port 67,
// giaddr = that address), so it needs no broadcast and the server unicasts back.
// Every ACK is appended to --out (one JSON line: mac, ip) as soon as it arrives, with a
// synchronous write, so the record survives whatever happens to the server.
//   dora:   --count N --concurrency C  run N exchanges (each given up after --timeout ms)
//   verify: for each line of --in, DISCOVER again and print whether the OFFER is the same address
import { parseArgs } from 'node:util';
import { appendFileSync, readFileSync } from 'node:fs';
import { ScriptedClient, buildRequest, typeOf } from './dhcp-client.js';
import { MessageType, Opt } from '../../src/dhcp/packet.js';

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'dora' },
    server: { type: 'string' },
    bind: { type: 'string' },
    count: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '32' },
    timeout: { type: 'string', default: '1000' },
    prefix: { type: 'string', default: '02:00' },
    out: { type: 'string' },
    in: { type: 'string' },
    'max-failures': { type: 'string', default: '1000000000' },
  },
});

const server = values.server!;
const bind = values.bind!;
const client = await ScriptedClient.open({ address: bind, port: 67 }, { address: server, port: 67 });
const timeout = Number(values.timeout);
let xid = (Date.now() & 0xffff) << 16;

const macFor = (i: number) => `${values.prefix}:${[24, 16, 8, 0].map((s) => ((i >>> s) & 255).toString(16).padStart(2, '0')).join(':')}`;

async function dora(mac: string): Promise<string | undefined> {
  const offer = await client.exchange(buildRequest(MessageType.Discover, mac, { xid: xid++ >>> 0, giaddr: bind }), timeout);
  if (!offer || typeOf(offer) !== MessageType.Offer) return undefined;
  const ack = await client.exchange(
    buildRequest(MessageType.Request, mac, { xid: xid++ >>> 0, giaddr: bind, options: { [Opt.ServerId]: server, [Opt.RequestedIp]: offer.yiaddr } }),
    timeout,
  );
  return ack && typeOf(ack) === MessageType.Ack ? ack.yiaddr : undefined;
}

if (values.mode === 'dora') {
  const count = Number(values.count);
  let next = 0;
  let acked = 0;
  let failed = 0;
  const maxFailures = Number(values['max-failures']);
  const worker = async () => {
    while (next < count && failed < maxFailures) {
      const i = next++;
      const mac = macFor(i);
      const ip = await dora(mac);
      if (ip) {
        acked++;
        if (values.out) appendFileSync(values.out, JSON.stringify({ mac, ip }) + '\n');
      } else failed++;
    }
  };
  await Promise.all(Array.from({ length: Number(values.concurrency) }, worker));
  console.log(JSON.stringify({ acked, failed }));
} else {
  const recs = readFileSync(values.in!, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { mac: string; ip: string });
  let same = 0;
  const differ: unknown[] = [];
  for (const r of recs) {
    // A lost datagram on a busy machine is not a lost lease: ask again before counting it.
    let offer;
    for (let attempt = 0; attempt < 4 && !offer; attempt++) {
      offer = await client.exchange(buildRequest(MessageType.Discover, r.mac, { xid: xid++ >>> 0, giaddr: bind }), timeout);
    }
    if (offer?.yiaddr === r.ip) same++;
    else differ.push({ ...r, offered: offer?.yiaddr ?? null });
  }
  console.log(JSON.stringify({ checked: recs.length, same, differ: differ.slice(0, 20), differCount: differ.length }));
}
client.close();
