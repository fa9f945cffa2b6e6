// prepare: the seed's prepare_node.sh and gen_modprobe_conf.pl for today's systems, on the
// clone's tree: fstab (and the files that name file systems) to the new UUIDs, the golden's
// identity removed (machine-id, persistent net rules, DHCP leases), the node's host name,
// and the initramfs rebuilt in the clone's chroot with this node's storage and NIC drivers.
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Step } from '../steps.js';
import { rewriteFstab, replaceIds, type FstabTarget } from './fstab.js';
import { mountOnce } from './finish.js';
import { targetDir } from './shell.js';
import { chrootEnv, planOf, type DeployState } from './types.js';
import { decompressor, type Decompress } from '../../initramfs/read.js';
import { cloneKernels, initramfsRebuildReasons, knownModules } from './initramfs.js';

/** Decompressors on a node: Node's zlib, else stage2's zstd and busybox's applets. */
function agentDecompressor(s: DeployState): Decompress {
  const applet: Record<string, string> = { xz: 'unxz', lzma: 'unlzma', bzip2: 'bunzip2', lz4: 'unlz4', lzop: 'unlzop' };
  return decompressor((format) => (format === 'zstd' ? [s.busybox, 'chroot', s.paths.stage2, '/usr/bin/zstd', '-dc'] : applet[format] ? [s.busybox, applet[format]!, '-c'] : undefined));
}

/** Files besides fstab that name file systems by UUID or device. */
export const ID_FILES = [
  'etc/default/grub', 'etc/initramfs-tools/conf.d/resume', 'etc/kernel/cmdline', 'etc/crypttab',
  'boot/extlinux/extlinux.conf', 'boot/syslinux/syslinux.cfg', 'boot/extlinux.conf',
];

/**
 * fstab and the other files in the clone rooted at `root`, to the targets' new UUIDs.
 * `renamed` maps each old name (those fstab used, and each file system's UUID on the golden
 * when the image knows it) to the new UUID=….
 */
export function rewriteIds(root: string, targets: FstabTarget[]): { changes: string[]; renamed: Map<string, string> } {
  const changes: string[] = [];
  const fstabPath = join(root, 'etc/fstab');
  const before = existsSync(fstabPath) ? readFileSync(fstabPath, 'utf8') : '';
  if (!before) changes.push('etc/fstab: none in the image, written from the plan');
  const r = rewriteFstab(before, targets);
  mkdirSync(dirname(fstabPath), { recursive: true });
  writeFileSync(fstabPath, r.text);
  changes.push(...r.changes.map((c) => `etc/fstab: ${c}`));
  const renamed = new Map(r.renamed);
  for (const t of targets) {
    const old = t.sourceUuid ? `UUID=${t.sourceUuid}` : undefined;
    if (old && t.sourceUuid !== t.uuid && !renamed.has(old)) renamed.set(old, `UUID=${t.uuid}`);
  }
  for (const rel of ID_FILES) {
    const p = join(root, rel);
    if (!isPlainFile(p)) continue;
    const text = readFileSync(p, 'utf8');
    const x = replaceIds(text, renamed);
    if (x.count > 0) {
      writeFileSync(p, x.text);
      changes.push(`${rel}: ${x.count} file system name(s) to the new UUIDs`);
    }
  }
  return { changes, renamed };
}

/** A regular file, not a symlink a golden may point anywhere. */
export function isPlainFile(p: string): boolean {
  try {
    return lstatSync(p).isFile();
  } catch {
    return false;
  }
}

/** What made the golden itself: its machine id, its NICs' names by MAC, its DHCP leases. */
export function resetIdentity(root: string): string[] {
  const changes: string[] = [];
  const mid = join(root, 'etc/machine-id');
  const midText = isPlainFile(mid) ? readFileSync(mid, 'utf8') : '';
  if (midText !== '' && midText.trim() !== 'uninitialized') {
    // empty, not absent: systemd makes a new id and commits it, and the boot is not a "first
    // boot" (machine-id(5)), which would run systemd-firstboot's console prompts and presets
    writeFileSync(mid, '');
    changes.push('etc/machine-id emptied');
  }
  const remove = (rel: string) => {
    const p = join(root, rel);
    try {
      lstatSync(p);
    } catch {
      return;
    }
    rmSync(p, { force: true, recursive: false });
    changes.push(`${rel} removed`);
  };
  remove('var/lib/dbus/machine-id');
  remove('etc/udev/rules.d/70-persistent-net.rules');
  const leaseDirs: [string, RegExp][] = [
    ['var/lib/dhcp', /./], ['var/lib/dhclient', /./], ['var/lib/NetworkManager', /\.lease$|^internal-/], ['var/lib/dhcpcd', /\.lease6?$/],
    ['var/lib/systemd/network', /./], ['var/lib/wicked', /^lease/],
  ];
  for (const [dir, re] of leaseDirs) {
    const d = join(root, dir);
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names.sort()) if (re.test(n) && isPlainFile(join(d, n))) remove(`${dir}/${n}`);
  }
  return changes;
}

/** /etc/hosts with the golden's name replaced by the node's (127.0.1.1 line added when none names it). */
export function rewriteHosts(text: string, oldName: string | undefined, newName: string): string {
  const short = newName.split('.')[0]!;
  const names = newName === short ? newName : `${newName} ${short}`;
  let found = false;
  const lines = text.split('\n').map((line) => {
    const [body = '', ...comment] = line.split('#');
    const f = body.trim().split(/\s+/);
    if (f.length < 2 || !f[0]) return line;
    const oldShort = oldName?.split('.')[0];
    const hit = oldName !== undefined && f.slice(1).some((n) => n === oldName || n === oldShort);
    if (f[0] === '127.0.1.1' || hit) {
      found = true;
      if (f[0] === '127.0.1.1') return `127.0.1.1\t${names}${comment.length ? ` #${comment.join('#')}` : ''}`;
      const rest = f.slice(1).filter((n) => n !== oldName && n !== oldShort);
      return [f[0], ...names.split(' '), ...rest].join('\t') + (comment.length ? ` #${comment.join('#')}` : '');
    }
    return line;
  });
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  if (!found) lines.push(`127.0.1.1\t${names}`);
  return lines.join('\n') + '\n';
}

export function setHostname(root: string, name: string): string[] {
  const hn = join(root, 'etc/hostname');
  const old = isPlainFile(hn) ? readFileSync(hn, 'utf8').trim() || undefined : undefined;
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(hn, `${name}\n`);
  const hosts = join(root, 'etc/hosts');
  const text = isPlainFile(hosts) ? readFileSync(hosts, 'utf8') : '127.0.0.1\tlocalhost\n';
  writeFileSync(hosts, rewriteHosts(text, old, name));
  return [`hostname ${old ?? '(none)'} → ${name}`];
}

/**
 * The kernel modules that drive this node's disks and NICs (gen_modprobe_conf.pl's job): for
 * each device, the drivers of it and of every parent device (virtio_blk and virtio_pci,
 * nvme, ahci, e1000e...), read from sysfs. Built-in drivers have no module and are left out.
 */
export function deviceModules(sysRoot: string, blockDevices: string[], nics: string[]): string[] {
  const out = new Set<string>();
  const starts = [
    ...blockDevices.map((b) => join(sysRoot, 'class/block', b, 'device')),
    ...nics.map((n) => join(sysRoot, 'class/net', n, 'device')),
  ];
  const devicesRoot = join(sysRoot, 'devices');
  for (const start of starts) {
    let dev: string;
    try {
      dev = realpathSync(start);
    } catch {
      continue;
    }
    while (dev.startsWith(devicesRoot) && dev !== devicesRoot) {
      const m = moduleOf(join(dev, 'driver'));
      if (m) out.add(m);
      dev = dirname(dev);
    }
  }
  return [...out].sort();
}

function moduleOf(driverLink: string): string | undefined {
  try {
    return basename(readlinkSync(join(driverLink, 'module')));
  } catch {
    return undefined;
  }
}

export type InitramfsTool = 'update-initramfs' | 'dracut' | 'none';

const inDirs = (exists: (rel: string) => boolean, tool: string) => ['usr/sbin', 'usr/bin', 'sbin', 'bin'].some((d) => exists(`${d}/${tool}`));

/** Which tool the clone builds its initramfs with: the one it has (Debian's first). */
export function initramfsTool(exists: (rel: string) => boolean): InitramfsTool {
  if (inDirs(exists, 'update-initramfs')) return 'update-initramfs';
  if (inDirs(exists, 'dracut')) return 'dracut';
  return 'none';
}

export function initramfsCommand(tool: InitramfsTool): string[] | undefined {
  if (tool === 'update-initramfs') return ['update-initramfs', '-u', '-k', 'all'];
  if (tool === 'dracut') return ['dracut', '--regenerate-all', '--force'];
  return undefined;
}

/** initramfs-tools' modules file with the modules appended (each once, existing lines kept). */
export function mergeModulesFile(text: string, modules: string[]): string {
  const have = new Set(text.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter((w): w is string => !!w && !w.startsWith('#')));
  const add = modules.filter((m) => !have.has(m) && !have.has(m.replace(/-/g, '_')));
  if (add.length === 0) return text;
  const base = text === '' || text.endsWith('\n') ? text : `${text}\n`;
  return `${base}# added by kaboot for this node's storage and network\n${add.join('\n')}\n`;
}

/** Where the tool reads extra modules from, and what goes there. */
export function writeInitramfsModules(root: string, tool: InitramfsTool, modules: string[]): string | undefined {
  if (modules.length === 0 || tool === 'none') return undefined;
  if (tool === 'update-initramfs') {
    const p = join(root, 'etc/initramfs-tools/modules');
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, mergeModulesFile(isPlainFile(p) ? readFileSync(p, 'utf8') : '', modules));
    return 'etc/initramfs-tools/modules';
  }
  const p = join(root, 'etc/dracut.conf.d/90-kaboot.conf');
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, `# added by kaboot for this node's storage and network\nadd_drivers+=" ${modules.join(' ')} "\n`);
  return 'etc/dracut.conf.d/90-kaboot.conf';
}

/** File system modules an initramfs needs to mount these file systems (the clone's / and /usr). */
export function fsModules(fstypes: string[]): string[] {
  const m: Record<string, string[]> = { ext2: ['ext4'], ext3: ['ext4'], ext4: ['ext4'], xfs: ['xfs'], btrfs: ['btrfs'], vfat: ['vfat'] };
  return [...new Set(fstypes.flatMap((t) => m[t] ?? []))];
}

/** Binds the node's /dev, /proc, /sys into the clone, for tools run in its chroot. */
export async function bindIntoTarget(ctx: Parameters<Step<DeployState>['run']>[0]): Promise<void> {
  const s = ctx.state;
  const root = targetDir(s.paths.stage2, '/');
  for (const [from, to] of [[s.paths.dev, 'dev'], [s.paths.proc, 'proc'], [s.paths.sys, 'sys']] as const) {
    await mountOnce(ctx, join(root, to), ['-o', 'bind', from]);
  }
  await mountOnce(ctx, join(root, 'run'), ['-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs']);
}

export const prepareStep: Step<DeployState> = {
  name: 'prepare',
  async run(ctx) {
    const s = ctx.state;
    const plan = planOf(s);
    const root = targetDir(s.paths.stage2, '/');
    const targets: FstabTarget[] = s.targets.map((t) => {
      if (!t.uuid) throw new Error(`${t.device}: no UUID (format did not run)`);
      return { ...(t.mount !== undefined ? { mount: t.mount } : {}), fstype: t.fstype, uuid: t.uuid, ...(t.sourceUuid ? { sourceUuid: t.sourceUuid } : {}), esp: t.esp };
    });
    const ids = rewriteIds(root, targets);
    s.renamedIds = ids.renamed;
    for (const c of ids.changes) ctx.say(c);
    for (const c of resetIdentity(root)) ctx.say(c);
    if (plan.hostname) for (const c of setHostname(root, plan.hostname)) ctx.say(c);

    if (!plan.bootloader.initramfs) {
      ctx.say('initramfs: not rebuilt (the plan says so)');
      return;
    }
    const tool = initramfsTool((rel) => existsSync(join(root, rel)));
    const cmd = initramfsCommand(tool);
    if (!cmd) {
      ctx.say('initramfs: the image has neither update-initramfs nor dracut: left as it is');
      return;
    }
    const nics = readdirSync(join(s.paths.sys, 'class/net')).filter((n) => n !== 'lo');
    const hw = deviceModules(s.paths.sys, s.disks.map((d) => d.name), nics);
    const atBoot = s.targets.filter((t) => t.mount === '/' || t.mount === '/usr');
    const wanted = [...new Set([...hw, ...fsModules(atBoot.map((t) => t.fstype))])];
    const kernels = cloneKernels(root);
    const known = knownModules(kernels);
    const unknown = known ? wanted.filter((m) => !known.has(m.replace(/-/g, '_'))) : [];
    // the plan's own modules (-r --with=) go in as asked; the node's only where the clone's kernel has them
    const modules = [...new Set([...wanted.filter((m) => !unknown.includes(m)), ...plan.bootloader.initramfs_modules])];
    ctx.say(`initramfs: ${tool}; this node's drivers: ${hw.join(' ') || 'none as modules'}${unknown.length ? `; not in the image's kernels, left out: ${unknown.join(' ')}` : ''}`);
    const reasons = await initramfsRebuildReasons(root, kernels, modules, [...ids.renamed.keys()], agentDecompressor(s), plan.bootloader.initramfs_contents, (l) => ctx.say(`initramfs: ${l}`));
    if (reasons.length === 0) {
      ctx.say(`initramfs: kept as the image has it: it holds ${modules.join(' ') || 'what this node needs'} (or they are built in), and names no file system this clone renames`);
      return;
    }
    for (const r of reasons) ctx.say(`initramfs: rebuilt: ${r}`);
    const file = writeInitramfsModules(root, tool, modules);
    if (file) ctx.say(`initramfs: ${modules.join(' ')} listed in ${file}`);
    await bindIntoTarget(ctx);
    await ctx.exec(s.busybox, ['chroot', root, ...cmd], { env: chrootEnv });
  },
};
