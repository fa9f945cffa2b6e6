// The shape `kaboot initrd` and `kaboot stage2` share: one subcommand, `build`, with its
// options; help on no arguments (exit 2) or `help` (exit 0); a bad option is a usage error.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './main.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** The `build` options parsed, or the exit code after printing the usage. */
export function parseBuildVerb<O extends Options>(command: string, argv: string[], usage: string, options: O): { values: ReturnType<typeof parseArgs<{ args: string[]; options: O }>>['values'] } | { exit: number } {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === 'help' || sub === '--help') {
    process.stdout.write(usage);
    return { exit: sub === undefined ? 2 : 0 };
  }
  if (sub !== 'build') throw new UsageError(`${command}: unknown subcommand "${sub}"\n${usage}`);
  try {
    return { values: parseArgs({ args: rest, options }).values };
  } catch (e) {
    throw new UsageError(`${command} build: ${(e as Error).message}\n${usage}`);
  }
}

/** An integer option within [min, max], or a usage error naming it. */
export function intOption(command: string, name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${command} build: --${name} is ${min}..${max}`);
  return n;
}
