// kaboot desc: partition schemes. from-disk (the seed's fdisk_to_desc), check, sfdisk.
import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { UsageError } from './main.js';
import { parseDesc, DescError } from '../images/desc.js';
import { renderSfdiskScript } from '../images/sfdisk-script.js';
import { descFromDisk, DiskReadError } from '../images/desc-from-disk.js';

const usage = `usage:
  kaboot desc from-disk DEVICE          print the desc of a disk (or disk image file)
  kaboot desc check FILE [--disk-mb N]  parse and check a desc; print its plan as JSON
  kaboot desc sfdisk FILE [--device D]  print the sfdisk script that makes a desc's partitions`;

export async function descCommand(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { 'disk-mb': { type: 'string' }, device: { type: 'string' } },
  });
  const [sub, arg] = positionals;
  if (!sub || !arg || positionals.length > 2) throw new UsageError(usage);
  try {
    switch (sub) {
      case 'from-disk':
        process.stdout.write(await descFromDisk(arg));
        return 0;
      case 'check':
      case 'sfdisk': {
        const diskMiB = values['disk-mb'] === undefined ? undefined : Number(values['disk-mb']);
        if (diskMiB !== undefined && !(Number.isInteger(diskMiB) && diskMiB > 0)) throw new UsageError('--disk-mb needs a whole number of MB');
        const plan = parseDesc(await readDescFile(arg), { diskMiB });
        process.stdout.write(sub === 'check' ? JSON.stringify(plan, null, 2) + '\n' : renderSfdiskScript(plan, { device: values.device }));
        return 0;
      }
      default:
        throw new UsageError(usage);
    }
  } catch (e) {
    if (e instanceof DescError) {
      process.stderr.write(`kaboot: ${arg}: ${e.message}\n`);
      return 65; // EX_DATAERR
    }
    if (e instanceof DiskReadError) {
      process.stderr.write(`kaboot: ${e.message}\n`);
      return 66; // EX_NOINPUT
    }
    throw e;
  }
}

async function readDescFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new DiskReadError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}
