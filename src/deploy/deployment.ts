// A deployment: which image goes to which nodes, with which of ka-d.sh's options, and
// where each node stands. The request is what `kaboot deploy` and POST /api/deployments
// send; the record is what state_dir/deployments/<id>.json holds.
import { randomBytes } from 'node:crypto';
import { newToken } from '../util/token.js';
import { Type, type Static } from '@sinclair/typebox';
import { Bootloader, FS_UUID_RE, IMAGE_NAME_RE, MOUNT_RE } from '../images/manifest.js';

export const MAC_PATTERN = '^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$';
/** a disk as the node's kernel names it (sda, vda, nvme0n1), or "first" */
export const DRIVE_PATTERN = '^[a-z][a-z0-9]{0,31}$';

export const BootloaderRequest = Type.Object({
  kind: Type.Union([Type.Literal('grub'), Type.Literal('extlinux'), Type.Literal('none')]),
  /** ka-d.sh -r's extra words: "--with=MOD" or "MOD" adds a module to the initramfs, "--no-initramfs" keeps the clone's */
  options: Type.Optional(Type.String({ maxLength: 1024 })),
}, { additionalProperties: false });

/** One file system of a live golden, as `kaboot deploy --live` found it (findmnt/blkid). */
export const LiveFilesystem = Type.Object({
  mount: Type.String({ pattern: MOUNT_RE.source, maxLength: 4096 }),
  fstype: Type.String({ pattern: '^[a-z0-9_.]{1,32}$' }),
  label: Type.Optional(Type.String({ maxLength: 255 })),
  uuid: Type.Optional(Type.String({ pattern: FS_UUID_RE.source })),
}, { additionalProperties: false });

/**
 * A golden that is the live source of the deployment (the seed's ka-d.sh on the golden):
 * its layout comes with the request, its file systems' tar streams come later, one
 * upload per kainstall session, when that session starts (POST /deployments/:id/live/:session).
 */
export const LiveSource = Type.Object({
  host: Type.String({ minLength: 1, maxLength: 255 }),
  /** MOUNT=DIR pairs as read on the golden, for the record */
  paths: Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 64 }),
  filesystems: Type.Array(LiveFilesystem, { minItems: 1, maxItems: 32 }),
  /** the golden's partition scheme (desc format); -p may give others */
  desc: Type.Optional(Type.String({ minLength: 1, maxLength: 64 * 1024 })),
  bootloader: Bootloader,
  kernels: Type.Array(Type.String({ maxLength: 255 }), { maxItems: 64 }),
  fstab: Type.Optional(Type.String({ maxLength: 64 * 1024 })),
  /** also store what the golden sends as this image (kaboot deploy --live --keep NAME) */
  keep: Type.Optional(Type.String({ pattern: IMAGE_NAME_RE.source })),
  /** MBR boot code per golden drive (for -m): 446 bytes in base64, with their sha256 */
  boot_code: Type.Optional(Type.Array(Type.Object({
    drive: Type.String({ pattern: DRIVE_PATTERN }),
    source: Type.String({ maxLength: 4096 }),
    base64: Type.String({ maxLength: 1024 }),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  }, { additionalProperties: false }), { maxItems: 32 })),
}, { additionalProperties: false });
export type LiveSource = Static<typeof LiveSource>;

export const DeploymentRequest = Type.Object({
  /** the stored image; with live: the name the live golden goes by (live-<host>) */
  image: Type.String({ minLength: 1, maxLength: 64 }),
  /** the golden streams its file systems itself (kaboot deploy --live): no stored image */
  live: Type.Optional(LiveSource),
  /** the nodes, by MAC; or count: the next N unknown nodes that PXE boot */
  macs: Type.Optional(Type.Array(Type.String({ pattern: MAC_PATTERN }), { minItems: 1, maxItems: 4096 })),
  count: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096 })),
  /** -x: directories not copied (absolute paths on the golden) */
  exclude: Type.Optional(Type.Array(Type.String({ pattern: '^/', maxLength: 4096 }), { maxItems: 256 })),
  /** -X: drives left alone */
  exclude_drives: Type.Optional(Type.Array(Type.String({ pattern: DRIVE_PATTERN }), { maxItems: 32 })),
  /**
   * -m [DRIVE]: copy the golden's MBR boot code (the image must hold it). true: the image's
   * only (or "first") record; a drive name: the boot code of that golden drive. It goes to
   * the deployment's drive of that name when there is one, else to the first drive.
   */
  copy_mbr: Type.Optional(Type.Union([Type.Boolean(), Type.String({ pattern: DRIVE_PATTERN })])),
  /** -M: this boot code (446 bytes, base64) goes to the first 446 bytes of the drive */
  mbr: Type.Optional(Type.Object({
    drive: Type.Optional(Type.String({ pattern: DRIVE_PATTERN })),
    base64: Type.String({ minLength: 1, maxLength: 1024 }),
  }, { additionalProperties: false })),
  /** -D: partitions copied byte for byte from a raw image file on the appliance */
  raw: Type.Optional(Type.Array(Type.Object({
    drive: Type.Optional(Type.String({ pattern: DRIVE_PATTERN })),
    partition: Type.Integer({ minimum: 1, maximum: 128 }),
    file: Type.String({ pattern: '^/', maxLength: 4096 }),
  }, { additionalProperties: false }), { maxItems: 32 })),
  /** -p: partition scheme per drive (desc text) */
  descs: Type.Optional(Type.Array(Type.Object({
    drive: Type.String({ pattern: DRIVE_PATTERN }),
    desc: Type.String({ minLength: 1, maxLength: 64 * 1024 }),
  }, { additionalProperties: false }), { maxItems: 32 })),
  /** -d: seconds between the release of two nodes at the end of a session */
  release_delay_s: Type.Optional(Type.Number({ minimum: 0, maximum: 600 })),
  /** how long a session waits for the missing nodes once the first has joined (default 120) */
  wait_s: Type.Optional(Type.Number({ minimum: 1, maximum: 86400 })),
  /** -r */
  bootloader: Type.Optional(BootloaderRequest),
  /** host names: {n} is the node's number in the deployment (1-based), {mac} its MAC with dashes */
  hostname_pattern: Type.Optional(Type.String({ minLength: 1, maxLength: 63, pattern: '^[A-Za-z0-9{}-]+$' })),
  /** reboot the node when done (default true) */
  reboot: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export type DeploymentRequest = Static<typeof DeploymentRequest>;

export type DeploymentState = 'waiting' | 'running' | 'done' | 'failed' | 'cancelled';
export type DeployNodeState = 'waiting' | 'deploying' | 'deployed' | 'failed' | 'cancelled';

export interface SessionRecord {
  name: string;
  port: number;
  secret: string;
  bytes: number;
  sha256: string;
  /** what the coordinator sends: a file on the appliance */
  source: string;
  /** set when the session ended */
  ok?: boolean;
}

export interface DeployNode {
  mac: string;
  /** 1-based, in the order the nodes were named or recruited */
  n: number;
  state: DeployNodeState;
  step?: string;
  message?: string;
  firmware?: 'bios' | 'uefi';
  hostname?: string;
  /** ISO times */
  added: string;
  started?: string;
  finished?: string;
  /** bytes this node received over all sessions, and its mean rate (bytes/s) */
  bytes?: number;
  rate?: number;
  /** time spent in sessions, ms (the rate's denominator) */
  receive_ms?: number;
  /** the sessions its last plan names (kambr is for BIOS nodes only); absent before a plan */
  sessions?: string[];
}

export interface Deployment {
  format: 1;
  id: string;
  image: string;
  request: DeploymentRequest;
  token: string;
  state: DeploymentState;
  /** count mode: how many nodes to recruit; MAC mode: the number of MACs */
  want: number;
  recruiting: boolean;
  nodes: DeployNode[];
  sessions: SessionRecord[];
  created: string;
  finished?: string;
  message?: string;
  /** kaboot deploy --live --keep NAME: the image being stored from the golden's uploads */
  keep?: { image: string; state: 'storing' | 'stored' | 'failed'; message?: string };
}

/** d-<yyyymmddhhmmss>-<4 hex> */
export function newDeploymentId(now = new Date()): string {
  const ts = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `d-${ts}-${randomBytes(2).toString('hex')}`;
}

export const DEPLOYMENT_ID_RE = /^d-\d{14}-[0-9a-f]{4}$/;

export function newDeploymentToken(): string {
  return newToken();
}

export function newSessionSecret(): string {
  return randomBytes(32).toString('hex');
}

export const isActive = (d: Deployment) => d.state === 'waiting' || d.state === 'running';
export const nodeDone = (n: DeployNode) => n.state === 'deployed' || n.state === 'failed' || n.state === 'cancelled';

/** The view the API gives: everything but the token and the session secrets. */
export function publicView(d: Deployment): Omit<Deployment, 'token' | 'sessions'> & { sessions: Omit<SessionRecord, 'secret'>[] } {
  const { token: _t, sessions, ...rest } = d;
  return { ...rest, sessions: sessions.map(({ secret: _s, ...s }) => s) };
}
