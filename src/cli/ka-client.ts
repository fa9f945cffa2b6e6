// kaboot ka-client: join a KA session (ka-d-client's role), feed the stream to a
// command, relay it to the next nodes, check its SHA-256.
import { parseArgs } from 'node:util';
// node.js and summary.js only, not index.js: a node has no use for the coordinator, and each start counts
import { joinSession, DEFAULT_CONTROL_PORT } from '../ka/node.js';
import { formatNodeSummary } from '../ka/summary.js';
import { KaUsageError, parseHash, parseHostPort, parseNumber, parseSize, resolveSecret, stderrLogger } from '../ka/cli-common.js';

export const kaClientUsage = `usage: kaboot ka-client -s SESSION [-e COMMAND] [options]
  -s, --session NAME      session to join
  -e, --command CMD       shell command that reads the stream on stdin (e.g. "tar -x -C /mnt")
  -c, --coordinator H[:P] coordinator address (default: find the session by UDP broadcast)
  -w, --wait              wait for the coordinator's release before exiting
  -g, --go                ask the coordinator to start now with the nodes it has
      --secret S | --secret-file FILE   session secret (else $KABOOT_KA_SECRET)
      --data-port P       port children connect to (30764)   --bind ADDR
      --discovery-port P  (4957; announcements heard on P+1)   --tries N   discovery rounds, 1 s apart (10)
      --ring SIZE         ring buffer size (64M)
      --name NAME         node name shown by the coordinator (hostname)
      --hash auto|openssl|node   where the SHA-256 is computed (auto: in-process, over the relay's own buffers)
      --log-level L       pino level (info)
Prints this node's result as JSON on stdout; exits 1 if the stream or the command failed.
`;

export async function kaClientCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      session: { type: 'string', short: 's' },
      command: { type: 'string', short: 'e' },
      coordinator: { type: 'string', short: 'c' },
      wait: { type: 'boolean', short: 'w' },
      go: { type: 'boolean', short: 'g' },
      secret: { type: 'string' },
      'secret-file': { type: 'string' },
      'data-port': { type: 'string' },
      bind: { type: 'string' },
      'discovery-port': { type: 'string' },
      tries: { type: 'string' },
      ring: { type: 'string' },
      name: { type: 'string' },
      'log-level': { type: 'string' },
      hash: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(kaClientUsage);
    return 0;
  }
  try {
    if (!values.session) throw new KaUsageError('-s SESSION is required');
    const secret = resolveSecret(values);
    const logger = stderrLogger(values['log-level']);
    const res = await joinSession({
      session: values.session,
      secret,
      command: values.command,
      coordinator: values.coordinator ? parseHostPort(values.coordinator, DEFAULT_CONTROL_PORT) : undefined,
      waitRelease: values.wait,
      goNow: values.go,
      dataPort: parseNumber(values['data-port'], '--data-port', { min: 0, integer: true }),
      bindHost: values.bind,
      discoveryPort: parseNumber(values['discovery-port'], '--discovery-port', { min: 1, integer: true }),
      discoveryTries: parseNumber(values.tries, '--tries', { min: 1, integer: true }),
      ringBytes: values.ring ? parseSize(values.ring, '--ring') : undefined,
      name: values.name,
      hash: parseHash(values.hash),
      logger,
    });
    process.stderr.write(formatNodeSummary(res));
    process.stdout.write(JSON.stringify(res) + '\n');
    return res.ok ? 0 : 1;
  } catch (e) {
    if (e instanceof KaUsageError) {
      process.stderr.write(`kaboot ka-client: ${e.message}\n\n${kaClientUsage}`);
      return 2;
    }
    throw e;
  }
}
