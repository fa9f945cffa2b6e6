import { test } from 'node:test';
import assert from 'node:assert/strict';
import { negotiate, type NegotiationLimits } from '../../src/tftp/options.js';

const limits: NegotiationLimits = { maxBlksize: 65464, maxWindowsize: 64, defaultTimeout: 1 };

test('no options: no OACK, RFC 1350 defaults', () => {
  assert.deepEqual(negotiate([], 1000, limits), { blksize: 512, windowsize: 1, timeout: 1, oack: [] });
});

test('blksize capped by config and by interface MTU; UEFI asks 1468', () => {
  assert.equal(negotiate([['blksize', '1468']], 10, limits).blksize, 1468);
  assert.equal(negotiate([['blksize', '65464']], 10, { ...limits, maxBlksize: 1432 }).blksize, 1432);
  const p = negotiate([['blksize', '9000']], 10, { ...limits, mtuBlksize: 1468 });
  assert.equal(p.blksize, 1468);
  assert.deepEqual(p.oack, [['blksize', '1468']]);
  assert.equal(negotiate([['blksize', '99999']], 10, limits).blksize, 65464);
});

test('invalid blksize is left out', () => {
  for (const v of ['7', '0', '-1', 'abc', '', '1e3', ' 512']) {
    const p = negotiate([['blksize', v]], 10, limits);
    assert.equal(p.blksize, 512, v);
    assert.deepEqual(p.oack, [], v);
  }
});

test('tsize answers the file size', () => {
  assert.deepEqual(negotiate([['tsize', '0']], 104857600, limits).oack, [['tsize', '104857600']]);
});

test('timeout 1..255 accepted as asked, else left out', () => {
  assert.equal(negotiate([['timeout', '5']], 1, limits).timeout, 5);
  assert.deepEqual(negotiate([['timeout', '0']], 1, limits).oack, []);
  assert.deepEqual(negotiate([['timeout', '256']], 1, limits).oack, []);
});

test('windowsize capped by config', () => {
  const p = negotiate([['windowsize', '16']], 1, limits);
  assert.equal(p.windowsize, 16);
  assert.deepEqual(p.oack, [['windowsize', '16']]);
  assert.equal(negotiate([['windowsize', '1000']], 1, limits).windowsize, 64);
  assert.deepEqual(negotiate([['windowsize', '0']], 1, limits).oack, []);
  assert.deepEqual(negotiate([['windowsize', '65536']], 1, limits).oack, []);
});

test('unknown options ignored, request order kept, first duplicate wins', () => {
  const p = negotiate([['utimeout', '1000'], ['tsize', '0'], ['multicast', ''], ['blksize', '1024'], ['blksize', '2048']], 7, limits);
  assert.deepEqual(p.oack, [['tsize', '7'], ['blksize', '1024']]);
  assert.equal(p.blksize, 1024);
});
