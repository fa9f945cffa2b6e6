import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { loadConfig } from '../config/load.js';
import { UsageError } from './main.js';

export async function configCommand(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  const [sub, file] = positionals;
  if (sub !== 'check' || !file) throw new UsageError('usage: kaboot config check FILE');
  const { config } = loadConfig(file);
  process.stdout.write(`# ${file}: valid\n${stringify(config)}`);
  return 0;
}
