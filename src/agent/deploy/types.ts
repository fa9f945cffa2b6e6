// What the deploy steps share: where the appliance is, the plan, the disks and file systems
// as resolved on this node, and what is mounted (so the end, or a failure, can undo it).
import type { DeployPlan, SessionRef } from '../../deploy/plan.js';
import type { DescPlan, FsType } from '../../images/desc.js';
import type { Firmware } from '../firmware.js';
import type { ApplianceLog } from '../log-client.js';

export interface Paths {
  /** where stage2 is mounted; its tools run as `chroot <stage2> TOOL` */
  stage2: string;
  /** RAM folder for stage2.sqfs and the consumers' error output */
  run: string;
  /** device nodes (devtmpfs) */
  dev: string;
  sys: string;
  proc: string;
}

export const defaultPaths: Paths = { stage2: '/stage2', run: '/run/kaboot', dev: '/dev', sys: '/sys', proc: '/proc' };

/** A file system to make on this node: from the plan (or from the desc alone, then without a session). */
export interface TargetFs {
  disk: number;
  partition: number;
  /** /dev/vda1 */
  device: string;
  fstype: FsType;
  mount?: string;
  label?: string;
  /** the UUID it had on the golden, when the image knows it */
  sourceUuid?: string;
  /** the partition is an EFI system partition (vfat gets FAT32) */
  esp: boolean;
  session?: SessionRef;
  exclude: string[];
  files?: number;
  bytesUsed?: number;
  aclUrl?: string;
  /** set by format: the UUID blkid reads back */
  uuid?: string;
}

export interface ResolvedDisk {
  /** index in plan.disks */
  index: number;
  /** vda, sda, nvme0n1 */
  name: string;
  /** /dev/vda */
  device: string;
  desc: DescPlan;
  sizeMiB: number;
}

export interface DeployState {
  /** http://IP:PORT */
  appliance: string;
  /** the appliance's host (the KA coordinators run there) */
  applianceHost: string;
  mac: string;
  token: string;
  firmware: Firmware;
  busybox: string;
  paths: Paths;
  log: ApplianceLog;
  /** called once the plan is known: the remote-command poller starts then */
  onPlan?: (plan: DeployPlan) => void;
  plan?: DeployPlan;
  disks: ResolvedDisk[];
  targets: TargetFs[];
  /** set by prepare: each old file system name the clone used (UUID=…, /dev/…) → its new UUID=… */
  renamedIds?: Map<string, string>;
  /** mount points in the order they were mounted (unmounted in reverse) */
  mounted: string[];
}

export function planOf(s: DeployState): DeployPlan {
  if (!s.plan) throw new Error('no plan yet (the plan step did not run)');
  return s.plan;
}

/** PATH for commands in a chroot (stage2's or the clone's): sbin first, as root's. */
export const chrootEnv: Record<string, string> = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', LANG: 'C' };
