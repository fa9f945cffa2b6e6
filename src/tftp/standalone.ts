// The TFTP server alone, serving a directory: for tests, benchmarks and debugging.
//   node --import tsx src/tftp/standalone.ts --root DIR [--address A]... [--port 69]
//        [--max-blksize N] [--max-windowsize N] [--timeout S] [--retries N] [--log-level L]
// Prints one JSON line {"ready":true,...} when listening; on SIGUSR2 prints its stats
// as a JSON line; on SIGTERM/SIGINT prints them and exits.
import { parseArgs } from 'node:util';
import { createLogger } from '../log.js';
import { dirProvider } from './dir-provider.js';
import { startTftpServer } from './server.js';

const { values } = parseArgs({
  options: {
    root: { type: 'string' },
    address: { type: 'string', multiple: true },
    port: { type: 'string', default: '69' },
    'max-blksize': { type: 'string', default: '65464' },
    'max-windowsize': { type: 'string', default: '64' },
    timeout: { type: 'string', default: '1' },
    retries: { type: 'string', default: '6' },
    'log-level': { type: 'string', default: 'info' },
  },
});
if (!values.root) {
  process.stderr.write('usage: standalone.ts --root DIR [--address A]... [--port N]\n');
  process.exit(2);
}
const logger = createLogger({ level: values['log-level'], pretty: false, name: 'kaboot-tftp' });
const provider = dirProvider(values.root);
const server = await startTftpServer({
  addresses: values.address ?? ['0.0.0.0'],
  port: Number(values.port),
  provider,
  logger,
  limits: {
    max_blksize: Number(values['max-blksize']),
    max_windowsize: Number(values['max-windowsize']),
    timeout: Number(values.timeout),
    retries: Number(values.retries),
  },
});
const statsLine = () => JSON.stringify({ stats: server.stats(), cache: provider.cache.stats(), rssBytes: process.memoryUsage().rss });
process.stdout.write(JSON.stringify({ ready: true, listening: server.listening, pid: process.pid }) + '\n');
process.on('SIGUSR2', () => process.stdout.write(statsLine() + '\n'));
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    process.stdout.write(statsLine() + '\n');
    void server.close().finally(() => process.exit(0));
  });
}
