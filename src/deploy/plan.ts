// The deployment plan: what the appliance tells one node to do, and the only thing the
// agent needs to know about a deployment. GET /api/nodes/:mac/plan?firmware=bios|uefi
// (Authorization: Bearer <deployment token>) answers with a DeployPlan.
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { FS_UUID_RE, InitramfsRecord } from '../images/manifest.js';

/** A KA session the node joins; its coordinator runs inside `kaboot serve`. */
export const SessionRef = Type.Object({
  /** getstage2, kainstall1, kainstall2... as in the seed */
  name: Type.String({ minLength: 1, maxLength: 64 }),
  /** the coordinator's control port on the appliance; the host is the appliance the agent found */
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  /** the session's HMAC secret (hex) */
  secret: Type.String({ pattern: '^[0-9a-f]{32,128}$' }),
  /** bytes of the stream and its SHA-256, so the node can say what it expects */
  bytes: Type.Integer({ minimum: 0 }),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  /**
   * the stream comes live from the golden (kaboot deploy --live): its size and digest are
   * not known when the plan is made, so bytes is 0 and sha256 64 zeros. The node relies on
   * the KA digest (the coordinator's SHA-256 of what it sent, checked by the node) and on
   * its consumer's exit status; the appliance checked the golden's own SHA-256 of the upload.
   */
  live: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export type SessionRef = Static<typeof SessionRef>;

/** One file system to make and fill, on the partition of the desc with this number. */
export const FilesystemPlan = Type.Object({
  /** 1-based partition number in the disk's desc (as sfdisk numbers them: logicals from 5) */
  partition: Type.Integer({ minimum: 1, maximum: 128 }),
  fstype: Type.String({ description: 'ext2 ext3 ext4 xfs btrfs vfat swap' }),
  /** mount point on the node; none for swap */
  mount: Type.Optional(Type.String()),
  label: Type.Optional(Type.String()),
  /** the UUID this file system had on the golden (from the image): the clone's files that name it are moved to the new one */
  source_uuid: Type.Optional(Type.String({ pattern: FS_UUID_RE.source })),
  /** where the files come from: a zstd-compressed tar stream (absent: formatted empty, e.g. an ESP or swap) */
  session: Type.Optional(SessionRef),
  /** paths below the mount point not extracted (ka-d.sh -x); each is created empty */
  exclude: Type.Array(Type.String()),
  /** files in the stream and the data bytes they carry, from the image manifest: checked after receive */
  files: Type.Optional(Type.Integer({ minimum: 0 })),
  bytes_used: Type.Optional(Type.Integer({ minimum: 0 })),
  /** getfacl text to restore after extraction (squashfs keeps no ACLs, the stream does) */
  acl_url: Type.Optional(Type.String()),
}, { additionalProperties: false });
export type FilesystemPlan = Static<typeof FilesystemPlan>;

/** A partition copied byte for byte (ka-d.sh -D): the stream is the raw partition, zstd-compressed. */
export const RawPartitionPlan = Type.Object({
  partition: Type.Integer({ minimum: 1, maximum: 128 }),
  session: SessionRef,
}, { additionalProperties: false });

export const DiskPlan = Type.Object({
  /** the node's disk: a name (vda, sda, nvme0n1) or "first": the first non-removable disk big enough */
  device: Type.String({ minLength: 1 }),
  /** partition scheme in desc format (docs/images.md), already adjusted for the node's firmware */
  desc: Type.String(),
  filesystems: Type.Array(FilesystemPlan),
  raw: Type.Array(RawPartitionPlan),
  /** ka-d.sh -m / -M: the first 446 bytes of the disk come from this session's stream */
  mbr: Type.Optional(SessionRef),
}, { additionalProperties: false });
export type DiskPlan = Static<typeof DiskPlan>;

export const BootloaderPlan = Type.Object({
  /** grub: grub-install for the node's firmware (i386-pc or x86_64-efi), then the menu (the image's with the new UUIDs, or update-grub); extlinux; none */
  kind: Type.Union([Type.Literal('grub'), Type.Literal('extlinux'), Type.Literal('none')]),
  /** the disk the boot code goes to (a DiskPlan device) */
  device: Type.String(),
  /** rebuild the initramfs in the clone (update-initramfs or dracut, whichever the image has) */
  initramfs: Type.Boolean(),
  /** extra modules the rebuilt initramfs must hold besides the node's own storage and NIC drivers */
  initramfs_modules: Type.Array(Type.String()),
  /** what the image's initramfs images hold (the image manifest's record): the node need not read them */
  initramfs_contents: Type.Optional(Type.Array(InitramfsRecord)),
  /** kernel command line words added to the clone's boot entry */
  append: Type.Optional(Type.String()),
}, { additionalProperties: false });
export type BootloaderPlan = Static<typeof BootloaderPlan>;

export const DeployPlan = Type.Object({
  format: Type.Literal(1),
  deployment: Type.String({ minLength: 1 }),
  mac: Type.String(),
  firmware: Type.Union([Type.Literal('bios'), Type.Literal('uefi')]),
  image: Type.String(),
  /** the node's new host name (absent: keep the golden's) */
  hostname: Type.Optional(Type.String()),
  /** the stage2 squashfs, broadcast by the getstage2 session */
  stage2: SessionRef,
  disks: Type.Array(DiskPlan, { minItems: 1 }),
  bootloader: BootloaderPlan,
  /** reboot when done (the appliance has flipped the node to local boot by then) */
  reboot: Type.Boolean(),
  /** drives the node must leave alone (ka-d.sh -X): a DiskPlan device "first" never picks one of them */
  exclude_drives: Type.Optional(Type.Array(Type.String())),
}, { additionalProperties: false });
export type DeployPlan = Static<typeof DeployPlan>;

export class PlanError extends Error {
  override name = 'PlanError';
}

export function parsePlan(value: unknown): DeployPlan {
  if (Value.Check(DeployPlan, value)) return value;
  const first = [...Value.Errors(DeployPlan, value)][0];
  throw new PlanError(`not a deployment plan: ${first ? `${first.path || '/'}: ${first.message}` : 'wrong shape'}`);
}
