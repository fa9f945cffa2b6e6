// A golden drive's MBR boot code: its first 446 bytes, what ka-d.sh -m copied to the
// nodes. Only the code: the partition table after it (bytes 446-511) belongs to the
// node's own desc, so it is never read here, never stored, never sent.
import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { BOOT_CODE_BYTES } from './manifest.js';

export class BootCodeError extends Error {
  override name = 'BootCodeError';
}

/** Boot code of one golden drive, ready for the store. */
export interface BootCode {
  /** the drive's kernel name (sda), the key -m DRIVE looks up */
  drive: string;
  /** device or file it came from */
  source: string;
  bytes: Buffer;
  /** what is odd about it, for the image's warnings */
  warnings: string[];
}

const DRIVE_RE = /^[a-z][a-z0-9]{0,31}$/;

/** /dev/sda → sda; a name the drive pattern does not take (a file, /dev/mapper/x) → "first". */
export function driveNameOf(source: string): string {
  const name = basename(source);
  return DRIVE_RE.test(name) ? name : 'first';
}

export function sha256Hex(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Checks 446 bytes of boot code; says what is odd (all zero: nothing to boot). */
export function checkBootCode(bytes: Buffer, source: string): string[] {
  if (bytes.length !== BOOT_CODE_BYTES) throw new BootCodeError(`${source}: MBR boot code must be ${BOOT_CODE_BYTES} bytes, got ${bytes.length}`);
  return bytes.every((b) => b === 0) ? [`${source}: the MBR boot code is all zero bytes (no BIOS boot loader in the MBR)`] : [];
}

/** The first 446 bytes of a block device (or disk image file). */
export async function readBootCode(device: string, drive = driveNameOf(device)): Promise<BootCode> {
  let fh;
  try {
    fh = await open(device, 'r');
  } catch (e) {
    throw new BootCodeError(`cannot read the MBR of ${device}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    if (bytesRead < 512) throw new BootCodeError(`${device}: shorter than one sector (${bytesRead} bytes), no MBR`);
    const bytes = Buffer.from(buf.subarray(0, BOOT_CODE_BYTES));
    const warnings = checkBootCode(bytes, device);
    if (buf[510] !== 0x55 || buf[511] !== 0xaa) warnings.push(`${device}: no 55 AA signature at byte 510: not an MBR (its boot code is kept as read)`);
    return { drive, source: device, bytes, warnings };
  } finally {
    await fh.close();
  }
}

/** A file holding the boot code (kaboot image capture --mbr FILE): exactly 446 bytes, or a 512-byte sector of which the first 446 are kept. */
export async function bootCodeFromFile(file: string, drive = 'first'): Promise<BootCode> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (e) {
    throw new BootCodeError(`--mbr ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (data.length === 512) data = data.subarray(0, BOOT_CODE_BYTES);
  if (data.length !== BOOT_CODE_BYTES) throw new BootCodeError(`--mbr ${file}: expected ${BOOT_CODE_BYTES} bytes (or a 512-byte MBR sector), got ${data.length}`);
  if (!DRIVE_RE.test(drive)) throw new BootCodeError(`--mbr: ${JSON.stringify(drive)} is not a drive name (sda, vda, nvme0n1)`);
  return { drive, source: file, bytes: Buffer.from(data), warnings: checkBootCode(data, file) };
}
