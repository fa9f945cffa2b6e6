// Runs kaboot's DHCP server alone, as its own process, for tests that kill it
// (kill -9) or flood it: `node --import tsx test/helpers/dhcp-runner.ts --config FILE`.
// Logs JSON to stdout; "dhcp runner ready" once listening. SIGUSR2 logs the stats
// ("dhcp stats"); SIGTERM closes cleanly. --leases-out FILE writes the lease list there
// at start and on SIGUSR2.
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { NodeRegistry } from '../../src/nodes/registry.js';
import { selectInterfaces } from '../../src/net/interfaces.js';
import { startDhcpServer } from '../../src/dhcp/server.js';

const { values } = parseArgs({ options: { config: { type: 'string' }, 'leases-out': { type: 'string' } } });
const { config } = loadConfig(values.config);
const logger = createLogger({ level: config.log.level, pretty: false, name: 'kaboot-dhcp' });
const nodes = new NodeRegistry(config.state_dir);
const interfaces = selectInterfaces(config.interfaces);
const server = await startDhcpServer({ config, interfaces, nodes, logger });
const dump = () => {
  if (values['leases-out']) writeFileSync(values['leases-out'], JSON.stringify(server.leases()));
};
dump();
logger.info({ pid: process.pid, stats: server.stats() }, 'dhcp runner ready');
process.on('SIGUSR2', () => {
  dump();
  logger.info({ stats: server.stats(), rss: process.memoryUsage().rss }, 'dhcp stats');
});
process.once('SIGTERM', () => {
  void server.close().then(() => {
    logger.info({ stats: server.stats() }, 'dhcp runner stopped');
    process.exit(0);
  });
});
