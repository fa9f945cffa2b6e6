// kaboot serve: the appliance in one process.
import { parseArgs } from 'node:util';
import { mkdirSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import { startAppliance } from '../appliance.js';

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      pretty: { type: 'boolean' },
    },
  });
  const { config, file } = loadConfig(values.config);
  const logger = createLogger({ level: config.log.level, pretty: values.pretty ?? config.log.pretty });
  mkdirSync(config.images_dir, { recursive: true });
  mkdirSync(config.state_dir, { recursive: true });
  logger.info({ config: file ?? '(built-in safe default)', mode: config.dhcp.mode, images_dir: config.images_dir, state_dir: config.state_dir }, 'kaboot starting');

  const appliance = await startAppliance(config, logger);

  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      logger.info({ signal: sig }, 'kaboot stopping');
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await appliance.close();
  logger.flush?.();
  return 0;
}
