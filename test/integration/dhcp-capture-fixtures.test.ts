// The committed DHCP fixtures are what today's clients send: capture.sh captures the
// namespace-only targets again (dhclient, udhcpc, udhcpc as a PXE client, isc-dhcpd's
// overloaded replies) into a temporary folder, and every packet matches its committed
// twin in all but the fields that change from run to run (xid, secs).
// The firmware captures (qemu) are left to the lab tests, which boot the same firmware.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { decodePacket } from '../../src/dhcp/codec.js';
import type { DhcpPacket } from '../../src/dhcp/packet.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/dhcp/', import.meta.url));
const TARGETS = ['dhclient', 'udhcpc', 'udhcpc-pxe', 'isc-dhcpd'];

function decoded(buf: Buffer, name: string): DhcpPacket {
  const r = decodePacket(buf);
  if (!r.ok) assert.fail(`${name}: ${r.error.code}: ${r.error.message}`);
  return r.packet;
}

test('capture.sh captures again what the committed fixtures hold', { timeout: 240_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'kaboot-capture-'));
  try {
    const run = await execa('bash', [join(FIXTURES, 'capture.sh'), ...TARGETS], { env: { OUT: out }, reject: false, all: true });
    assert.equal(run.exitCode, 0, `capture.sh failed:\n${run.all}`);
    const files = readdirSync(out).filter((f) => f.endsWith('.bin'));
    assert.deepEqual(files.sort(), [
      'dhclient-discover.bin',
      'dhclient-request.bin',
      'isc-dhcpd-ack.bin',
      'isc-dhcpd-offer.bin',
      'udhcpc-discover.bin',
      'udhcpc-pxe-discover.bin',
      'udhcpc-pxe-request.bin',
      'udhcpc-request.bin',
    ]);
    for (const f of files) {
      const fresh = readFileSync(join(out, f));
      const kept = readFileSync(join(FIXTURES, f));
      assert.equal(fresh.length, kept.length, `${f}: length`);
      const a = decoded(fresh, f);
      const b = decoded(kept, f);
      const { xid: _ax, secs: _as, options: ao, ...af } = a;
      const { xid: _bx, secs: _bs, options: bo, ...bf } = b;
      assert.deepEqual(af, bf, `${f}: fixed fields`);
      assert.deepEqual([...ao.keys()], [...bo.keys()], `${f}: option codes and order`);
      for (const [code, v] of ao) assert.deepEqual(v, bo.get(code), `${f}: option ${code}`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
