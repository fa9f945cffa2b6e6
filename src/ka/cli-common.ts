// What ka-server and ka-client share on the command line: the secret, sizes, logs.
import { readFileSync } from 'node:fs';
import { pino, type Logger } from 'pino';

export class KaUsageError extends Error {}

/** The session secret: --secret, else --secret-file, else $KABOOT_KA_SECRET. */
export function resolveSecret(v: { secret?: string; 'secret-file'?: string }, env = process.env): string {
  if (v.secret) return v.secret;
  if (v['secret-file']) {
    const s = readFileSync(v['secret-file'], 'utf8').replace(/\r?\n$/, '');
    if (!s) throw new KaUsageError(`secret file ${v['secret-file']} is empty`);
    return s;
  }
  if (env.KABOOT_KA_SECRET) return env.KABOOT_KA_SECRET;
  throw new KaUsageError('a session secret is needed: --secret, --secret-file FILE or KABOOT_KA_SECRET');
}

/** "64M", "512K", "1G" or a plain byte count. */
export function parseSize(s: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)i?B?$/i.exec(s.trim());
  if (!m) throw new KaUsageError(`${what}: "${s}" is not a size (like 64M)`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m[2] ?? '').toUpperCase() as '' | 'K' | 'M' | 'G'];
  const n = Math.round(Number(m[1]) * mult);
  if (n <= 0) throw new KaUsageError(`${what} must be positive`);
  return n;
}

export function parseNumber(s: string | undefined, what: string, opts: { min?: number; integer?: boolean } = {}): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isFinite(n) || (opts.integer && !Number.isInteger(n)) || (opts.min !== undefined && n < opts.min)) {
    throw new KaUsageError(`${what}: "${s}" is not a valid number${opts.min !== undefined ? ` ≥ ${opts.min}` : ''}`);
  }
  return n;
}

export function parseHostPort(s: string, defaultPort: number): { host: string; port: number } {
  const m = /^([^:]+)(?::(\d+))?$/.exec(s);
  if (!m) throw new KaUsageError(`"${s}" is not host[:port]`);
  return { host: m[1] as string, port: m[2] ? Number(m[2]) : defaultPort };
}

/** JSON log lines on stderr: stdout carries the result. */
export function stderrLogger(level = 'info', name = 'kaboot-ka'): Logger {
  return pino({ name, level }, pino.destination(2));
}

export function parseHash(v: string | undefined): 'auto' | 'node' | 'openssl' {
  if (v === undefined) return 'auto';
  if (v === 'auto' || v === 'node' || v === 'openssl') return v;
  throw new KaUsageError(`--hash: "${v}" is not auto, openssl or node`);
}
