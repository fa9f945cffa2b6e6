// A live golden as the image of a deployment: the layout the golden sent (file systems,
// desc, bootloader, boot code) made into the ImageManifest the policy reads, so -x, -X,
// -p, -m, -r and the firmware rules work as for a stored image. What only a stored image
// knows (entry counts, bytes, stream digests, ACL files) is absent or zero: the plan
// marks those sessions live and carries no counts for them. Pure.
import { createHash } from 'node:crypto';
import { BOOT_CODE_BYTES, type ImageManifest, type FilesystemRecord } from '../images/manifest.js';
import type { LiveSource } from './deployment.js';
import { PolicyError } from './policy.js';

export const ZERO_SHA256 = '0'.repeat(64);

/** The name a live golden goes by when none is given: live-<host>, as an image name. */
export function liveImageName(host: string): string {
  const slug = host.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 59);
  return `live-${slug || 'golden'}`;
}

/** The boot code the golden sent, decoded and checked. */
export function liveBootCode(live: LiveSource): { drive: string; source: string; bytes: Buffer; sha256: string }[] {
  return (live.boot_code ?? []).map((b) => {
    const bytes = Buffer.from(b.base64, 'base64');
    if (bytes.length !== BOOT_CODE_BYTES) throw new PolicyError(`live boot code of ${b.drive}: ${bytes.length} bytes, expected ${BOOT_CODE_BYTES}`);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    if (sha256 !== b.sha256) throw new PolicyError(`live boot code of ${b.drive}: the golden read sha256 ${b.sha256}, the appliance received ${sha256}`);
    return { drive: b.drive, source: b.source, bytes, sha256 };
  });
}

export function liveManifest(name: string, live: LiveSource, created = new Date()): ImageManifest {
  const seen = new Set<string>();
  for (const f of live.filesystems) {
    if (seen.has(f.mount)) throw new PolicyError(`the live golden names mount point ${f.mount} twice`);
    if (f.mount.split('/').some((c) => c === '..' || c === '.')) throw new PolicyError(`live mount point ${JSON.stringify(f.mount)}: no "." or ".."`);
    seen.add(f.mount);
  }
  if (!seen.has('/')) throw new PolicyError('the live golden sends no root file system (/)');
  const drives = new Set<string>();
  for (const b of live.boot_code ?? []) {
    if (drives.has(b.drive)) throw new PolicyError(`live boot code of drive ${b.drive} given twice`);
    drives.add(b.drive);
  }
  const codes = liveBootCode(live);
  const filesystems: FilesystemRecord[] = [...live.filesystems]
    .sort((a, b) => a.mount.split('/').length - b.mount.split('/').length || a.mount.localeCompare(b.mount))
    .map((f) => ({
      mount: f.mount,
      fstype: f.fstype,
      ...(f.label ? { label: f.label } : {}),
      ...(f.uuid ? { uuid: f.uuid } : {}),
      files: 0,
      bytes_used: 0,
      squashfs: '',
      squashfs_bytes: 0,
      squashfs_sha256: ZERO_SHA256,
      tar_bytes: 0,
      tar_sha256: ZERO_SHA256,
      stream: `live:${f.mount}`,
      stream_bytes: 0,
      stream_sha256: ZERO_SHA256,
      acl_entries: 0,
    }));
  return {
    format: 1,
    name,
    created: created.toISOString(),
    source: { kind: 'live', host: live.host, paths: live.paths },
    filesystems,
    ...(live.desc ? { desc: live.desc } : {}),
    bootloader: live.bootloader,
    kernels: live.kernels,
    ...(live.fstab ? { fstab: live.fstab } : {}),
    ...(codes.length ? { boot_code: codes.map((c) => ({ drive: c.drive, source: c.source, file: `mbr/${c.drive}.bin`, sha256: c.sha256 })) } : {}),
    warnings: [],
  };
}

export const isLive = (image: ImageManifest) => image.source.kind === 'live';
