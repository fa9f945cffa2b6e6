// kaboot's clone flow against a naive clone of the same golden, in one run, under qemu TCG
// in namespaces (test/helpers/deploy-lab.ts builds the inputs and the appliance):
//   naive         bench/naive-clone.sh: a VM boots a busybox initrd directly, sfdisk, mkfs.ext4,
//                 one tar stream over one TCP connection, fstab + hostname, grub in a chroot;
//                 the lab's BIOS node hardware (e1000 NIC, virtio disk, LAB_CPU)
//   naive-virtio  the same with the UEFI node's NIC, virtio-net (the one sessions 2-3 used)
//   kaboot1       `kaboot deploy` to one BIOS VM (e1000; the lab appliance: full DHCP, ipv6_ra
//                 quiet): PXE boot, agent, getstage2, partition, format, KA receive, verify,
//                 prepare, grub, report, reboot to disk;
//   kaboot1-uefi  the same to one UEFI VM (OVMF, virtio-net)
//   kaboot3       the same to three VMs (2 BIOS + 1 UEFI) at once.
// Prints, per run: seconds from the VM's start to "installed" (naive: poweroff; kaboot: the
// node reported deployed), seconds from there to the golden's marker on the clone's own
// disk, the host's CPU seconds during the run (all of /proc/stat, so other load counts: the
// load average is printed beside it), bytes sent to each VM against the image's used
// bytes; then the ratios of each kaboot run to the naive run on the same hardware, and
// kaboot3 / kaboot1.
//   node --import tsx bench/deploy-clone.ts [--runs naive,kaboot1,naive-virtio,kaboot1-uefi,kaboot3] [--json FILE] [--keep]
// (--keep: leave the work folder, with the VMs' disks and timed console logs, in /tmp)
import { parseArgs } from 'node:util';
import { rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { execa } from 'execa';
import { prepareInputs, startAppliance, deploy, api, labNodes, bootNodes, applianceTxBytes, type LabInputs } from '../test/helpers/deploy-lab.js';
import { goldenMarker, type Firmware } from '../test/helpers/lab-vm.js';
import { hostCpu } from './lib/ka-lab.js';

const REPO = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: 'naive,kaboot1,naive-virtio,kaboot1-uefi,kaboot3' },
    json: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('node --import tsx bench/deploy-clone.ts [--runs naive,kaboot1,naive-virtio,kaboot1-uefi,kaboot3] [--json FILE] [--keep]');
  process.exit(0);
}

interface RunResult {
  run: string;
  vms: number;
  install_s: number;
  boot_s: number;
  host_cpu_s: number;
  load_before: number;
  /** naive: bytes sent to the VM; kaboot: bytes the appliance sent, all VMs together, divided by their number */
  wire_bytes_per_vm: number;
  /** kaboot: KA stream bytes each node received (stage2 + file systems), from the deployment */
  ka_bytes_per_vm?: number;
  used_bytes: number;
  phases?: string;
}

function hostBusySeconds(): number {
  return hostCpu().busy / 100;
}

async function naive(inputs: LabInputs, nic: 'e1000' | 'virtio', name: string): Promise<RunResult> {
  const load = loadavg()[0]!;
  const cpu0 = hostBusySeconds();
  const r = await execa('bash', [resolve(REPO, 'bench/naive-clone.sh'), inputs.goldenDisk], { reject: false, all: true, timeout: 40 * 60_000, env: { NAIVE_NIC: nic } });
  if (r.exitCode !== 0) throw new Error(`naive-clone.sh failed:\n${r.all}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('NAIVE-RESULT '))!;
  const f = Object.fromEntries(line.split(' ').slice(1).map((kv) => kv.split('=') as [string, string]));
  return {
    run: name, vms: 1, install_s: Number(f.seconds), boot_s: Number(f.boot_seconds), host_cpu_s: hostBusySeconds() - cpu0,
    load_before: load, wire_bytes_per_vm: Number(f.wire_bytes), used_bytes: inputs.golden.partition.used_bytes,
    phases: r.stdout.split('\n').find((l) => l.startsWith('NAIVE-PHASES '))?.slice(13),
  };
}

/**
 * Where a node's install time went, from its log on the appliance: "boot" from the VM's
 * start to the agent's first line (firmware, DHCP, loading kernel and initrd, the agent's
 * start), then each agent step from its start line to its done line.
 */
function stepPhases(log: string, vmStartMs: number): string {
  const out: string[] = [];
  const started = new Map<string, number>();
  let first: number | undefined;
  for (const line of log.split('\n')) {
    const m = /^(\S+Z) \S+ agent (.*)$/.exec(line);
    if (!m) continue;
    const at = Date.parse(m[1]!);
    if (first === undefined) {
      first = at;
      out.push(`boot ${((at - vmStartMs) / 1000).toFixed(1)}`);
    }
    const step = /^step (\S+): (start|done)$/.exec(m[2]!);
    if (!step) continue;
    if (step[2] === 'start') started.set(step[1]!, at);
    else if (started.has(step[1]!)) out.push(`${step[1]} ${((at - started.get(step[1]!)!) / 1000).toFixed(1)}`);
  }
  return out.join(', ');
}

async function nodeLog(app: Awaited<ReturnType<typeof startAppliance>>, mac: string): Promise<string> {
  const r = await app.lab.exec(app.ns, ['curl', '-sf', '-H', `authorization: Bearer ${app.token}`, `${app.server}/api/nodes/${mac}/log`], { reject: false });
  return r.exitCode === 0 ? String(r.stdout) : '';
}

async function kaboot(inputs: LabInputs, firmwares: Firmware[], name: string): Promise<RunResult> {
  const load = loadavg()[0]!;
  const app = await startAppliance(inputs);
  const nodes = labNodes(inputs.dir, firmwares);
  try {
    const id = await deploy(app, [...nodes.flatMap((n) => ['--mac', n.mac]), '--hostname-pattern', 'node{n}', '--session-wait', '600']);
    const cpu0 = hostBusySeconds();
    const tx0 = await applianceTxBytes(app);
    const t0 = Date.now();
    await bootNodes(app, nodes, inputs.dir);
    const installed: number[] = [];
    const booted: number[] = [];
    await Promise.all(nodes.map(async (n) => {
      for (;;) {
        const d = await api<{ nodes: { mac: string; state: string }[] }>(app, `/api/deployments/${id}`);
        const me = d.nodes.find((x) => x.mac === n.mac);
        if (me?.state === 'deployed') break;
        if (me?.state === 'failed') throw new Error(`${n.name} failed: ${JSON.stringify(me)}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
      installed.push((Date.now() - t0) / 1000);
      await n.vm!.waitFor(goldenMarker, 40 * 60_000);
      booted.push((Date.now() - t0) / 1000);
      await n.vm!.exited;
    }));
    const cpu = hostBusySeconds() - cpu0;
    const tx = (await applianceTxBytes(app)) - tx0;
    const d = await api<{ nodes: { bytes?: number }[] }>(app, `/api/deployments/${id}`);
    const install = Math.max(...installed);
    const phases = (await Promise.all(nodes.map(async (n) => `${n.name}: ${stepPhases(await nodeLog(app, n.mac), t0)}`))).join('; ');
    return {
      run: name, vms: nodes.length, install_s: install, boot_s: Math.max(...booted) - install, host_cpu_s: cpu, load_before: load,
      wire_bytes_per_vm: tx / nodes.length, ka_bytes_per_vm: d.nodes.reduce((a, n) => a + (n.bytes ?? 0), 0) / nodes.length,
      used_bytes: inputs.golden.partition.used_bytes, phases,
    };
  } finally {
    for (const n of nodes) await n.vm?.kill().catch(() => undefined);
    await app.stop();
  }
}

const runs = values.runs.split(',');
const inputs = await prepareInputs();
console.log(`inputs (s): ${JSON.stringify(inputs.seconds)}; golden root ${(inputs.golden.partition.used_bytes / 1e6).toFixed(0)} MB used`);
const results: RunResult[] = [];
for (const run of runs) {
  const r = run === 'naive' ? await naive(inputs, 'e1000', run)
    : run === 'naive-virtio' ? await naive(inputs, 'virtio', run)
      : run === 'kaboot1' ? await kaboot(inputs, ['bios'], run)
        : run === 'kaboot1-uefi' ? await kaboot(inputs, ['uefi'], run)
          : run === 'kaboot3' ? await kaboot(inputs, ['bios', 'bios', 'uefi'], run)
            : (() => { throw new Error(`unknown run ${run}`); })();
  results.push(r);
  console.log(`${r.run.padEnd(12)} vms=${r.vms} install=${r.install_s.toFixed(1)} s  boot=${r.boot_s.toFixed(1)} s  host_cpu=${r.host_cpu_s.toFixed(0)} s  load=${r.load_before.toFixed(1)}  wire/vm=${(r.wire_bytes_per_vm / 1e6).toFixed(0)} MB (${(r.wire_bytes_per_vm / r.used_bytes).toFixed(2)}x used)${r.ka_bytes_per_vm ? `  ka/vm=${(r.ka_bytes_per_vm / 1e6).toFixed(0)} MB (${(r.ka_bytes_per_vm / r.used_bytes).toFixed(2)}x used)` : ''}${r.phases ? `  phases: ${r.phases}` : ''}`);
}
const by = (n: string) => results.find((r) => r.run === n);
const [n, nv, k1, k1u, k3] = [by('naive'), by('naive-virtio'), by('kaboot1'), by('kaboot1-uefi'), by('kaboot3')];
const ratio = (k: RunResult, b: RunResult, what: string) =>
  console.log(`${k.run} / ${b.run}: install ${(k.install_s / b.install_s).toFixed(2)}x, install+boot ${((k.install_s + k.boot_s) / (b.install_s + b.boot_s)).toFixed(2)}x (${what}; target <= 1.0x)`);
if (n && k1) ratio(k1, n, 'the same VM: BIOS, e1000');
if (nv && k1u) ratio(k1u, nv, 'the same NIC, virtio-net; UEFI firmware against a direct kernel boot');
if (nv && k1) ratio(k1, nv, 'kaboot on e1000 against the naive clone on virtio-net, as sessions 2-3 measured');
if (k1 && k3) console.log(`kaboot3 / kaboot1: install ${(k3.install_s / k1.install_s).toFixed(2)}x, host CPU ${(k3.host_cpu_s / k1.host_cpu_s).toFixed(2)}x`);
if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));
if (values.keep) console.log(`work folder kept: ${inputs.dir}`);
else rmSync(inputs.dir, { recursive: true, force: true });
