// The TFTP server alone, serving a directory: for tests, benchmarks and debugging.
//   node --import tsx src/tftp/standalone.ts --root DIR [--address A]... [--port 69]
//        [--max-blksize N] [--max-windowsize N] [--timeout S] [--retries N] [--max-transfers N]
//        [--cache-mib N] [--cache-file-max-mib N] [--log-level L]   (defaults: kaboot.yaml's)
// Prints one JSON line {"ready":true,...} when listening; on SIGUSR2 prints its stats
// as a JSON line; on SIGTERM/SIGINT prints them and exits.
import { parseArgs } from 'node:util';
import { createLogger } from '../log.js';
import { defaults } from '../config/schema.js';
import { dirProvider } from './dir-provider.js';
import { FileCache, fileCacheOptions } from './file-cache.js';
import { startTftpServer } from './server.js';

const { values } = parseArgs({
  options: {
    root: { type: 'string' },
    address: { type: 'string', multiple: true },
    port: { type: 'string', default: '69' },
    'max-blksize': { type: 'string', default: String(defaults.tftp.max_blksize) },
    'max-windowsize': { type: 'string', default: String(defaults.tftp.max_windowsize) },
    timeout: { type: 'string', default: String(defaults.tftp.timeout) },
    retries: { type: 'string', default: String(defaults.tftp.retries) },
    'max-transfers': { type: 'string', default: String(defaults.tftp.max_transfers) },
    'cache-mib': { type: 'string', default: String(defaults.tftp.cache_mib) },
    'cache-file-max-mib': { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
  },
});
if (!values.root) {
  process.stderr.write('usage: standalone.ts --root DIR [--address A]... [--port N]\n');
  process.exit(2);
}
const logger = createLogger({ level: values['log-level'], pretty: false, name: 'kaboot-tftp' });
const fileMib = values['cache-file-max-mib'];
const cache = new FileCache(fileCacheOptions({ cache_mib: Number(values['cache-mib']), ...(fileMib ? { cache_file_max_mib: Number(fileMib) } : {}) }));
const provider = dirProvider(values.root, { cache });
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
    max_transfers: Number(values['max-transfers']),
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
