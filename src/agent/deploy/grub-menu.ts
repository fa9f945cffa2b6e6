// The clone's GRUB menu: the image's own grub.cfg with the file system names prepare moved
// and the partition map of the node's disk, when that menu still fits the node; else the
// clone's update-grub writes a new one.
// Why not always update-grub: it runs every /etc/grub.d script and probes each device to
// write what the image's menu already says (14 s of a 100 s deploy under emulation), and in
// a chroot without udev it names the root by device (root=/dev/vda1) instead of by UUID.
// Pure: the caller reads the files and runs the commands.
import { basename } from 'node:path';
import { replaceIds } from './fstab.js';

export interface MenuNode {
  /** each old file system name → its new UUID=… (prepare's map) */
  renamed: Map<string, string>;
  /** the new file systems on this node */
  targets: { mount?: string; fstype: string; uuid: string; label?: string; device: string }[];
  /** the boot disk's partition table */
  label: 'dos' | 'gpt';
  /** words the plan adds to the kernel line (-r --append): only grub-mkconfig puts them in the menu */
  append?: string;
  /** whether a path relative to the clone's root exists */
  exists: (rel: string) => boolean;
}

export type MenuDecision =
  | { kind: 'rewrite'; text: string; count: number }
  | { kind: 'regenerate'; reason: string };

const PARTMAP: Record<MenuNode['label'], string> = { dos: 'part_msdos', gpt: 'part_gpt' };

/** Whether the image's grub.cfg (undefined: there is none) can serve this node once its names are moved. */
export function grubMenuFor(text: string | undefined, node: MenuNode): MenuDecision {
  const regenerate = (reason: string): MenuDecision => ({ kind: 'regenerate', reason });
  if (text === undefined) return regenerate('the image has no boot/grub/grub.cfg');
  if (node.append?.trim()) return regenerate(`the plan adds "${node.append.trim()}" to the kernel line`);
  const { text: out, count } = replaceIds(text, node.renamed);
  const uuids = new Set(node.targets.map((t) => t.uuid.toLowerCase()));
  const labels = new Set(node.targets.flatMap((t) => (t.label ? [t.label] : [])));
  const rootDevice = node.targets.find((t) => t.mount === '/')?.device;
  const swapDevices = new Set(node.targets.filter((t) => t.fstype === 'swap').map((t) => t.device));
  const partmaps = new Set<string>();

  for (const raw of out.split('\n')) {
    const words = raw.trim().split(/\s+/).filter(Boolean);
    const [cmd, ...args] = words;
    if (!cmd || cmd.startsWith('#')) continue;
    if (cmd === 'insmod' && args[0]?.startsWith('part_')) partmaps.add(args[0]);
    if (cmd === 'search' || cmd.startsWith('search.')) {
      const by = cmd === 'search.fs_uuid' || args.includes('--fs-uuid') || args.includes('-u') ? 'uuid'
        : cmd === 'search.fs_label' || args.includes('--label') || args.includes('-l') ? 'label' : 'file';
      // search [options] NAME; search.fs_uuid NAME [VARIABLE]
      const name = cmd.startsWith('search.') ? args[0] : args.filter((a) => !a.startsWith('-')).at(-1);
      if (!name || by === 'file') continue;
      const value = name.replace(/^['"]|['"]$/g, '');
      if (by === 'uuid' && !uuids.has(value.toLowerCase())) return regenerate(`grub.cfg searches for the file system ${value}, which this node does not have`);
      if (by === 'label' && !labels.has(value)) return regenerate(`grub.cfg searches for the label ${value}, which no file system on this node has`);
    }
    if (cmd === 'linux' || cmd === 'linux16' || cmd === 'linuxefi') {
      const [kernel, ...params] = args;
      if (kernel && !node.exists(`boot/${basename(kernel)}`)) return regenerate(`grub.cfg boots ${kernel}, which the clone does not have in /boot`);
      for (const p of params) {
        const m = /^(root|resume)=(.+)$/.exec(p);
        if (!m) continue;
        const problem = kernelArgProblem(m[1] as 'root' | 'resume', m[2]!, uuids, m[1] === 'root' ? (rootDevice ? new Set([rootDevice]) : new Set()) : swapDevices);
        if (problem) return regenerate(`grub.cfg passes ${p}: ${problem}`);
      }
    }
    if (cmd === 'initrd' || cmd === 'initrd16' || cmd === 'initrdefi') {
      for (const f of args) if (!node.exists(`boot/${basename(f)}`)) return regenerate(`grub.cfg loads ${f}, which the clone does not have in /boot`);
    }
  }
  // grub-mkconfig writes the partition map of the disk /boot is on: a clone on another
  // label (a UEFI node's GPT from a BIOS golden's DOS disk) gets the one its disk has
  const want = PARTMAP[node.label];
  let menu = out;
  let moved = count;
  if (partmaps.size > 0 && !partmaps.has(want)) {
    menu = out.replace(/^(\s*insmod\s+)part_[a-z0-9_]+(\s*)$/gm, (_m, a: string, b: string) => {
      moved++;
      return `${a}${want}${b}`;
    });
  }
  return { kind: 'rewrite', text: menu, count: moved };
}

function kernelArgProblem(key: 'root' | 'resume', value: string, uuids: Set<string>, devices: Set<string>): string | undefined {
  const uuid = /^UUID=(.+)$/i.exec(value)?.[1];
  if (uuid) return uuids.has(uuid.toLowerCase()) ? undefined : 'no file system on this node has that UUID';
  if (value.startsWith('/dev/')) return devices.has(value) ? undefined : `that is not this node's ${key === 'root' ? 'root file system' : 'swap'}`;
  return 'kaboot cannot tell which file system that names on this node';
}
