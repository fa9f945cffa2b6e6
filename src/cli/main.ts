// kaboot's command line: one verb per file in src/cli/.
import { ConfigError } from '../config/errors.js';
import { InterfaceSelectionError } from '../net/errors.js';

const usage = `usage: kaboot <command> [options]

commands:
  serve [--config FILE]     run the appliance (DHCP/ProxyDHCP, TFTP, HTTP, API).
                            Without --config: the safe default (ProxyDHCP only,
                            never hands out an address; TFTP and HTTP from ./images)
  config check FILE         validate a config file and print it with defaults filled in
  image list|show|rm|capture|push  the image store (kaboot image help)
  desc from-disk|check|sfdisk      partition schemes (kaboot desc help)
  initrd build [--flavour generic|cloud] [--out DIR]  images/vmlinuz and images/all.rdz with the node agent
  stage2 build [--out DIR] [--cache DIR]            images/stage2.sqfs: the node's tools (sfdisk, mkfs, tar, grub)
  ka-server -s SESSION -n N [-e CMD|-f FILE]   run a KA session: send a stream down a relay chain
  ka-client -s SESSION [-e CMD]               join a KA session: receive, relay, check the SHA-256
  deploy IMAGE (-n N | --mac M ...) [...]     deploy an image to nodes (kaboot deploy help); list|show|cancel
  logs NODE [-f]                              a node's log on the appliance
  exec NODE -- CMD...                         run a command on a node through its agent
  help                      this text
`;

export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  try {
    switch (verb) {
      case 'serve':
        return await (await import('./serve.js')).serveCommand(rest);
      case 'config':
        return await (await import('./config.js')).configCommand(rest);
      case 'ka-server': return await (await import('./ka-server.js')).kaServerCommand(rest);
      case 'ka-client': return await (await import('./ka-client.js')).kaClientCommand(rest);
      case 'image': return await (await import('./image.js')).imageCommand(rest);
      case 'desc': return await (await import('./desc.js')).descCommand(rest);
      case 'initrd': return await (await import('./initrd.js')).initrdCommand(rest);
      case 'deploy': return await (await import('./deploy.js')).deployCommand(rest);
      case 'logs': return await (await import('./logs.js')).logsCommand(rest);
      case 'exec': return await (await import('./exec.js')).execCommand(rest);
      case 'stage2': return await (await import('./stage2.js')).stage2Command(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(usage);
        return verb === undefined ? 2 : 0;
      default:
        process.stderr.write(`kaboot: unknown command "${verb}"\n\n${usage}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof InterfaceSelectionError) {
      process.stderr.write(`kaboot: ${e.message}\n`);
      return 78;
    }
    if (e instanceof ConfigError) {
      process.stderr.write(`kaboot: config error: ${e.message}\n`);
      return 78; // EX_CONFIG
    }
    if (e instanceof UsageError) {
      process.stderr.write(`kaboot: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

export class UsageError extends Error {}
