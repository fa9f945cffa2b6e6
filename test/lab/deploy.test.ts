// The clone flow, end to end, on real firmware: a golden Debian (test/lab/golden.sh) is
// captured into kaboot's image store and deployed by `kaboot deploy` to four qemu TCG VMs
// with empty disks that PXE boot from `kaboot serve`: two BIOS, one UEFI, and one more
// BIOS node that is killed while it receives. The three finish, are flipped to local boot,
// reboot from their own disk and reach the golden's marker with their new host name and
// root UUID; their files equal the golden's (paths, types, modes, owners, xattrs, ACLs,
// contents); the killed node is reported failed at its step, with its log kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { prepareInputs, startAppliance, deploy, api, labNodes, bootNodes, rootPartition, changedOnPurpose, type LabAppliance, type LabInputs, type LabNode } from '../helpers/deploy-lab.js';
import { goldenMarker, withDiskPartition } from '../helpers/lab-vm.js';
import { buildManifest, compareManifests, formatDifferences } from '../helpers/fs-manifest.js';

interface DeploymentView {
  id: string;
  state: string;
  message?: string;
  nodes: { mac: string; n: number; state: string; step?: string; message?: string; firmware?: string; hostname?: string; bytes?: number }[];
}

const minutes = (m: number) => m * 60_000;

test('lab deploy: a golden Debian onto 2 BIOS + 1 UEFI VMs through kaboot, a 4th node killed mid-receive is reported failed', { timeout: minutes(75) }, async (t) => {
  const inputs: LabInputs = await prepareInputs();
  t.diagnostic(`inputs: ${JSON.stringify(inputs.seconds)} (s); golden ${inputs.golden.key}, ${inputs.golden.partition.used_bytes} bytes used`);
  let app: LabAppliance | undefined;
  const nodes: LabNode[] = labNodes(inputs.dir, ['bios', 'bios', 'uefi', 'bios']);
  const victim = nodes[3]!;
  let ok = false;
  try {
    app = await startAppliance(inputs);
    const id = await deploy(app, [...nodes.flatMap((n) => ['--mac', n.mac]), '--hostname-pattern', 'node{n}', '--session-wait', '600']);
    t.diagnostic(`deployment ${id}`);
    const started = Date.now();
    await bootNodes(app, nodes, inputs.dir);

    // The victim dies once its file systems are streaming in.
    await victim.vm!.waitFor(/\[receive\] /, minutes(20));
    await new Promise((r) => setTimeout(r, 3000));
    await victim.vm!.kill();
    t.diagnostic(`killed ${victim.name} during receive after ${((Date.now() - started) / 1000).toFixed(0)} s`);

    const clones = nodes.slice(0, 3);
    const markers = await Promise.all(clones.map(async (n) => {
      const m = await n.vm!.waitFor(goldenMarker, minutes(40));
      const at = (Date.now() - started) / 1000;
      await n.vm!.exited;
      return { n, host: m[1]!, machineId: m[2]!, root: m[3]!, at };
    }));
    for (const m of markers) t.diagnostic(`${m.n.name} (${m.n.firmware}): marker after ${m.at.toFixed(0)} s, host=${m.host} root=${m.root}`);
    // what the agent knew without doing it again: iPXE's lease, the image's initramfs record,
    // and the image's own GRUB menu (on the UEFI node's GPT disk with part_gpt for part_msdos);
    // and the UEFI node's first boot straight from its disk
    for (const n of clones) {
      const said = n.vm!.console();
      assert.match(said, /the boot firmware's lease \(ip= on the kernel line\)/, `${n.name} used iPXE's lease`);
      assert.match(said, /initramfs: boot\/initrd\.img-\S+: known from the image's record/, `${n.name} used the image's initramfs record`);
      assert.match(said, /GRUB menu: the image's boot\/grub\/grub\.cfg, \d+ name\(s\) moved/, `${n.name}: its GRUB menu`);
      // UEFI: the first boot after the deploy went to the disk through BootNext, not through PXE
      if (n.firmware === 'uefi') {
        assert.match(said, /first boot: from \/dev\/\S+ \(NVRAM entry Boot([0-9A-F]{4})/, `${n.name}: BootNext set`);
        assert.match(said, /BdsDxe: (loading|starting) Boot[0-9A-F]{4} "kaboot local disk"/, `${n.name}: OVMF took BootNext`);
      }
    }

    let view: DeploymentView | undefined;
    for (const deadline = Date.now() + minutes(10); Date.now() < deadline;) {
      view = await api<DeploymentView>(app, `/api/deployments/${id}`);
      if (view.state !== 'waiting' && view.state !== 'running') break;
      await new Promise((r) => setTimeout(r, 2000));
    }
    assert.ok(view, 'no deployment view');
    const final: DeploymentView = view;
    t.diagnostic(JSON.stringify(view.nodes.map((n) => ({ mac: n.mac, state: n.state, step: n.step, bytes: n.bytes }))));
    assert.equal(view.state, 'failed', `a deployment with a dead node ends failed: ${JSON.stringify(view)}`);
    for (const n of clones) {
      const rec = final.nodes.find((x) => x.mac === n.mac);
      assert.equal(rec?.state, 'deployed', `${n.name}: ${JSON.stringify(rec)}`);
    }
    const dead = final.nodes.find((x) => x.mac === victim.mac);
    assert.equal(dead?.state, 'failed', `the killed node: ${JSON.stringify(dead)}`);
    assert.ok(dead?.step, 'the killed node has the step it failed at');
    const registry = await api<{ mac: string; next_boot: string }[] | { nodes: { mac: string; next_boot: string }[] }>(app, '/api/nodes');
    const list = Array.isArray(registry) ? registry : registry.nodes;
    for (const n of clones) assert.equal(list.find((x) => x.mac === n.mac)?.next_boot, 'local', `${n.name} flipped to local boot`);
    assert.equal(list.find((x) => x.mac === victim.mac)?.next_boot, 'kamethod', 'the failed node stays on kamethod');

    // Each clone has its own identity...
    const roots = new Set(markers.map((m) => m.root));
    assert.equal(roots.size, 3, 'three new root file systems');
    assert.ok(!roots.has(inputs.golden.partition.uuid), "no clone kept the golden's UUID");
    for (const m of markers) {
      assert.equal(m.host, `node${m.n.name.slice(4)}`, `${m.n.name} has its host name`);
      assert.notEqual(m.machineId, inputs.golden.machine_id, `${m.n.name} has a new machine-id`);
    }
    // ...and the golden's files.
    const golden = await withDiskPartition(inputs.goldenDisk, inputs.golden.partition.number, (root) => buildManifest(root));
    for (const n of clones) {
      const clone = await withDiskPartition(n.disk, await rootPartition(n.disk), (root) => buildManifest(root));
      const diffs = compareManifests(golden, clone, { ignore: changedOnPurpose });
      assert.deepEqual(diffs, [], `${n.name} differs from the golden:\n${formatDifferences(diffs)}`);
      t.diagnostic(`${n.name}: ${clone.size} entries equal the golden's`);
    }
    ok = true;
  } finally {
    for (const n of nodes) await n.vm?.kill().catch(() => undefined);
    if (!ok) {
      for (const n of nodes) t.diagnostic(`${n.name} console tail:\n${n.vm?.console().slice(-3000) ?? '(not started)'}`);
      t.diagnostic(`kaboot log tail:\n${app?.kaboot.logs().slice(-40).map((l) => JSON.stringify(l)).join('\n')}`);
      t.diagnostic(`work folder kept: ${inputs.dir}`);
    }
    await app?.stop();
    if (ok) rmSync(inputs.dir, { recursive: true, force: true });
  }
});
