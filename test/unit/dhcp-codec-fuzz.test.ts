// Fuzz the DHCP decoder with random and mutated packets: it must never throw, must
// always answer ok or a typed error, and whatever it accepts must survive encode and
// decode unchanged. Seeded, so a failure can be replayed: FUZZ_SEED=<n> FUZZ_COUNT=<n>.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { decodePacket, encodePacket } from '../../src/dhcp/codec.js';
import { getOpt, optionTable, validateOptions, describeOptions, setOpt, type KnownOpt } from '../../src/dhcp/options.js';
import { MessageType, Opt, type DhcpPacket } from '../../src/dhcp/packet.js';
import type { DhcpDecodeErrorCode } from '../../src/dhcp/errors.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261122);
const COUNT = Number(process.env.FUZZ_COUNT ?? 120_000);
const MAX_UDP_PAYLOAD = 65507;

/** mulberry32: small, fast, good enough to spread mutations */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), byte: () => Math.floor(next() * 256) };
}

const FIXTURES = fileURLToPath(new URL('../fixtures/dhcp/', import.meta.url));
const KNOWN = Object.keys(optionTable).map(Number) as KnownOpt[];

function seeds(): Buffer[] {
  const out: Buffer[] = readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.bin'))
    .map((f) => readFileSync(join(FIXTURES, f)));
  // replies of our own, overloaded into file and sname, so that mutations hit those paths
  const first = decodePacket(out[0]!);
  if (!first.ok) throw new Error('fixture does not decode');
  const o = new Map<number, Buffer>();
  setOpt(o, Opt.MessageType, MessageType.Offer);
  setOpt(o, Opt.ServerId, '10.0.0.1');
  setOpt(o, Opt.VendorSpecific, { discoveryControl: 3, bootServers: [{ type: 0x8000, addresses: ['10.0.0.1'] }], bootMenu: [{ type: 0x8000, description: 'kaboot' }], menuPrompt: { timeout: 0, prompt: 'PXE' } });
  setOpt(o, Opt.Ipxe, new Map([[19, Buffer.from([1])]]));
  o.set(224, Buffer.alloc(120, 0x41));
  o.set(225, Buffer.alloc(300, 0x42));
  const base: DhcpPacket = { ...first.packet, op: 2, options: o };
  out.push(encodePacket(base, { maxSize: 28 + 240 + 320 }));
  out.push(encodePacket({ ...base, options: new Map([...o].filter(([c]) => c !== 225)) }, { maxSize: 28 + 240 + 60 }));
  out.push(encodePacket(base, { maxSize: 1500 }));
  return out;
}

type Rng = ReturnType<typeof prng>;

function optionOffsets(buf: Buffer): number[] {
  const offs: number[] = [];
  let i = 240;
  while (i < buf.length && buf[i] !== 255) {
    if (buf[i] === 0) {
      i++;
      continue;
    }
    offs.push(i);
    i += 2 + (buf[i + 1] ?? 0);
  }
  return offs;
}

const mutations: Record<string, (b: Buffer, r: Rng) => Buffer> = {
  truncate: (b, r) => b.subarray(0, r.int(b.length + 1)),
  flip: (b, r) => {
    const c = Buffer.from(b);
    for (let n = 1 + r.int(8); n > 0; n--) c[r.int(c.length)] = r.byte();
    return c;
  },
  flipOptions: (b, r) => {
    const c = Buffer.from(b);
    for (let n = 1 + r.int(4); n > 0; n--) c[240 + r.int(Math.max(1, c.length - 240))] = r.byte();
    return c;
  },
  badLength: (b, r) => {
    const c = Buffer.from(b);
    const offs = optionOffsets(c);
    const at = offs[r.int(offs.length)];
    if (at !== undefined && at + 1 < c.length) c[at + 1] = r.next() < 0.5 ? r.byte() : Math.min(255, (c[at + 1] ?? 0) + 1 + r.int(4));
    return c;
  },
  oversized: (b, r) => {
    const extra = Buffer.alloc(r.int(r.next() < 0.05 ? MAX_UDP_PAYLOAD - b.length : 2000));
    for (let i = 0; i < extra.length; i++) extra[i] = r.next() < 0.3 ? r.byte() : 0;
    return Buffer.concat([b, extra]);
  },
  dropEnd: (b) => {
    const end = b.indexOf(255, 240);
    return end < 0 ? b : b.subarray(0, end);
  },
  overloadLoop: (b, r) => {
    const c = Buffer.from(b);
    const v = 1 + r.int(3);
    Buffer.from([52, 1, v]).copy(c, 240);
    const area = r.next() < 0.5 ? 108 : 44;
    Buffer.from([0, 0, 52, 1, r.int(5), 255]).copy(c, area + r.int(20));
    return c;
  },
  overloadRandom: (b, r) => {
    const c = Buffer.from(b);
    Buffer.from([52, 1, r.int(5)]).copy(c, 240);
    for (let i = 44; i < 236; i++) if (r.next() < 0.3) c[i] = r.byte();
    return c;
  },
  rfc3396Chain: (b, r) => {
    const code = 1 + r.int(254);
    const n = 1 + r.int(r.next() < 0.1 ? 250 : 20);
    const parts: Buffer[] = [b.subarray(0, 240)];
    for (let i = 0; i < n; i++) {
      const len = r.int(256);
      const v = Buffer.alloc(len, r.byte());
      parts.push(Buffer.from([code === 52 || code === 255 ? 224 : code, len]), v);
    }
    parts.push(b.subarray(240));
    return Buffer.concat(parts).subarray(0, MAX_UDP_PAYLOAD);
  },
  randomOptions: (b, r) => {
    const c = Buffer.alloc(240 + r.int(400));
    b.copy(c, 0, 0, 240);
    for (let i = 240; i < c.length; i++) c[i] = r.byte();
    return c;
  },
  randomBytes: (_b, r) => {
    const c = Buffer.alloc(r.int(700));
    for (let i = 0; i < c.length; i++) c[i] = r.byte();
    return c;
  },
};

const CODES: ReadonlySet<DhcpDecodeErrorCode> = new Set(['short', 'bad-op', 'bad-hlen', 'bad-magic', 'option-overrun', 'bad-overload', 'overload-loop']);

function samePacket(a: DhcpPacket, b: DhcpPacket): string | undefined {
  for (const k of ['op', 'htype', 'hlen', 'hops', 'xid', 'secs', 'flags', 'ciaddr', 'yiaddr', 'siaddr', 'giaddr', 'sname', 'file'] as const) {
    if (a[k] !== b[k]) return `${k}: ${a[k]} != ${b[k]}`;
  }
  if (!a.chaddr.equals(b.chaddr)) return 'chaddr';
  if (a.options.size !== b.options.size) return `options: ${[...a.options.keys()]} != ${[...b.options.keys()]}`;
  for (const [code, v] of a.options) {
    const w = b.options.get(code);
    if (!w || !v.equals(w)) return `option ${code}`;
  }
  return undefined;
}

test(`decodePacket survives ${COUNT} random and mutated packets (seed ${SEED})`, () => {
  const r = prng(SEED);
  const base = seeds();
  const names = Object.keys(mutations);
  const stats = { ok: 0, errors: {} as Record<string, number>, byMutation: {} as Record<string, number> };
  for (let n = 0; n < COUNT; n++) {
    let buf = base[r.int(base.length)]!;
    const rounds = 1 + (r.next() < 0.3 ? r.int(3) : 0);
    const applied: string[] = [];
    for (let k = 0; k < rounds; k++) {
      const m = names[r.int(names.length)]!;
      applied.push(m);
      buf = mutations[m]!(buf, r);
    }
    for (const m of applied) stats.byMutation[m] = (stats.byMutation[m] ?? 0) + 1;
    const where = `case ${n} (seed ${SEED}, mutations ${applied.join('+')}, ${buf.length} bytes: ${buf.subarray(0, 64).toString('hex')}...)`;

    let res;
    try {
      res = decodePacket(buf);
    } catch (e) {
      assert.fail(`decodePacket threw on ${where}: ${String(e)}`);
    }
    if (!res.ok) {
      assert.ok(CODES.has(res.error.code), `unknown error code ${res.error.code} on ${where}`);
      assert.equal(typeof res.error.message, 'string');
      stats.errors[res.error.code] = (stats.errors[res.error.code] ?? 0) + 1;
      continue;
    }
    assert.equal(res.ok, true);
    stats.ok++;
    const p = res.packet;
    try {
      for (const code of KNOWN) getOpt(p.options, code);
      validateOptions(p.options);
      if (n % 16 === 0) JSON.stringify(describeOptions(p.options));
    } catch (e) {
      assert.fail(`typed option access threw on ${where}: ${String(e)}`);
    }
    // Round trip: what decoded must encode, and decode back to the same packet.
    const bytes = encodePacket(p, { maxSize: 70_000 });
    const again = decodePacket(bytes);
    if (!again.ok) assert.fail(`re-decode failed (${again.error.code}: ${again.error.message}) on ${where}`);
    const diff = samePacket(p, again.packet);
    if (diff) assert.fail(`round trip changed ${diff} on ${where}`);
    if (n % 8 === 0) {
      // Encoding is deterministic: re-encoding the re-decoded packet gives the same bytes,
      // also when a small maxSize forces overload (when that fits at all).
      assert.ok(encodePacket(again.packet, { maxSize: 70_000 }).equals(bytes), `encode not stable on ${where}`);
      let small: Buffer | undefined;
      try {
        small = encodePacket({ ...p, sname: '', file: '' }, { maxSize: 576 });
      } catch {
        /* too big for 576 even overloaded: fine */
      }
      if (small) {
        const s = decodePacket(small);
        if (!s.ok) assert.fail(`overloaded re-decode failed on ${where}`);
        const d2 = samePacket({ ...p, sname: '', file: '' }, s.packet);
        if (d2) assert.fail(`overloaded round trip changed ${d2} on ${where}`);
      }
    }
  }
  console.log(JSON.stringify({ seed: SEED, count: COUNT, ...stats }));
  assert.ok(stats.ok > COUNT / 10, 'enough packets decode to exercise the round trip');
  for (const code of CODES) assert.ok((stats.errors[code] ?? 0) > 0, `fuzzing reached error ${code}`);
});
