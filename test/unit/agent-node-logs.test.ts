import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import Fastify from 'fastify';
import { NodeRegistry } from '../../src/nodes/registry.js';
import { NodeLogs, formatLogLine } from '../../src/nodes/node-logs.js';
import { nodeLogRoutes } from '../../src/http/node-log-routes.js';
import { tempDirForFile } from '../helpers/temp-dir.js';


const token = 'test-token-0123456789abcdef';
const mac = '52:54:00:12:34:56';
const auth = { authorization: `Bearer ${token}` };

async function app(opts: { maxBytes?: number; keep?: number } = {}) {
  const stateDir = tempDirForFile('nodelogs');
  const nodes = new NodeRegistry(stateDir);
  const logs = new NodeLogs(stateDir, opts);
  // As src/http/server.ts: extra properties are refused, not dropped.
  const a = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false } }, bodyLimit: 64 * 1024 });
  await a.register(nodeLogRoutes, { prefix: '/api', stateDir, nodes, token, logs });
  await a.ready();
  return { a, stateDir, nodes, logs };
}

test('text lines are appended, in order, to the node\'s file', async () => {
  const { a, logs } = await app();
  let r = await a.inject({ method: 'POST', url: `/api/nodes/${mac}/log`, headers: { ...auth, 'content-type': 'text/plain' }, payload: 'one\ntwo\n' });
  assert.equal(r.statusCode, 200);
  assert.deepEqual(r.json(), { appended: 2 });
  r = await a.inject({ method: 'POST', url: `/api/nodes/52-54-00-12-34-56/log`, headers: { ...auth, 'content-type': 'text/plain' }, payload: 'three' });
  assert.equal(r.statusCode, 200);
  const text = readFileSync(logs.file(mac), 'utf8');
  assert.deepEqual(text.trimEnd().split('\n').map((l) => l.split(' ').slice(3).join(' ')), ['one', 'two', 'three']);
  r = await a.inject({ method: 'GET', url: `/api/nodes/${mac}/log`, headers: auth });
  assert.equal(r.statusCode, 200);
  assert.equal(r.body, text);
});

test('JSON lines keep step, stream and time', async () => {
  const { a } = await app();
  const body = [
    { step: 'partition', stream: 'stdout', line: 'Device Boot Start', ts: '2026-01-02T03:04:05.000Z' },
    { step: 'partition', stream: 'stderr', line: 'warning: x' },
  ].map((l) => JSON.stringify(l)).join('\n');
  const r = await a.inject({ method: 'POST', url: `/api/nodes/${mac}/log`, headers: { ...auth, 'content-type': 'application/x-ndjson' }, payload: body });
  assert.equal(r.statusCode, 200);
  const got = (await a.inject({ method: 'GET', url: `/api/nodes/${mac}/log`, headers: auth })).body.trimEnd().split('\n');
  assert.equal(got[0], '2026-01-02T03:04:05.000Z partition stdout Device Boot Start');
  assert.match(got[1]!, /^\S+Z partition stderr warning: x$/);
});

test('a bad line refuses the whole body and appends nothing', async () => {
  const { a } = await app();
  const body = JSON.stringify({ step: 'a', line: 'fine' }) + '\n' + JSON.stringify({ step: 'a', line: 5 }) + '\n';
  let r = await a.inject({ method: 'POST', url: `/api/nodes/${mac}/log`, headers: { ...auth, 'content-type': 'application/x-ndjson' }, payload: body });
  assert.equal(r.statusCode, 400);
  assert.match(r.json().message, /line 2/);
  r = await a.inject({ method: 'POST', url: `/api/nodes/${mac}/log`, headers: { ...auth, 'content-type': 'application/x-ndjson' }, payload: '{not json' });
  assert.equal(r.statusCode, 400);
  r = await a.inject({ method: 'POST', url: `/api/nodes/${mac}/log`, headers: { ...auth, 'content-type': 'application/x-ndjson' }, payload: JSON.stringify({ line: 'x', extra: 1 }) });
  assert.equal(r.statusCode, 400);
  r = await a.inject({ method: 'POST', url: `/api/nodes/${mac}/log`, headers: { ...auth, 'content-type': 'application/json' }, payload: '{"line":"x"}' });
  assert.equal(r.statusCode, 415);
  r = await a.inject({ method: 'POST', url: `/api/nodes/not-a-mac/log`, headers: { ...auth, 'content-type': 'text/plain' }, payload: 'x' });
  assert.equal(r.statusCode, 400);
  r = await a.inject({ method: 'GET', url: `/api/nodes/${mac}/log`, headers: auth });
  assert.equal(r.body, '');
});

test('every route needs the token', async () => {
  const { a } = await app();
  for (const [method, url, payload] of [['POST', `/api/nodes/${mac}/log`, 'x'], ['GET', `/api/nodes/${mac}/log`, undefined], ['POST', `/api/nodes/${mac}/status`, '{"state":"booting"}']] as const) {
    const r = await a.inject({ method, url, headers: { authorization: 'Bearer wrong', 'content-type': method === 'POST' && url.endsWith('status') ? 'application/json' : 'text/plain' }, payload });
    assert.equal(r.statusCode, 401, `${method} ${url}`);
  }
});

test('status changes the registry and is logged; bad states are refused', async () => {
  const { a, nodes } = await app();
  let r = await a.inject({ method: 'POST', url: `/api/nodes/${mac}/status`, headers: auth, payload: { state: 'deploying', step: 'partition', message: 'sfdisk /dev/vda' } });
  assert.equal(r.statusCode, 200);
  assert.equal(nodes.get(mac)?.state, 'deploying');
  r = await a.inject({ method: 'POST', url: `/api/nodes/${mac}/status`, headers: auth, payload: { state: 'exploded' } });
  assert.equal(r.statusCode, 400);
  r = await a.inject({ method: 'POST', url: `/api/nodes/${mac}/status`, headers: auth, payload: { state: 'failed', bogus: 1 } });
  assert.equal(r.statusCode, 400);
  assert.equal(nodes.get(mac)?.state, 'deploying');
  const log = (await a.inject({ method: 'GET', url: `/api/nodes/${mac}/log`, headers: auth })).body;
  assert.match(log, / partition status state=deploying sfdisk \/dev\/vda\n$/);
});

test('the log rotates at its size and keeps N old files', async () => {
  const { logs } = await app({ maxBytes: 200, keep: 2 });
  for (let i = 0; i < 40; i++) logs.append(mac, [formatLogLine({ line: `line ${i}` })]);
  const file = logs.file(mac);
  assert.ok(existsSync(`${file}.1`) && existsSync(`${file}.2`) && !existsSync(`${file}.3`));
  const all = [readFileSync(`${file}.2`, 'utf8'), readFileSync(`${file}.1`, 'utf8'), readFileSync(file, 'utf8')].join('');
  const nums = all.trimEnd().split('\n').map((l) => Number(l.split(' ').pop()));
  // Consecutive, ending at the last line: rotation lost nothing among what it kept.
  for (let i = 1; i < nums.length; i++) assert.equal(nums[i], nums[i - 1]! + 1);
  assert.equal(nums.at(-1), 39);
  for (const f of [file, `${file}.1`, `${file}.2`]) assert.ok(readFileSync(f).length <= 200);
});

test('follow=1 sends what is there, then every new line', async () => {
  const { a } = await app();
  await a.inject({ method: 'POST', url: `/api/nodes/${mac}/log`, headers: { ...auth, 'content-type': 'text/plain' }, payload: 'before\n' });
  await a.listen({ host: '127.0.0.1', port: 0 });
  const port = (a.server.address() as { port: number }).port;
  try {
    const received: string[] = [];
    let sawBefore!: () => void;
    const before = new Promise<void>((r) => (sawBefore = r));
    let sawAfter!: () => void;
    const after = new Promise<void>((r) => (sawAfter = r));
    const req = request({ host: '127.0.0.1', port, path: `/api/nodes/${mac}/log?follow=1`, headers: auth }, (res) => {
      assert.equal(res.statusCode, 200);
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        received.push(c);
        const all = received.join('');
        if (all.includes('before')) sawBefore();
        if (all.includes('after')) sawAfter();
      });
    });
    req.end();
    await before;
    await a.inject({ method: 'POST', url: `/api/nodes/${mac}/log`, headers: { ...auth, 'content-type': 'text/plain' }, payload: 'after\n' });
    await after;
    req.destroy();
    assert.match(received.join(''), /before\n.*after\n$/s);
  } finally {
    await a.close();
  }
});
