// The agent's steps against the real appliance code on loopback: an image captured into the
// store, a deployment made by DeploymentManager (its KA coordinators, its plan policy), the
// deploy and node-log routes. The node side runs the plan and getstage2 steps as they are,
// then the receive consumer (through busybox chroot, into a temp folder instead of a mounted
// disk), verify's count against the plan, prepare's edits, and the report that flips the node
// to local boot. Nothing here mounts or partitions anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync, rmSync, statSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import Fastify from 'fastify';
import { ImageStore } from '../../src/images/store.js';
import { captureLocal } from '../../src/images/capture.js';
import { parseDesc } from '../../src/images/desc.js';
import { NodeRegistry } from '../../src/nodes/registry.js';
import { NodeLogs } from '../../src/nodes/node-logs.js';
import { nodeLogRoutes } from '../../src/http/node-log-routes.js';
import { deployRoutes } from '../../src/http/deploy-routes.js';
import { DeploymentManager, STAGE2_FILE } from '../../src/deploy/manager.js';
import { silentLogger } from '../../src/log.js';
import { runSteps } from '../../src/agent/steps.js';
import { ApplianceLog, type AgentLine } from '../../src/agent/log-client.js';
import { planStep } from '../../src/agent/deploy/plan-step.js';
import { getStage2Step, stage2File } from '../../src/agent/deploy/stage2.js';
import { targetsFor, withBootFlag } from '../../src/agent/deploy/disk.js';
import { joinForPlan, sessionProblem } from '../../src/agent/deploy/ka-join.js';
import { chrootConsumer, receiveScript } from '../../src/agent/deploy/receive.js';
import { countTree, checkCounts } from '../../src/agent/deploy/verify.js';
import { rewriteIds, resetIdentity, setHostname } from '../../src/agent/deploy/prepare.js';
import { grubDiskProblem } from '../../src/agent/deploy/bootloader.js';
import { reportStep } from '../../src/agent/deploy/finish.js';
import type { DeployState } from '../../src/agent/deploy/types.js';

const token = 'api-token-0123456789abcdef0123';

test('plan, getstage2, receive, verify, prepare and report against DeploymentManager and its routes', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-appliance-'));
  const stateDir = join(dir, 'state');
  const imagesDir = join(dir, 'images');
  mkdirSync(imagesDir, { recursive: true });
  // a small golden
  const golden = join(dir, 'golden');
  for (const d of ['etc', 'boot', 'usr/bin', 'var/lib/dhcp', 'var/cache/apt']) mkdirSync(join(golden, d), { recursive: true });
  writeFileSync(join(golden, 'etc/fstab'), 'UUID=11111111-2222-3333-4444-555555555555 / ext4 errors=remount-ro 0 1\n');
  writeFileSync(join(golden, 'etc/hostname'), 'golden\n');
  writeFileSync(join(golden, 'etc/hosts'), '127.0.0.1\tlocalhost\n127.0.1.1\tgolden\n');
  writeFileSync(join(golden, 'etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
  writeFileSync(join(golden, 'var/lib/dhcp/dhclient.leases'), 'lease {}\n');
  writeFileSync(join(golden, 'var/cache/apt/pkgcache.bin'), Buffer.alloc(50_000, 1));
  writeFileSync(join(golden, 'usr/bin/tool'), Buffer.alloc(300_000, 2));
  chmodSync(join(golden, 'usr/bin/tool'), 0o4755);
  const store = await ImageStore.open(imagesDir);
  const manifest = await captureLocal(store, 'golden', { from: [golden], desc: 'linux fill ext4 / label=root bootable\n', bootloader: 'grub-pc' });
  // stage2: any squashfs will do for the transfer
  mkdirSync(join(dir, 's2/usr/bin'), { recursive: true });
  writeFileSync(join(dir, 's2/usr/bin/marker'), 'stage2\n');
  await execa('mksquashfs', [join(dir, 's2'), join(imagesDir, STAGE2_FILE), '-quiet', '-noappend', '-all-root']);

  const nodes = new NodeRegistry(stateDir);
  const logs = new NodeLogs(stateDir);
  const dm = await DeploymentManager.start({ stateDir, imagesDir, nodes, logs, logger: silentLogger, bindHost: '127.0.0.1' });
  const app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } });
  // registered as src/http/server.ts does: node endpoints take the deployment's token, status goes to the manager
  await app.register(nodeLogRoutes, { prefix: '/api', stateDir, nodes, token, logs, tokenForNode: (m: string) => dm.tokenForNode(m), onStatus: dm.onStatus.bind(dm) });
  await app.register(deployRoutes, { prefix: '/api', token, deployments: dm, logs });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    const text = await r.text();
    assert.ok(r.ok, `${method} ${path}: HTTP ${r.status} ${text}`);
    return text ? JSON.parse(text) as Record<string, unknown> : {};
  };
  const mac = '52:54:00:aa:00:01';
  const uefiMac = '52:54:00:aa:00:02';
  try {
    const d = await api('POST', '/api/deployments', { image: 'golden', macs: [mac], hostname_pattern: 'node{n}', exclude: ['/var/cache'], wait_s: 60 });
    const nodeToken = dm.tokenForNode(mac);
    assert.ok(nodeToken, 'the node has its deployment token');
    const lines: AgentLine[] = [];
    const log = new ApplianceLog({ intervalMs: 50 });
    log.connect({ base, mac, token: nodeToken });
    const s: DeployState = {
      appliance: base, applianceHost: '127.0.0.1', mac, token: nodeToken, firmware: 'bios', busybox: 'busybox',
      paths: { stage2: join(dir, 'node/stage2'), run: join(dir, 'node/run'), dev: '/nonexistent/dev', sys: '/nonexistent/sys', proc: '/proc' },
      log, disks: [], targets: [], mounted: [],
    };
    const r = await runSteps([planStep, getStage2Step], s, [(l) => lines.push(l)]);
    assert.deepEqual(r, { ok: true }, lines.map((l) => `[${l.step}] ${l.line}`).join('\n'));
    const plan = s.plan!;
    assert.equal(plan.hostname, 'node1');
    assert.ok(readFileSync(stage2File(s.paths)).equals(readFileSync(join(imagesDir, STAGE2_FILE))), 'stage2 came whole');

    // what partition and format would make of the real plan
    const desc = parseDesc(plan.disks[0]!.desc);
    const targets = targetsFor(0, '/dev/vda', desc, plan.disks[0]!);
    assert.deepEqual(targets.map((t) => [t.device, t.fstype, t.mount, t.label, t.exclude]), [['/dev/vda1', 'ext4', '/', 'root', ['var/cache']]]);
    assert.equal(withBootFlag(desc, targets, 'bios', plan.bootloader.kind, true).flagged, undefined, 'the desc flags its partition already');
    assert.equal(grubDiskProblem('bios', desc), undefined);

    // receive through the consumer the step runs (busybox chroot, here into "/")
    const root = targets[0]!;
    const clone = join(dir, 'clone');
    mkdirSync(clone);
    const err = join(dir, 'receive.err');
    const rr = await joinForPlan(root.session!, '127.0.0.1', chrootConsumer('busybox', '/', receiveScript(clone, root.exclude, join(dir, 'rc')), err), () => undefined, mac);
    assert.equal(sessionProblem(root.session!, rr, true), undefined, readFileSync(err, 'utf8'));
    assert.equal(statSync(join(clone, 'usr/bin/tool')).mode & 0o7777, 0o4755);
    // -x /var/cache: the stream carries it, the node leaves its contents out
    assert.deepEqual(readdirSync(join(clone, 'var/cache')), []);
    const fsRec = manifest.filesystems[0]!;
    assert.equal(root.files, fsRec.files);
    assert.equal(root.bytesUsed, fsRec.bytes_used);
    assert.deepEqual(checkCounts(root, await countTree(clone)), []);

    // prepare's edits on the received tree
    rewriteIds(clone, [{ mount: '/', fstype: 'ext4', uuid: '0c3f2a1e-0000-4000-8000-000000000001' }]);
    resetIdentity(clone);
    setHostname(clone, plan.hostname!);
    assert.equal(readFileSync(join(clone, 'etc/fstab'), 'utf8'), 'UUID=0c3f2a1e-0000-4000-8000-000000000001\t/\text4\terrors=remount-ro\t0\t1\n');
    assert.equal(readFileSync(join(clone, 'etc/hostname'), 'utf8'), 'node1\n');
    assert.equal(readFileSync(join(clone, 'etc/machine-id'), 'utf8'), '');

    // report: the appliance flips the node to local boot and the deployment is done
    const rep = await runSteps([reportStep], s, [(l) => lines.push(l)]);
    assert.deepEqual(rep, { ok: true });
    await log.flush();
    log.stop();
    let view: Record<string, unknown> = {};
    for (let i = 0; i < 100; i++) {
      view = await api('GET', `/api/deployments/${String(d.id)}`);
      if (view.state === 'done') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(view.state, 'done', JSON.stringify(view));
    assert.equal(nodes.get(mac)?.next_boot, 'local');

    // a UEFI node's plan: GPT with an ESP first, formatted empty, the root after it
    const u = await api('POST', '/api/deployments', { image: 'golden', macs: [uefiMac], wait_s: 60 });
    const ur = await fetch(`${base}/api/nodes/${uefiMac}/plan?firmware=uefi`, { headers: { authorization: `Bearer ${dm.tokenForNode(uefiMac)}` } });
    const { readPlanAnswer } = await import('../../src/agent/deploy/plan-step.js');
    const uplan = readPlanAnswer(ur.status, await ur.text(), uefiMac, 'uefi');
    const udesc = parseDesc(uplan.disks[0]!.desc);
    const ut = targetsFor(0, '/dev/vda', udesc, uplan.disks[0]!);
    assert.equal(udesc.label, 'gpt');
    assert.deepEqual(ut.map((t) => [t.device, t.fstype, t.mount, t.esp, !!t.session]), [['/dev/vda1', 'vfat', '/boot/efi', true, false], ['/dev/vda2', 'ext4', '/', false, true]]);
    assert.equal(grubDiskProblem('uefi', udesc), undefined);
    await api('DELETE', `/api/deployments/${String(u.id)}`);
  } finally {
    await app.close();
    await dm.close();
    // the manager may still write a deployment file after a session's end: the folder goes
    // when the process exits, with nothing left running
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
});
