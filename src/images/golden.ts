// What a golden says about its disk besides its files: the partition scheme (desc) and
// the MBR boot code, from --desc FILE / --desc-from DEV / --mbr FILE / --mbr-from DEV, or
// by default from the disk that holds / when the golden's root is /. Shared by
// `kaboot image capture`, `kaboot image push` and `kaboot deploy --live`.
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { parseDesc } from './desc.js';
import { descFromDisk } from './desc-from-disk.js';
import { bootCodeFromFile, readBootCode, type BootCode } from './boot-code.js';

export interface GoldenDiskOptions {
  desc?: string;
  'desc-from'?: string;
  mbr?: string;
  'mbr-from'?: string;
  'no-mbr'?: boolean;
}

/** The disk that holds / on this machine, when it is a partition of a disk. */
export async function rootDisk(): Promise<string | undefined> {
  const src = await execa('findmnt', ['-n', '-o', 'SOURCE', '/'], { reject: false });
  const dev = src.stdout.trim();
  if (!dev.startsWith('/dev/')) return undefined;
  const pk = await execa('lsblk', ['-n', '-o', 'PKNAME', dev], { reject: false });
  const name = pk.stdout.trim().split('\n')[0];
  return name ? `/dev/${name}` : undefined;
}

/**
 * The disk the desc is read from: --desc-from DEV, or the disk holding / when the
 * golden's root is / and no --desc FILE is given.
 */
async function descDisk(o: GoldenDiskOptions, from: string[]): Promise<string | undefined> {
  if (o['desc-from']) return o['desc-from'];
  if (!o.desc && from.includes('/')) return rootDisk();
  return undefined;
}

export interface GoldenDisk {
  desc?: string;
  bootCode: BootCode[];
  /** what could not be read, for the user (not fatal) */
  notes: string[];
}

/**
 * Reads the desc and the boot code. The boot code comes with the desc when the desc is
 * read from a disk (the same disk), or from --mbr-from DEV / --mbr FILE; --no-mbr keeps none.
 * An explicit option that cannot be read is an error; a default that cannot is a note.
 */
export async function readGoldenDisk(o: GoldenDiskOptions, from: string[]): Promise<GoldenDisk> {
  const notes: string[] = [];
  let desc: string | undefined;
  if (o.desc) {
    desc = await readFile(o.desc, 'utf8');
    parseDesc(desc);
  }
  const disk = await descDisk(o, from);
  if (!o.desc) {
    if (o['desc-from']) desc = await descFromDisk(o['desc-from']);
    else if (from.includes('/')) {
      if (!disk) notes.push('no desc recorded: / is not on a partitioned disk (give --desc FILE)');
      else {
        try {
          desc = await descFromDisk(disk);
        } catch (e) {
          notes.push(`no desc recorded: ${(e as Error).message}`);
        }
      }
    }
  }
  const bootCode: BootCode[] = [];
  if (o['no-mbr']) return { desc, bootCode, notes };
  if (o.mbr) bootCode.push(await bootCodeFromFile(o.mbr));
  else if (o['mbr-from']) bootCode.push(await readBootCode(o['mbr-from']));
  else if (disk && desc !== undefined) {
    try {
      bootCode.push(await readBootCode(disk));
    } catch (e) {
      notes.push(`no MBR boot code recorded: ${(e as Error).message}`);
    }
  }
  return { desc, bootCode, notes };
}
