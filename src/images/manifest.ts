// manifest.json of a stored image: what a deployment needs to know to partition,
// format, fill, check and make a node bootable, without opening a squashfs.
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

export const IMAGE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const MOUNT_RE = /^\/([^\0\n]*[^/\0\n])?$/;
/** a file system UUID as blkid prints it (ext4, xfs, btrfs: 36 characters; vfat: ABCD-1234) */
export const FS_UUID_RE = /^[0-9A-Fa-f-]{1,64}$/;
/** a kernel module's name, '-' written '_' */
export const MODULE_NAME_RE = /^[A-Za-z0-9_]{1,64}$/;

export const Bootloader = Type.Union([Type.Literal('grub-pc'), Type.Literal('grub-efi'), Type.Literal('extlinux'), Type.Literal('unknown')]);
export type BootloaderName = Static<typeof Bootloader>;

const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });

export const FilesystemRecord = Type.Object({
  mount: Type.String({ pattern: MOUNT_RE.source, description: 'mount point on the golden: /, /boot, /boot/efi' }),
  fstype: Type.String({ description: 'file system type on the golden (ext4, xfs, vfat...), "unknown" for a plain directory' }),
  label: Type.Optional(Type.String()),
  uuid: Type.Optional(Type.String()),
  files: Type.Integer({ minimum: 0, description: 'entries in the tar stream' }),
  bytes_used: Type.Integer({ minimum: 0, description: 'file data carried by the stream (sparse holes excluded)' }),
  squashfs: Type.String({ description: 'file below the image folder' }),
  squashfs_bytes: Type.Integer({ minimum: 0 }),
  squashfs_sha256: Sha256,
  tar_bytes: Type.Integer({ minimum: 0 }),
  tar_sha256: Sha256,
  stream: Type.String({ description: 'the tar stream as captured, zstd-compressed: what a deployment sends' }),
  stream_bytes: Type.Integer({ minimum: 0 }),
  stream_sha256: Sha256,
  acl_file: Type.Optional(Type.String({ description: 'getfacl text for setfacl --restore (squashfs has no POSIX ACLs)' })),
  acl_entries: Type.Integer({ minimum: 0 }),
}, { additionalProperties: false });
export type FilesystemRecord = Static<typeof FilesystemRecord>;

/** The first 446 bytes of a golden drive (its MBR boot code, never the partition table): what ka-d.sh -m copies. */
export const BootCodeRecord = Type.Object({
  /** the golden drive's kernel name (sda, vda, nvme0n1): -m DRIVE takes the record of that name */
  drive: Type.String({ pattern: '^[a-z][a-z0-9]{0,31}$' }),
  /** the device it was read from, or the file given */
  source: Type.String(),
  /** side file below the image folder: mbr/<drive>.bin */
  file: Type.String({ pattern: '^mbr/[a-z][a-z0-9]{0,31}\\.bin$' }),
  sha256: Sha256,
}, { additionalProperties: false });
export type BootCodeRecord = Static<typeof BootCodeRecord>;

export const BOOT_CODE_BYTES = 446;

/**
 * What one initramfs of the image holds (src/initramfs/read.ts), read once when the image is
 * stored: a node decides whether to rebuild it from this, without decompressing it itself.
 */
export const InitramfsRecord = Type.Object({
  /** absolute on the golden: /boot/initrd.img-6.1.0-50-amd64 */
  path: Type.String({ pattern: '^/boot/[^/\\0\\n]{1,255}$' }),
  bytes: Type.Integer({ minimum: 0 }),
  /** module names inside, '_' form */
  modules: Type.Array(Type.String({ pattern: MODULE_NAME_RE.source }), { maxItems: 20000 }),
  /** small files under conf/, etc/ and cryptroot/ that may name devices: path → text */
  texts: Type.Record(Type.String(), Type.String()),
}, { additionalProperties: false });
export type InitramfsRecord = Static<typeof InitramfsRecord>;

export const ImageManifest = Type.Object({
  format: Type.Literal(1),
  name: Type.String({ pattern: IMAGE_NAME_RE.source }),
  created: Type.String({ description: 'ISO 8601' }),
  source: Type.Object({
    /** live: a deployment's golden streaming as it goes (never stored as such) */
    kind: Type.Union([Type.Literal('local'), Type.Literal('push'), Type.Literal('live')]),
    host: Type.Optional(Type.String()),
    paths: Type.Array(Type.String()),
  }, { additionalProperties: false }),
  filesystems: Type.Array(FilesystemRecord, { minItems: 1 }),
  desc: Type.Optional(Type.String({ description: 'partition scheme of the golden, in desc format' })),
  bootloader: Bootloader,
  kernels: Type.Array(Type.String(), { description: 'versions found in lib/modules and boot/vmlinuz-*' }),
  fstab: Type.Optional(Type.String({ description: "the golden's etc/fstab" })),
  /** MBR boot code per golden drive (kaboot deploy -m) */
  boot_code: Type.Optional(Type.Array(BootCodeRecord, { maxItems: 32 })),
  /** the initramfs images of its kernels, as read when it was stored (absent: nodes read them) */
  initramfs: Type.Optional(Type.Array(InitramfsRecord, { maxItems: 64 })),
  warnings: Type.Array(Type.String()),
}, { additionalProperties: false });
export type ImageManifest = Static<typeof ImageManifest>;

export type BootloaderHint = 'grub-pc' | 'grub-efi' | 'extlinux';

/** The golden's bootloader from what its files show: GRUB for EFI when it has an ESP (or no BIOS GRUB), else BIOS GRUB, else extlinux. */
export function chooseBootloader(hints: Set<BootloaderHint>, hasEsp: boolean): BootloaderName {
  if (hints.has('grub-efi') && (hasEsp || !hints.has('grub-pc'))) return 'grub-efi';
  if (hints.has('grub-pc')) return 'grub-pc';
  if (hints.has('extlinux')) return 'extlinux';
  return 'unknown';
}

export class ManifestError extends Error {
  override name = 'ManifestError';
}

export function parseManifest(text: string, where: string): ImageManifest {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ManifestError(`${where}: not JSON (${(e as Error).message})`);
  }
  if (!Value.Check(ImageManifest, v)) {
    const first = [...Value.Errors(ImageManifest, v)][0];
    throw new ManifestError(`${where}: ${first ? `${first.path || '/'} ${first.message}` : 'invalid'}`);
  }
  return v;
}

export function checkImageName(name: string): string | undefined {
  if (!IMAGE_NAME_RE.test(name)) return `image name ${JSON.stringify(name)}: expected 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`;
  return undefined;
}

/** The squashfs file of a mount point: numbered, so "/boot/efi" and "/boot_efi" never meet. */
export function squashfsFileName(index: number, mount: string): string {
  const slug = mount === '/' ? 'root' : mount.slice(1).replace(/[^A-Za-z0-9._-]/g, '_');
  return `fs/${index + 1}-${slug}.sqfs`;
}
