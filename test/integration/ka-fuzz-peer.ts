// A hostile peer for ka-fuzz.test.ts, run inside a namespace: opens one connection
// per malformed frame (seeded), sends it with a bad-magic trailer, and counts how
// the other side ended the connection. Prints a JSON summary.
import { connect } from 'node:net';
import { encodeFrame, FrameType, HEADER_LEN, MAGIC, VERSION, type Frame } from '../../src/ka/frames.js';

const [host, portStr, kind, countStr, seedStr] = process.argv.slice(2);
const port = Number(portStr);
const count = Number(countStr);
let seed = Number(seedStr ?? 1) >>> 0;
const rnd = () => {
  // xorshift32
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 0x100000000;
};
const int = (n: number) => Math.floor(rnd() * n);
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));

function header(type: number, len: number, over: Partial<{ magic: number; version: number; flags: number }> = {}) {
  const h = Buffer.alloc(HEADER_LEN);
  h[0] = over.magic ?? MAGIC;
  h[1] = over.version ?? VERSION;
  h[2] = type;
  h[3] = over.flags ?? 0;
  h.writeUInt32BE(len, 4);
  return h;
}

const validControl = (): Frame[] => [
  { type: 'HELLO', nonce: bytes(32), session: 'fuzzsession', nodeName: 'fuzz', dataPort: 1, wait: false, goNow: false },
  { type: 'AUTH', proof: bytes(32) },
  { type: 'STATS', position: 5, ringStart: 0, fillPermille: 3, windowMs: 1000, bytesIn: 1, consumerBytes: 1, consumerBlockedMs: 0, pausedMs: 0, children: [] },
  { type: 'RESULT', bytes: 1, digestOk: true, exitCode: 0, durationMs: 1, digest: bytes(32) },
  { type: 'GO_NOW' },
];
const validData = (): Frame[] => [
  { type: 'LINK_HELLO', linkId: int(1000), nonce: bytes(32) },
  { type: 'LINK_AUTH', proof: bytes(32), offset: int(1 << 30) },
  { type: 'DATA', offset: 0, data: bytes(1 + int(64)) },
  { type: 'END', total: 10, digest: bytes(32) },
];

function malformed(): Buffer {
  const pool = kind === 'control' ? validControl() : validData();
  const pick = pool[int(pool.length)] as Frame;
  switch (int(8)) {
    case 0:
      return bytes(1 + int(64));
    case 1: {
      const len = int(300);
      return Buffer.concat([header(int(256), len), bytes(len)]);
    }
    case 2: {
      // a well-formed frame with bytes flipped in its payload (length kept)
      const f = Buffer.from(encodeFrame(pick));
      for (let i = 0, n = 1 + int(4); i < n && f.length > HEADER_LEN; i++) {
        const at = HEADER_LEN + int(f.length - HEADER_LEN);
        f[at] = (f[at] as number) ^ (1 + int(255));
      }
      return f;
    }
    case 3: {
      // a frame that does not belong on this channel
      const other = kind === 'control' ? validData() : validControl();
      return encodeFrame(other[int(other.length)] as Frame);
    }
    case 4:
      return header(int(2) ? FrameType.HELLO : FrameType.LINK_HELLO, 0x7fffffff);
    case 5: {
      const f = Buffer.from(encodeFrame(pick));
      const at = int(4); // magic, version, type or flags
      f[at] = (f[at] as number) ^ (1 + int(255));
      return f;
    }
    case 6: {
      // truncated payload, length consistent (the payload is shorter than the type needs)
      const f = encodeFrame(pick);
      const body = f.subarray(HEADER_LEN, HEADER_LEN + int(Math.max(1, f.length - HEADER_LEN)));
      return Buffer.concat([header(f[2] as number, body.length), body]);
    }
    default: {
      // trailing bytes after a whole payload
      const f = encodeFrame(pick);
      const extra = bytes(1 + int(8));
      return Buffer.concat([header(f[2] as number, f.length - HEADER_LEN + extra.length), f.subarray(HEADER_LEN), extra]);
    }
  }
}

const junk = Buffer.alloc(HEADER_LEN, 0xff); // bad magic: ends a connection whose frame happened to be valid
const summary = { sent: 0, droppedByPeer: 0, timeouts: 0, connectErrors: 0 };

function one(): Promise<void> {
  const frame = malformed();
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let done = false;
    const finish = (how: keyof typeof summary) => {
      if (done) return;
      done = true;
      summary[how]++;
      clearTimeout(t);
      s.destroy();
      resolve();
    };
    const t = setTimeout(() => finish('timeouts'), 5000);
    s.on('connect', () => {
      summary.sent++;
      s.write(Buffer.concat([frame, junk]));
    });
    s.on('data', () => {});
    s.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ECONNRESET' || e.code === 'EPIPE' ? 'droppedByPeer' : 'connectErrors'));
    s.on('close', () => finish('droppedByPeer'));
  });
}

let next = 0;
async function worker() {
  while (next < count) {
    next++;
    await one();
  }
}
await Promise.all(Array.from({ length: 64 }, worker));
process.stdout.write(JSON.stringify(summary) + '\n');
