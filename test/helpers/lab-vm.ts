// qemu virtual machines for the lab (TCG: nested KVM guests die here, see LAB-NOTES),
// started inside a NetLab namespace, with real firmware: SeaBIOS + the iPXE ROM of an
// e1000 NIC, or OVMF + the iPXE ROM of a virtio-net NIC. The NIC boots first
// (bootindex=1), the virtio-blk disk second (bootindex=2), so a node the appliance
// sends back to its local disk falls through to it. The serial console goes to a log
// file and to memory; waitFor() watches it.
//
// Also: withDiskPartition(), which loop-mounts one partition of a raw disk image by its
// offset (the host's loop driver does not scan partitions) for as long as a callback
// runs.
import { execa, type ResultPromise } from 'execa';
import { copyFileSync, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import type { NetLab } from './netns.js';
import { removeOnPass } from './temp-dir.js';

export type Firmware = 'bios' | 'uefi';

export const ovmfCode = '/usr/share/OVMF/OVMF_CODE.fd';
export const ovmfVars = '/usr/share/OVMF/OVMF_VARS.fd';
/** NIC and option ROM that network-boot under each firmware (LAB-NOTES: virtio-net under SeaBIOS never tried the network). */
export const bootNic: Record<Firmware, { device: string; romfile: string }> = {
  bios: { device: 'e1000', romfile: '/usr/lib/ipxe/qemu/efi-e1000.rom' },
  uefi: { device: 'virtio-net-pci', romfile: '/usr/lib/ipxe/qemu/efi-virtio.rom' },
};

export interface VmOptions {
  name: string;
  firmware: Firmware;
  /** raw disk image, attached as virtio-blk (bootindex=2) */
  disk?: string;
  /** writes go to a temporary overlay that qemu drops on exit (snapshot=on): boot a cached image without changing it */
  diskSnapshot?: boolean;
  /** 52:54:00:xx:xx:xx; random if not given */
  mac?: string;
  /** a bridge inside the namespace: a tap is made for the VM and put on it */
  bridge?: string;
  /** or an existing tap inside the namespace */
  tap?: string;
  /** the NIC tries the network first (bootindex=1); default true. false: disk only */
  netBoot?: boolean;
  memMiB?: number;
  /** where the console log (and UEFI VARS copy) go; a temp folder if not given */
  workDir?: string;
  /** more qemu arguments */
  extraArgs?: string[];
}

export interface VmExit {
  code: number | null;
  signal: string | null;
}

export interface Vm {
  name: string;
  mac: string;
  pid: number;
  firmware: Firmware;
  workDir: string;
  consoleLog: string;
  /** the qemu command line */
  argv: string[];
  /** the serial console so far (CR removed) */
  console(): string;
  /** ms from qemu's start to when the console first showed `re` (to the chunk), or undefined */
  seenAt(re: RegExp): number | undefined;
  /** Date.now() when qemu was started */
  startedAt: number;
  /** resolves with the first match in the console (from `from` on, default 0); rejects with the console's tail on timeout or exit */
  waitFor(re: RegExp, timeoutMs: number, from?: number): Promise<RegExpMatchArray>;
  /** resolves when qemu exits (poweroff, kill, crash) */
  exited: Promise<VmExit>;
  /** SIGKILL by pid, then wait for the exit */
  kill(): Promise<VmExit>;
}

export function randomMac(): string {
  const b = randomBytes(3);
  return `52:54:00:${[...b].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
}

/** Short, unique tap name (IFNAMSIZ is 16). */
function tapName(): string {
  return `tap${randomBytes(3).toString('hex')}`;
}

/** The lab's emulated CPU (bench/naive-clone.sh and test/lab/lab.sh use the same). */
export const LAB_CPU = 'qemu64,+rdrand';

export function qemuArgs(opts: VmOptions & { mac: string; tap?: string; varsFile?: string }): string[] {
  // -nographic (not -display none): qemu then tells SeaBIOS to use the serial port as
  // its console, so the firmware's and the iPXE ROM's lines reach the log too.
  // +rdrand: servers have had it since 2012 and qemu64 lacks it; without it the kernel's random
  // pool fills from timing jitter, seconds under TCG, and the first getrandom() (Node's) waits.
  const args = ['-m', String(opts.memMiB ?? 1024), '-smp', '1', '-cpu', LAB_CPU, '-nographic', '-monitor', 'none', '-serial', 'stdio', '-name', opts.name];
  if (opts.firmware === 'uefi') {
    if (!opts.varsFile) throw new Error('uefi needs a VARS file');
    args.push('-drive', `if=pflash,format=raw,readonly=on,file=${ovmfCode}`, '-drive', `if=pflash,format=raw,file=${opts.varsFile}`);
  }
  if (opts.tap) {
    const nic = bootNic[opts.firmware];
    const bootindex = opts.netBoot === false ? '' : ',bootindex=1';
    args.push('-netdev', `tap,id=n0,ifname=${opts.tap},script=no,downscript=no`,
      '-device', `${nic.device},netdev=n0,mac=${opts.mac}${bootindex},romfile=${nic.romfile}`);
  } else {
    args.push('-nic', 'none');
  }
  if (opts.disk) {
    args.push('-drive', `if=none,id=d0,format=raw,file=${opts.disk}${opts.diskSnapshot ? ',snapshot=on' : ''}`, '-device', 'virtio-blk-pci,drive=d0,bootindex=2');
  }
  args.push(...(opts.extraArgs ?? []));
  return args;
}

function tail(text: string, lines = 40): string {
  return text.split('\n').slice(-lines).join('\n');
}

export async function startVm(lab: NetLab, ns: string, opts: VmOptions): Promise<Vm> {
  const mac = opts.mac ?? randomMac();
  const ownDir = !opts.workDir;
  const workDir = opts.workDir ?? mkdtempSync(join(tmpdir(), `kaboot-vm-${opts.name}-`));
  // its console log stays readable after the VM exits; the folder goes when the test file passes
  if (ownDir) removeOnPass(workDir);
  mkdirSync(workDir, { recursive: true });
  let tap = opts.tap;
  let madeTap = false;
  const cleanups: (() => Promise<void> | void)[] = [];
  try {
    if (!tap && opts.bridge) {
      tap = tapName();
      await lab.sh(ns, `ip tuntap add ${tap} mode tap && ip link set ${tap} master ${opts.bridge} && ip link set ${tap} up`);
      madeTap = true;
      const made = tap;
      cleanups.push(async () => { await lab.exec(ns, ['ip', 'link', 'del', made], { reject: false }); });
    }
    let varsFile: string | undefined;
    if (opts.firmware === 'uefi') {
      varsFile = join(workDir, `${opts.name}-OVMF_VARS.fd`);
      copyFileSync(ovmfVars, varsFile);
    }
    const argv = ['qemu-system-x86_64', ...qemuArgs({ ...opts, mac, tap, varsFile })];
    const consoleLog = join(workDir, `${opts.name}-serial.log`);
    const logStream = createWriteStream(consoleLog);
    // the same console with each line's arrival in seconds since qemu started, to see where boot time goes
    const timedStream = createWriteStream(join(workDir, `${opts.name}-serial.timed.log`));
    let lineStart = true;
    let text = '';
    let stderr = '';
    // where each chunk of console text starts, and when it came
    const chunks: { offset: number; at: number }[] = [];
    const startedAt = Date.now();
    const proc: ResultPromise = lab.spawn(ns, argv, { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', buffer: false });
    if (!proc.pid) throw new Error(`qemu for ${opts.name} did not start`);
    const waiters = new Set<() => void>();
    proc.stdout?.on('data', (chunk: Buffer) => {
      logStream.write(chunk);
      const secs = ((Date.now() - startedAt) / 1000).toFixed(1).padStart(7);
      const plain = chunk.toString('latin1').replace(/\r/g, '');
      timedStream.write((lineStart ? `${secs} ` : '') + plain.replace(/\n(?!$)/g, `\n${secs} `));
      lineStart = plain.endsWith('\n');
      chunks.push({ offset: text.length, at: Date.now() });
      text += chunk.toString('latin1').replace(/\r/g, '');
      for (const w of waiters) w();
    });
    proc.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    let done: VmExit | undefined;
    const exited: Promise<VmExit> = proc.then(
      (r) => ({ code: r.exitCode ?? null, signal: r.signal ?? null }),
      (e: { exitCode?: number; signal?: string }) => ({ code: e.exitCode ?? null, signal: e.signal ?? null }),
    ).then(async (r) => {
      done = r;
      await new Promise<void>((res) => logStream.end(res));
      await new Promise<void>((res) => timedStream.end(res));
      for (const c of cleanups.splice(0).reverse()) await c();
      for (const w of waiters) w();
      return r;
    });
    const vm: Vm = {
      name: opts.name,
      mac,
      pid: proc.pid,
      firmware: opts.firmware,
      workDir,
      consoleLog,
      argv,
      console: () => text,
      startedAt,
      seenAt(re: RegExp) {
        const m = new RegExp(re.source, re.flags.replace('g', '')).exec(text);
        if (!m) return undefined;
        // the chunk that holds the match's last character
        const end = m.index + m[0].length - 1;
        let at = chunks[0]?.at ?? startedAt;
        for (const c of chunks) { if (c.offset > end) break; at = c.at; }
        return at - startedAt;
      },
      waitFor(re: RegExp, timeoutMs: number, from = 0) {
        return new Promise<RegExpMatchArray>((resolve, reject) => {
          const plain = new RegExp(re.source, re.flags.replace('g', ''));
          let timer: NodeJS.Timeout | undefined;
          const check = () => {
            const m = plain.exec(text.slice(from));
            if (m) { finish(); resolve(m); return; }
            if (done) {
              finish();
              reject(new Error(`${opts.name}: qemu exited (code ${done.code}, signal ${done.signal}) before ${re} showed.\n--- console tail (${consoleLog}) ---\n${tail(text)}\n--- qemu stderr ---\n${tail(stderr, 10)}`));
            }
          };
          const finish = () => { waiters.delete(check); if (timer) clearTimeout(timer); };
          timer = setTimeout(() => {
            finish();
            reject(new Error(`${opts.name}: no ${re} after ${timeoutMs} ms.\n--- console tail (${consoleLog}) ---\n${tail(text)}\n--- qemu stderr ---\n${tail(stderr, 10)}`));
          }, timeoutMs);
          waiters.add(check);
          check();
        });
      },
      exited,
      async kill() {
        if (!done) {
          try { process.kill(proc.pid!, 'SIGKILL'); } catch { /* already gone */ }
        }
        return exited;
      },
    };
    return vm;
  } catch (e) {
    for (const c of cleanups.splice(0).reverse()) await c();
    if (ownDir) rmSync(workDir, { recursive: true, force: true });
    throw e;
  }
}

/** A sparse raw disk image of `bytes` (an empty disk for a node to deploy to). */
export async function emptyDisk(file: string, bytes: number): Promise<string> {
  await execa('truncate', ['-s', String(bytes), file]);
  return file;
}

export interface PartitionEntry {
  node: string;
  start: number;
  size: number;
  type: string;
  bootable?: boolean;
}

/** The partitions of a disk image, from `sfdisk --json` (start and size in sectors). */
export async function diskPartitions(disk: string): Promise<{ label: string; sectorSize: number; partitions: PartitionEntry[] }> {
  const { stdout } = await execa('sfdisk', ['--json', disk]);
  const table = (JSON.parse(stdout) as { partitiontable: { label: string; sectorsize?: number; partitions?: PartitionEntry[] } }).partitiontable;
  return { label: table.label, sectorSize: table.sectorsize ?? 512, partitions: table.partitions ?? [] };
}

/**
 * Loop-mounts partition `partNo` (1-based) of a raw disk image, read-only unless
 * `readWrite`, runs fn(root) and unmounts, whatever fn does.
 *
 * The mount lives in a mount namespace of its own, held by a `sleep` child; fn gets
 * the path to it through /proc/<pid>/root, which any tool run as root can use (tar -C,
 * getfattr, readdir). Mounted in the machine's own namespace, it would be copied into
 * every namespace that other processes create meanwhile (ip netns exec, unshare -m)
 * and stay there after our umount, holding the loop device; killing the holder drops
 * the namespace and its mount even if the test dies.
 */
export async function withDiskPartition<T>(disk: string, partNo: number, fn: (root: string) => Promise<T>, opts: { readWrite?: boolean } = {}): Promise<T> {
  const { sectorSize, partitions } = await diskPartitions(disk);
  const part = partitions[partNo - 1];
  if (!part) throw new Error(`${disk} has no partition ${partNo} (it has ${partitions.length})`);
  const offset = part.start * sectorSize;
  const fsType = (await execa('blkid', ['-p', '-o', 'value', '-s', 'TYPE', '-O', String(offset), disk], { reject: false })).stdout.trim();
  // noload: a read-only ext3/4 mount must not replay the journal, so the image stays as it is.
  const ro = opts.readWrite ? [] : ['ro', ...(fsType === 'ext4' || fsType === 'ext3' ? ['noload'] : [])];
  const mountOpts = [...ro, 'loop', `offset=${offset}`, `sizelimit=${part.size * sectorSize}`].join(',');
  const dir = mkdtempSync(join(tmpdir(), 'kaboot-part-'));
  const holder = execa('unshare', ['--mount', '--propagation', 'private', 'sh', '-c',
    'mount -o "$1" "$2" "$3" || exit 1; echo mounted; exec sleep 2147483647', '_', mountOpts, disk, dir],
  { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', reject: false, buffer: { stdout: false, stderr: true } });
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      holder.stdout?.on('data', (c: Buffer) => { out += c.toString(); if (out.includes('mounted\n')) resolve(); });
      void holder.then((r) => reject(new Error(`mount -o ${mountOpts} ${disk} failed (exit ${r.exitCode}): ${String(r.stderr)}`)));
    });
    return await fn(`/proc/${holder.pid}/root${dir}`);
  } finally {
    holder.kill('SIGKILL');
    await holder;
    // Not recursive: nothing is mounted on it in this namespace, and it is empty.
    rmdirSync(dir);
  }
}

export interface GoldenInfo {
  key: string;
  disk_bytes: number;
  label: string;
  partition: { number: number; start_bytes: number; size_bytes: number; fstype: string; fslabel: string; uuid: string; used_bytes: number };
  bootloader: string;
  kernel: string;
  hostname: string;
  machine_id: string;
  marker: string;
  packages: Record<string, string>;
}

export const goldenScript = fileURLToPath(new URL('../lab/golden.sh', import.meta.url));
/** What the golden's marker unit prints on ttyS0 before it powers off. */
// The line's end is part of the pattern: waitFor looks at the console as it streams in,
// and without it a half-written line matched with a truncated root UUID.
export const goldenMarker = /KABOOT-GOLDEN-MARKER host=(\S+) machine-id=(\S*) root=(\S+)\r?\n/;

/** Builds the golden (test/lab/golden.sh) or reuses its cache; returns its disk image and what golden.json says of it. */
export async function buildGolden(opts: { timeoutMs?: number } = {}): Promise<{ disk: string; info: GoldenInfo; cached: boolean; log: string }> {
  const r = await execa('bash', [goldenScript], { reject: false, timeout: opts.timeoutMs ?? 20 * 60_000, killSignal: 'SIGTERM' });
  const disk = r.stdout.trim().split('\n').pop() ?? '';
  if (r.exitCode !== 0 || !disk.endsWith('/disk.raw')) throw new Error(`golden.sh failed (exit ${r.exitCode}):\n${r.stderr}\n${r.stdout}`);
  const info = JSON.parse(readFileSync(join(dirname(disk), 'golden.json'), 'utf8')) as GoldenInfo;
  return { disk, info, cached: /^golden: cached/m.test(r.stderr), log: r.stderr };
}
