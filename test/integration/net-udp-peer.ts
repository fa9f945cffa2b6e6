// A UDP peer run inside a test namespace (`node --import tsx net-udp-peer.ts SPEC`).
// SPEC is JSON: { sockets: [{ name, port, ifname?, address?, broadcast? }] }. A socket
// with an ifname is a kaboot device socket (openDeviceSocket, broadcast unless
// broadcast: false); one without is a plain dgram socket bound to address:port with
// broadcast on, as a client would use. The peer reports on stdout,
// one JSON object a line:
//   { event: 'ready', sockets: { name: { address, port } } }
//   { event: 'open-failed', name, code, message }            (then it exits 1)
//   { event: 'message', name, from, port, data }
//   { event: 'sent', name } | { event: 'send-failed', name, message }
// and reads commands on stdin, one a line: { name, address, port, data } to send, or
// { name, setBroadcast: true | false } (answered by { event: 'broadcast-set', name }).
import dgram from 'node:dgram';
import { createInterface } from 'node:readline';
import { openDeviceSocket } from '../../src/net/udp-socket.js';

interface SocketSpec { name: string; port: number; ifname?: string; address?: string; broadcast?: boolean }
type Command = { name: string; address: string; port: number; data: string } | { name: string; setBroadcast: boolean };

const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function open(spec: SocketSpec): Promise<dgram.Socket> {
  if (spec.ifname) return openDeviceSocket(spec.ifname, spec.port, { broadcast: spec.broadcast ?? true, address: spec.address });
  const socket = dgram.createSocket({ type: 'udp4' });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ port: spec.port, address: spec.address ?? '0.0.0.0' }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.setBroadcast(true);
  return socket;
}

const specs = (JSON.parse(process.argv[2] ?? '{}') as { sockets?: SocketSpec[] }).sockets ?? [];
const sockets = new Map<string, dgram.Socket>();
for (const spec of specs) {
  try {
    const socket = await open(spec);
    socket.on('message', (msg, rinfo) => say({ event: 'message', name: spec.name, from: rinfo.address, port: rinfo.port, data: msg.toString() }));
    socket.on('error', (e) => say({ event: 'socket-error', name: spec.name, message: e.message }));
    sockets.set(spec.name, socket);
  } catch (e) {
    const err = e as Error & { code?: string };
    say({ event: 'open-failed', name: spec.name, code: err.code, message: err.message });
    process.exit(1);
  }
}
say({ event: 'ready', sockets: Object.fromEntries([...sockets].map(([n, s]) => [n, s.address()])) });

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const cmd = JSON.parse(line) as Command;
  const socket = sockets.get(cmd.name);
  if (!socket) {
    say({ event: 'send-failed', name: cmd.name, message: 'no such socket' });
    continue;
  }
  if ('setBroadcast' in cmd) {
    socket.setBroadcast(cmd.setBroadcast);
    say({ event: 'broadcast-set', name: cmd.name });
    continue;
  }
  socket.send(cmd.data, cmd.port, cmd.address, (err) =>
    say(err ? { event: 'send-failed', name: cmd.name, message: err.message } : { event: 'sent', name: cmd.name }));
}
process.exit(0);
