import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePacket, encodePacket, errorPacket, ErrorCode, writeDataHeader, type TftpPacket } from '../../src/tftp/packet.js';

function roundTrip(p: TftpPacket): TftpPacket {
  const d = decodePacket(encodePacket(p));
  assert.ok(d.ok, d.ok ? '' : d.reason);
  return d.packet;
}

test('RRQ with options round-trips, names lower-cased', () => {
  const p: TftpPacket = { op: 'RRQ', filename: '/X86PC/linux/linux.0', mode: 'octet', options: [['blksize', '1468'], ['tsize', '0'], ['windowsize', '16']] };
  assert.deepEqual(roundTrip(p), p);
  const raw = Buffer.from('\x00\x01f\x00OCTET\x00BlkSize\x001468\x00', 'latin1');
  const d = decodePacket(raw);
  assert.ok(d.ok);
  assert.deepEqual(d.packet, { op: 'RRQ', filename: 'f', mode: 'octet', options: [['blksize', '1468']] });
});

test('WRQ, DATA, ACK, ERROR, OACK round-trip', () => {
  assert.deepEqual(roundTrip({ op: 'WRQ', filename: 'x', mode: 'netascii', options: [] }), { op: 'WRQ', filename: 'x', mode: 'netascii', options: [] });
  const data = roundTrip({ op: 'DATA', block: 65535, data: Buffer.from('hello') });
  assert.equal(data.op, 'DATA');
  assert.equal((data as { block: number }).block, 65535);
  assert.deepEqual(roundTrip({ op: 'ACK', block: 0 }), { op: 'ACK', block: 0 });
  assert.deepEqual(roundTrip({ op: 'ERROR', code: 5, message: 'unknown transfer ID' }), { op: 'ERROR', code: 5, message: 'unknown transfer ID' });
  assert.deepEqual(roundTrip({ op: 'OACK', options: [['blksize', '1468'], ['tsize', '123']] }), { op: 'OACK', options: [['blksize', '1468'], ['tsize', '123']] });
});

test('block numbers are written modulo 65536', () => {
  const b = Buffer.alloc(4);
  writeDataHeader(b, 65536 & 0xffff);
  assert.deepEqual([...b], [0, 3, 0, 0]);
  writeDataHeader(b, 0x1234);
  assert.deepEqual([...b], [0, 3, 0x12, 0x34]);
  const ack = encodePacket({ op: 'ACK', block: 65537 });
  assert.equal(ack.readUInt16BE(2), 1);
});

test('malformed packets give a typed error, never throw', () => {
  const bad = [
    Buffer.alloc(0),
    Buffer.from([0]),
    Buffer.from([0, 9]),
    Buffer.from([0, 1]),
    Buffer.from('\x00\x01file', 'latin1'),
    Buffer.from('\x00\x01file\x00', 'latin1'),
    Buffer.from('\x00\x01file\x00octet', 'latin1'),
    Buffer.from('\x00\x01\x00octet\x00', 'latin1'),
    Buffer.from('\x00\x01f\x00binary\x00', 'latin1'),
    Buffer.from('\x00\x01f\x00octet\x00blksize\x00', 'latin1').subarray(0, 19),
    Buffer.from('\x00\x01f\x00octet\x00blksize\x00512', 'latin1'),
    Buffer.from('\x00\x01f\x00octet\x00\x00512\x00', 'latin1'),
    Buffer.from([0, 3, 1]),
    Buffer.from([0, 4]),
    Buffer.from([0, 5, 0]),
    Buffer.from('\x00\x06blksize\x00', 'latin1'),
    Buffer.alloc(70000, 1),
  ];
  for (const b of bad) {
    const d = decodePacket(b);
    assert.equal(d.ok, false, `accepted ${b.toString('hex').slice(0, 40)}`);
    if (!d.ok) assert.equal(typeof d.reason, 'string');
  }
});

test('an option list padded with one empty string is accepted', () => {
  const d = decodePacket(Buffer.from('\x00\x01f\x00octet\x00tsize\x000\x00\x00', 'latin1'));
  assert.ok(d.ok);
  assert.deepEqual((d.packet as { options: unknown }).options, [['tsize', '0']]);
});

test('ERROR without terminating NUL still decodes', () => {
  const d = decodePacket(Buffer.from('\x00\x05\x00\x01oops', 'latin1'));
  assert.deepEqual(d, { ok: true, packet: { op: 'ERROR', code: 1, message: 'oops' } });
  assert.deepEqual([...errorPacket(ErrorCode.UNKNOWN_TID, 'x')], [0, 5, 0, 5, 0x78, 0]);
});

test('random bytes never throw', () => {
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  for (let i = 0; i < 20000; i++) {
    const len = rnd() % 64;
    const b = Buffer.alloc(len);
    for (let j = 0; j < len; j++) b[j] = rnd() & 0xff;
    if (len >= 2 && i % 2 === 0) b[0] = 0, b[1] = 1 + (rnd() % 6);
    decodePacket(b);
  }
});

test('netascii: LF becomes CR LF, bare CR becomes CR NUL', async () => {
  const { toNetascii } = await import('../../src/tftp/netascii.js');
  assert.deepEqual(toNetascii(Buffer.from('a\nb\rc\r\n')), Buffer.from('a\r\nb\r\0c\r\0\r\n'));
  assert.deepEqual(toNetascii(Buffer.from('plain')), Buffer.from('plain'));
  assert.deepEqual(toNetascii(Buffer.from('\n\n')), Buffer.from('\r\n\r\n'));
});
