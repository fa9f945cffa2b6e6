// N = 1, 3 and 8 receivers, each in its own namespace, get a 1 GiB stream through
// the relay chain byte-exact: each node's consumer (openssl) hashes what it was fed,
// and the node itself checks the stream's SHA-256 against the source's.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { GiB, MiB, kaLab, makeData, serverReady, serverResult, clientResult, anyClientFails, mbps, scratch, type KaLab } from './ka-lab.js';
import { rmSync } from 'node:fs';

let data: { file: string; sha256: string };
const dataDir = scratch('data');
before(async () => {
  data = await makeData(dataDir, GiB);
});
after(() => rmSync(dataDir, { recursive: true, force: true }));

for (const [n, subnet] of [[1, 101], [3, 103], [8, 108]] as const) {
  test(`${n} receiver(s) get a 1 GiB stream byte-exact`, { timeout: 600_000 }, async () => {
    const k: KaLab = await kaLab(`kt${n}`, n, subnet);
    try {
      const t0 = Date.now();
      const server = k.server(['-s', 'getstage2', '-n', String(n), '-f', data.file]);
      await serverReady(server);
      // discovery by session name (UDP broadcast) for every node
      const clients = k.nodes.map((_, i) => k.client(i, ['-s', 'getstage2']));
      const { exitCode, json } = await Promise.race([serverResult(server), anyClientFails(clients)]);
      const results = await Promise.all(clients.map(clientResult));
      const secs = (Date.now() - t0) / 1000;
      assert.equal(exitCode, 0, server.log().slice(-3000));
      assert.equal(json.ok, true);
      assert.equal(json.total, GiB);
      assert.equal(json.digest, data.sha256);
      assert.equal(json.nodes.length, n);
      for (let i = 0; i < n; i++) {
        assert.equal(k.digestOf(i), data.sha256, `node ${i}'s consumer saw other bytes`);
        const r = results[i];
        assert.equal(r?.exitCode, 0, `client ${i}: ${k.nodes[i]?.name}`);
        assert.equal(r?.json?.digestOk, true);
        assert.equal(r?.json?.bytes, GiB);
      }
      for (const node of json.nodes) assert.equal(node.ok, true);
      const rates = json.nodes.map((x) => mbps(x.rate)).join(', ');
      const cpu = results.map((r) => ((r.json?.cpuMs ?? 0) / 1000).toFixed(1)).join(', ');
      console.log(
        `N=${n}: session ${mbps(json.throughput)} MiB/s; per receiver MiB/s: ${rates}; node CPU s/GiB: ${cpu}; coordinator CPU ${(json.cpuMs / 1000).toFixed(1)} s; test ${secs.toFixed(1)} s`,
      );
      assert.ok(json.transferMs > 0 && MiB > 0);
    } finally {
      await k.destroy();
    }
  });
}
