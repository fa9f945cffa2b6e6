// The clone's fstab for this node: every line whose mount point the plan fills (and each
// swap line, in order) names the new file system by UUID; lines for block devices the node
// does not have are turned into comments (systemd would wait for them at every boot; not
// the nofail and noauto ones, which it does not wait for); mount
// points the golden's fstab lacks (an ESP added for a UEFI node) get a line. The old
// identifiers and the new UUIDs come out as a map, for the other files that name them. Pure.

export interface FstabTarget {
  /** mount point; undefined for swap */
  mount?: string;
  fstype: string;
  uuid: string;
  /** its UUID on the golden, when the image knows it */
  sourceUuid?: string;
  esp?: boolean;
}

export interface FstabRewrite {
  text: string;
  /** old spec (UUID=..., LABEL=..., /dev/sda1) → new UUID=... */
  renamed: Map<string, string>;
  changes: string[];
}

const BLOCK_SPEC = /^(UUID|LABEL|PARTUUID|PARTLABEL)=|^\/dev\/(sd|vd|hd|xvd|nvme|mmcblk|disk\/by-)/;
const NOT_BLOCK_FS = new Set(['proc', 'sysfs', 'tmpfs', 'devpts', 'devtmpfs', 'nfs', 'nfs4', 'cifs', 'smbfs', 'bind', 'none', 'securityfs', 'cgroup', 'cgroup2', 'fuse', 'overlay', 'efivarfs', 'debugfs', 'hugetlbfs', 'mqueue', 'ramfs', 'autofs']);

/** "/var/" and "/var" are the same mount point; fstab escapes spaces as \040. */
function normMount(m: string): string {
  const d = m.replace(/\\040/g, ' ');
  return d.length > 1 ? d.replace(/\/+$/, '') : d;
}

function defaultOptions(t: FstabTarget): { options: string; pass: number } {
  if (t.fstype === 'swap') return { options: 'sw', pass: 0 };
  if (t.fstype === 'vfat') return { options: 'umask=0077', pass: t.mount === '/' ? 1 : 2 };
  if (t.fstype === 'xfs' || t.fstype === 'btrfs') return { options: 'defaults', pass: 0 };
  return { options: t.mount === '/' ? 'errors=remount-ro' : 'defaults', pass: t.mount === '/' ? 1 : 2 };
}

export function rewriteFstab(text: string, targets: FstabTarget[]): FstabRewrite {
  const renamed = new Map<string, string>();
  const changes: string[] = [];
  const byMount = new Map(targets.filter((t) => t.mount !== undefined).map((t) => [t.mount!, t]));
  const swaps = targets.filter((t) => t.fstype === 'swap');
  const used = new Set<FstabTarget>();
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('#')) {
      out.push(line);
      continue;
    }
    const f = trimmed.split(/\s+/);
    const [spec, mountRaw, type] = f;
    if (!spec || !mountRaw) {
      out.push(line);
      continue;
    }
    const mount = normMount(mountRaw);
    const isSwap = type === 'swap';
    let t: FstabTarget | undefined;
    if (isSwap) t = swaps.find((x) => !used.has(x));
    else t = byMount.get(mount);
    if (t && !used.has(t)) {
      used.add(t);
      const fields = [...f];
      while (fields.length < 6) fields.push(fields.length === 3 ? 'defaults' : '0');
      fields[0] = `UUID=${t.uuid}`;
      if (!isSwap && type !== t.fstype && type !== 'auto') {
        const d = defaultOptions(t);
        fields[2] = t.fstype;
        fields[3] = d.options;
        fields[5] = String(d.pass);
        changes.push(`${mount}: ${type} → ${t.fstype} (options ${d.options})`);
      }
      if (spec !== fields[0]) renamed.set(spec, fields[0]);
      changes.push(`${isSwap ? 'swap' : mount}: ${spec} → ${fields[0]}`);
      out.push(fields.join('\t'));
      continue;
    }
    const options = (f[3] ?? '').split(',');
    if (BLOCK_SPEC.test(spec) && !NOT_BLOCK_FS.has(type ?? '') && !options.includes('nofail') && !options.includes('noauto')) {
      out.push(`# kaboot: not on this node: ${line}`);
      changes.push(`${isSwap ? 'swap' : mount}: ${spec} is not on this node: commented out`);
      continue;
    }
    out.push(line);
  }
  while (out.length > 0 && out[out.length - 1] === '') out.pop();
  for (const t of targets) {
    if (used.has(t) || (t.mount === undefined && t.fstype !== 'swap')) continue;
    const d = defaultOptions(t);
    // an ESP the golden never had: GRUB needs it before the OS does, and a clone whose kernel
    // cannot mount it must not stop in emergency mode for that
    if (t.esp) d.options += ',nofail';
    const mount = t.fstype === 'swap' ? 'none' : t.mount!;
    out.push(`UUID=${t.uuid}\t${mount}\t${t.fstype}\t${d.options}\t0\t${d.pass}`);
    changes.push(`${t.fstype === 'swap' ? 'swap' : mount}: added UUID=${t.uuid}`);
  }
  return { text: out.join('\n') + '\n', renamed, changes };
}

/**
 * The other files that name file systems (a resume= swap, a root= in a boot entry): each old
 * identifier the fstab named is replaced by the new one, as UUID=old or bare old UUID.
 */
export function replaceIds(text: string, renamed: Map<string, string>): { text: string; count: number } {
  let count = 0;
  let out = text;
  for (const [oldSpec, newSpec] of renamed) {
    const pairs: [string, string][] = [[oldSpec, newSpec]];
    const oldUuid = /^UUID=(.+)$/.exec(oldSpec)?.[1];
    const newUuid = /^UUID=(.+)$/.exec(newSpec)?.[1];
    if (oldUuid && newUuid) pairs.push([oldUuid, newUuid]);
    for (const [a, b] of pairs) {
      // whole identifiers only: /dev/sda1 is not the start of /dev/sda10
      const re = new RegExp(`(?<![A-Za-z0-9_-])${a.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}(?![A-Za-z0-9_-])`, 'g');
      out = out.replace(re, () => {
        count++;
        return b;
      });
    }
  }
  return { text: out, count };
}
