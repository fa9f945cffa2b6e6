// The seed's other way to clone: the golden itself is the live source. The lab golden's root
// is mounted in a namespace of its own on the deploy network, `kaboot deploy --live` runs
// there (nothing captured first), and a BIOS VM with an empty disk PXE boots from
// `kaboot serve`, receives the golden's stream through the relay as the agent does for any
// deployment, and boots from its own disk to the golden's marker with its own identity;
// its files equal the golden's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prepareInputs, startAppliance, api, labNodes, bootNodes, rootPartition, changedOnPurpose, goldenDescFile, type LabAppliance } from '../helpers/deploy-lab.js';
import { goldenMarker, withDiskPartition } from '../helpers/lab-vm.js';
import { buildManifest, compareManifests, formatDifferences } from '../helpers/fs-manifest.js';
import { kabootBin } from '../helpers/kaboot-process.js';

const minutes = (m: number) => m * 60_000;

interface DeploymentView { id: string; state: string; image: string; nodes: { mac: string; state: string; step?: string }[] }

test('lab deploy --live: the golden streams its root straight to a BIOS VM, which boots the clone from its own disk', { timeout: minutes(45) }, async (t) => {
  const inputs = await prepareInputs({ capture: false });
  const [node] = labNodes(inputs.dir, ['bios']);
  let app: LabAppliance | undefined;
  let ok = false;
  try {
    app = await startAppliance(inputs);
    const a = app;
    const gold = await a.lab.host('gold', { cidr: '10.97.0.2/24' });
    const tokenFile = join(inputs.dir, 'api-token');
    writeFileSync(tokenFile, a.token, { mode: 0o600 });
    const started = Date.now();
    const marker = await withDiskPartition(inputs.goldenDisk, inputs.golden.partition.number, async (root) => {
      const golden = a.lab.spawn(gold.ns, [
        'node', kabootBin, 'deploy', '--live', '--name', 'golden-live', '--from', root, '--desc', goldenDescFile(inputs), '--bootloader', 'grub-pc',
        '--mac', node!.mac, '--hostname-pattern', 'live{n}', '--session-wait', '600', '--server', a.server, '--token-file', tokenFile,
      ], { reject: false, all: true });
      let view: DeploymentView | undefined;
      for (let i = 0; i < 600 && !view; i++) {
        view = (await api<{ deployments: DeploymentView[] }>(a, '/api/deployments')).deployments.find((d) => d.nodes.some((n) => n.mac === node!.mac));
        if (!view && golden.exitCode !== null) assert.fail(`the golden exited before its deployment appeared:\n${String((await golden).all)}`);
        if (!view) await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok(view, 'no deployment for the node');
      assert.equal(view.image, 'golden-live');
      t.diagnostic(`deployment ${view.id} from the live golden`);
      await bootNodes(a, [node!], inputs.dir);
      const g = await golden;
      assert.equal(g.exitCode, 0, `the golden: ${String(g.all)}`);
      t.diagnostic(`the golden finished after ${((Date.now() - started) / 1000).toFixed(0)} s`);
      const m = await node!.vm!.waitFor(goldenMarker, minutes(30));
      await node!.vm!.exited;
      return { host: m[1]!, machineId: m[2]!, root: m[3]!, at: (Date.now() - started) / 1000, id: view.id };
    });
    t.diagnostic(`${node!.name}: marker after ${marker.at.toFixed(0)} s, host=${marker.host} root=${marker.root}`);
    assert.equal(marker.host, 'live1');
    assert.notEqual(marker.root, inputs.golden.partition.uuid, "the clone has a root UUID of its own");
    assert.notEqual(marker.machineId, inputs.golden.machine_id, 'the clone has a machine-id of its own');
    const view = await api<DeploymentView>(app, `/api/deployments/${marker.id}`);
    assert.equal(view.state, 'done', JSON.stringify(view));
    assert.equal(view.nodes[0]?.state, 'deployed');
    const registry = await api<{ mac: string; next_boot: string }[] | { nodes: { mac: string; next_boot: string }[] }>(app, '/api/nodes');
    const list = Array.isArray(registry) ? registry : registry.nodes;
    assert.equal(list.find((x) => x.mac === node!.mac)?.next_boot, 'local');

    const golden = await withDiskPartition(inputs.goldenDisk, inputs.golden.partition.number, (root) => buildManifest(root));
    const clone = await withDiskPartition(node!.disk, await rootPartition(node!.disk), (root) => buildManifest(root));
    const diffs = compareManifests(golden, clone, { ignore: changedOnPurpose });
    assert.deepEqual(diffs, [], `the clone differs from the golden:\n${formatDifferences(diffs)}`);
    t.diagnostic(`${clone.size} entries equal the golden's`);
    ok = true;
  } finally {
    await node?.vm?.kill().catch(() => undefined);
    if (!ok) {
      t.diagnostic(`${node?.name} console tail:\n${node?.vm?.console().slice(-3000) ?? '(not started)'}`);
      t.diagnostic(`kaboot log tail:\n${app?.kaboot.logs().slice(-40).map((l) => JSON.stringify(l)).join('\n')}`);
      t.diagnostic(`work folder kept: ${inputs.dir}`);
    }
    await app?.stop();
    if (ok) rmSync(inputs.dir, { recursive: true, force: true });
  }
});
