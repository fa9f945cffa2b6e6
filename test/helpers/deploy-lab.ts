// The whole clone flow in the lab, shared by test/lab/deploy.test.ts and bench/deploy-clone.ts:
// build the appliance's inputs (kaboot initrd build, kaboot stage2 build), capture the
// golden into an image store, run `kaboot serve` with full DHCP on a bridge in a namespace,
// start a deployment with `kaboot deploy`, and boot VMs with empty disks that PXE boot
// from it, deploy, flip to local boot and reboot from their own disk.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { NetLab } from './netns.js';
import { startKaboot, kabootBin, type KabootProcess } from './kaboot-process.js';
import { buildGolden, emptyDisk, startVm, withDiskPartition, diskPartitions, type GoldenInfo, type Firmware, type Vm } from './lab-vm.js';

export const labServerIp = '10.97.0.1';

export interface LabInputs {
  dir: string;
  imagesDir: string;
  goldenDisk: string;
  golden: GoldenInfo;
  /** seconds each input took (initrd, stage2, golden, capture) */
  seconds: Record<string, number>;
}

async function timed<T>(seconds: Record<string, number>, what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await fn();
  } finally {
    seconds[what] = (Date.now() - t0) / 1000;
  }
}

async function kaboot(args: string[], opts: { timeoutMs?: number } = {}) {
  const r = await execa('node', [kabootBin, ...args], { reject: false, all: true, timeout: opts.timeoutMs ?? 20 * 60_000 });
  if (r.exitCode !== 0) throw new Error(`kaboot ${args.join(' ')} failed (exit ${r.exitCode}):\n${r.all}`);
  return r;
}

/** What prepare and the first boot change in a clone on purpose; everything else must equal the golden. */
export const changedOnPurpose = [
  '/etc/fstab', '/etc/hostname', '/etc/hosts', '/etc/machine-id', '/var/lib/dbus/machine-id',
  '/etc/initramfs-tools/modules', '/boot/grub/**', '/boot/initrd.img-*', '/boot/efi', '/boot/efi/**',
  '/var/log/**', '/var/lib/systemd/**', '/var/lib/initramfs-tools/**', '/var/tmp/**', '/tmp/**',
  '/etc/udev/rules.d/70-persistent-net.rules', '/etc/ld.so.cache', '/var/cache/**', '/lost+found',
  // folders whose content the above changes: their mtime moves with it
  '/boot', '/boot/grub', '/tmp', '/var/tmp', '/var/log', '/var/lib/systemd', '/var/lib/dbus', '/var/cache',
  '/etc/initramfs-tools', '/etc/udev/rules.d', '/var/lib/initramfs-tools',
];

/** The desc that describes the lab golden's disk. */
export const goldenDescFile = (inputs: Pick<LabInputs, 'dir'>) => join(inputs.dir, 'golden.desc');

/**
 * vmlinuz + all.rdz + stage2.sqfs in a fresh images folder, and the golden captured as
 * image `golden` (not with capture: false, for a live golden).
 */
export async function prepareInputs(opts: { capture?: boolean } = {}): Promise<LabInputs> {
  const dir = mkdtempSync(join(tmpdir(), 'kaboot-deploy-lab-'));
  const imagesDir = join(dir, 'images');
  const seconds: Record<string, number> = {};
  await timed(seconds, 'initrd', () => kaboot(['initrd', 'build', '--out', imagesDir]));
  await timed(seconds, 'stage2', () => kaboot(['stage2', 'build', '--out', imagesDir]));
  const built = await timed(seconds, 'golden', () => buildGolden());
  const descFile = goldenDescFile({ dir });
  writeFileSync(descFile, `linux fill ext4 / label=${built.info.partition.fslabel} bootable\n`);
  if (opts.capture !== false) await timed(seconds, 'capture', () => withDiskPartition(built.disk, built.info.partition.number, (root) =>
    kaboot(['image', 'capture', 'golden', '--from', root, '--images', imagesDir, '--desc', descFile, '--bootloader', 'grub-pc'])));
  return { dir, imagesDir, goldenDisk: built.disk, golden: built.info, seconds };
}

export interface LabAppliance {
  lab: NetLab;
  ns: string;
  bridge: string;
  kaboot: KabootProcess;
  server: string;
  token: string;
  stop(): Promise<void>;
}

/** `kaboot serve` on a bridge in a namespace of its own, full DHCP for the lab subnet, nodes boot local unless a deployment says otherwise. */
export async function startAppliance(inputs: LabInputs): Promise<LabAppliance> {
  const lab = await NetLab.create('dpl');
  try {
    // The VMs' taps join br0 in the lab's switch namespace, beside the server's veth.
    const srv = await lab.host('srv', { cidr: `${labServerIp}/24` });
    const bridge = 'br0';
    const kb = await startKaboot(lab, srv.ns, {
      images_dir: inputs.imagesDir,
      interfaces: ['eth0'],
      // an IPv4-only deploy network: tell iPXE there is no IPv6 here, or it waits ~15 s at each boot
      ipv6_ra: 'quiet',
      dhcp: {
        mode: 'full',
        subnets: [{ subnet: '10.97.0.0/24', interface: 'eth0', range: ['10.97.0.100', '10.97.0.199'], routers: [labServerIp], next_server: labServerIp, lease_time: 3600 }],
      },
      boot: { default: 'local', kernel: 'vmlinuz', initrd: 'all.rdz', append: 'console=ttyS0,115200 panic=30', pxelinux: { prompt_timeout: 0, reboot_time: 30 } },
    }, { dir: join(inputs.dir, `serve-${Date.now()}`), readyTimeoutMs: 60_000 });
    return {
      lab, ns: srv.ns, bridge, kaboot: kb, server: `http://${labServerIp}:80`, token: kb.token(),
      async stop() {
        await kb.stop().catch(() => undefined);
        await lab.destroy();
      },
    };
  } catch (e) {
    await lab.destroy();
    throw e;
  }
}

/** `kaboot deploy` run inside the appliance's namespace; returns the deployment's id. */
export async function deploy(app: LabAppliance, args: string[]): Promise<string> {
  const r = await app.lab.exec(app.ns, ['node', kabootBin, 'deploy', 'golden', ...args, '--server', app.server, '--token', app.token, '--json'], { reject: false, all: true });
  if (r.exitCode !== 0) throw new Error(`kaboot deploy failed (exit ${r.exitCode}):\n${r.all}`);
  const d = JSON.parse(String(r.stdout)) as { id: string };
  return d.id;
}

export async function api<T>(app: LabAppliance, path: string): Promise<T> {
  const r = await app.lab.exec(app.ns, ['curl', '-sf', '-H', `authorization: Bearer ${app.token}`, `${app.server}${path}`], { reject: false, all: true });
  if (r.exitCode !== 0) throw new Error(`GET ${path}: curl exit ${r.exitCode}: ${r.all}`);
  return JSON.parse(String(r.stdout)) as T;
}

export interface LabNode {
  name: string;
  firmware: Firmware;
  mac: string;
  disk: string;
  vm?: Vm;
}

export function labNodes(dir: string, firmwares: Firmware[]): LabNode[] {
  return firmwares.map((firmware, i) => ({
    name: `node${i + 1}`,
    firmware,
    mac: `52:54:00:97:00:${(i + 1).toString(16).padStart(2, '0')}`,
    disk: join(dir, `node${i + 1}.raw`),
  }));
}

export async function bootNodes(app: LabAppliance, nodes: LabNode[], dir: string): Promise<void> {
  for (const n of nodes) {
    await emptyDisk(n.disk, 2 * 1024 ** 3);
    n.vm = await startVm(app.lab, app.lab.switchNs, { name: n.name, firmware: n.firmware, disk: n.disk, mac: n.mac, bridge: app.bridge, memMiB: 1536, workDir: join(dir, n.name) });
  }
}

/** The partition of a clone's disk that holds its root: the biggest Linux one. */
export async function rootPartition(disk: string): Promise<number> {
  const { partitions } = await diskPartitions(disk);
  let best = 0;
  partitions.forEach((p, i) => {
    if (/^(83|0fc63daf-8483-4772-8e79-3d69d8477de4)$/i.test(p.type) && (best === 0 || p.size > partitions[best - 1]!.size)) best = i + 1;
  });
  if (best === 0) throw new Error(`${disk}: no Linux partition in ${JSON.stringify(partitions)}`);
  return best;
}

/** Bytes the appliance has sent on its lab interface (kernel, initrd, stage2, the streams, the API). */
export async function applianceTxBytes(app: LabAppliance): Promise<number> {
  const r = await app.lab.exec(app.ns, ['cat', '/sys/class/net/eth0/statistics/tx_bytes']);
  return Number(String(r.stdout).trim());
}
