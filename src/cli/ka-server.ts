// kaboot ka-server: run one KA session from the command line (ka-d-server's role),
// on any network, without the appliance.
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { startSession, formatSessionSummary, type SourceSpec } from '../ka/index.js';
import type { SlowPolicy } from '../ka/slow-policy.js';
import { KaUsageError, parseHash, parseNumber, parseSize, resolveSecret, stderrLogger } from '../ka/cli-common.js';

export const kaServerUsage = `usage: kaboot ka-server -s SESSION -n N [-e COMMAND | -f FILE] [options]
  -s, --session NAME      session name nodes ask for (getstage2, kainstall1, ...)
  -n, --nodes N           start when N nodes have joined
  -e, --command CMD       source: this shell command's stdout (default: stdin)
  -f, --file FILE         source: this file
  -d, --delay T           release -w nodes one every T tenths of a second at the end
  -a, --arity K           1 = chain (default), K = tree of arity K
      --timeout SEC       start with the nodes present after SEC seconds (0 = wait for N)
      --secret S | --secret-file FILE   session secret (else $KABOOT_KA_SECRET)
  -p, --port P            control port (30765)      --data-port P   data port (30764)
      --discovery-port P  UDP discovery port (4957; announces the session on P+1)  --no-discovery  nodes use -c
      --bind ADDR         listen on this address only
      --spool DIR         where the spool file lives (a temp dir)   --keep-spool
      --ring SIZE         source ring size (64M)
      --dead-after SEC    a silent node is dead after SEC (5)
      --slow-fraction F   slow below F x the others' lowest capacity (0.5)  --slow-after N windows (5)  --no-slow
      --no-late-join      refuse nodes after the start
      --hash auto|openssl|node   where the SHA-256 is computed (auto: in-process, over the relay's own buffers)
      --log-level L       pino level (info)
Prints the session's result as JSON on stdout, a summary on stderr; exits 1 if any node failed.
`;

export async function kaServerCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      session: { type: 'string', short: 's' },
      nodes: { type: 'string', short: 'n' },
      command: { type: 'string', short: 'e' },
      file: { type: 'string', short: 'f' },
      delay: { type: 'string', short: 'd' },
      arity: { type: 'string', short: 'a' },
      timeout: { type: 'string' },
      secret: { type: 'string' },
      'secret-file': { type: 'string' },
      port: { type: 'string', short: 'p' },
      'data-port': { type: 'string' },
      'discovery-port': { type: 'string' },
      'no-discovery': { type: 'boolean' },
      bind: { type: 'string' },
      spool: { type: 'string' },
      'keep-spool': { type: 'boolean' },
      ring: { type: 'string' },
      'dead-after': { type: 'string' },
      'slow-fraction': { type: 'string' },
      'slow-after': { type: 'string' },
      'no-slow': { type: 'boolean' },
      'no-late-join': { type: 'boolean' },
      'log-level': { type: 'string' },
      hash: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(kaServerUsage);
    return 0;
  }
  try {
    if (!values.session) throw new KaUsageError('-s SESSION is required');
    const nodes = parseNumber(values.nodes, '-n', { min: 1, integer: true });
    if (nodes === undefined) throw new KaUsageError('-n N is required');
    if (values.command && values.file) throw new KaUsageError('-e and -f are exclusive');
    if (values.file && !existsSync(values.file)) throw new KaUsageError(`-f ${values.file}: no such file`);
    const source: SourceSpec = values.command ? { command: values.command } : values.file ? { file: values.file } : { stream: process.stdin };
    const secret = resolveSecret(values);
    const logger = stderrLogger(values['log-level']);
    const session = await startSession({
      session: values.session,
      secret,
      expectedNodes: nodes,
      source,
      arity: parseNumber(values.arity, '-a', { min: 1, integer: true }),
      releaseDelayMs: (parseNumber(values.delay, '-d', { min: 0 }) ?? 0) * 100,
      waitTimeoutMs: (parseNumber(values.timeout, '--timeout', { min: 0 }) ?? 0) * 1000,
      controlPort: parseNumber(values.port, '-p', { min: 0, integer: true }),
      dataPort: parseNumber(values['data-port'], '--data-port', { min: 0, integer: true }),
      discoveryPort: values['no-discovery'] ? null : parseNumber(values['discovery-port'], '--discovery-port', { min: 1, integer: true }),
      bindHost: values.bind,
      spoolDir: values.spool,
      keepSpool: values['keep-spool'],
      ringBytes: values.ring ? parseSize(values.ring, '--ring') : undefined,
      deadAfterMs: (parseNumber(values['dead-after'], '--dead-after', { min: 0.1 }) ?? 5) * 1000,
      slowPolicy: values['no-slow']
        ? false
        : slowPolicyOptions(parseNumber(values['slow-fraction'], '--slow-fraction', { min: 0 }), parseNumber(values['slow-after'], '--slow-after', { min: 1, integer: true })),
      lateJoin: !values['no-late-join'],
      hash: parseHash(values.hash),
      logger,
    });
    process.stderr.write(`ka-server: session ${values.session} listening, control port ${session.controlPort}, data port ${session.dataPort}\n`);
    const stop = () => void session.close('interrupted');
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const res = await session.result;
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    process.stderr.write(formatSessionSummary(res));
    process.stdout.write(JSON.stringify(res, null, 1) + '\n');
    return res.ok ? 0 : 1;
  } catch (e) {
    if (e instanceof KaUsageError) {
      process.stderr.write(`kaboot ka-server: ${e.message}\n\n${kaServerUsage}`);
      return 2;
    }
    throw e;
  }
}

/** Only what was given: the rest is the coordinator's defaultSlowPolicy. */
function slowPolicyOptions(fraction: number | undefined, windows: number | undefined): Partial<SlowPolicy> {
  return { ...(fraction !== undefined ? { fraction } : {}), ...(windows !== undefined ? { windows } : {}) };
}
