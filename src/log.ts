// One pino logger for the process. JSON lines by default (for journald and log
// shippers); pretty lines for a person at a terminal.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(opts: { level?: string; pretty?: boolean | 'auto'; name?: string } = {}): Logger {
  const pretty = opts.pretty === 'auto' || opts.pretty === undefined ? Boolean(process.stdout.isTTY) : opts.pretty;
  return pino({
    name: opts.name ?? 'kaboot',
    level: opts.level ?? 'info',
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } } : {}),
  });
}

/** A logger that writes nothing, for unit tests of code that logs. */
export const silentLogger: Logger = pino({ level: 'silent' });
