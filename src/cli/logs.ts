// kaboot logs NODE [-f]: a node's log as the appliance keeps it (the seed's status_node.pl).
import { parseArgs } from 'node:util';
import { UsageError } from './main.js';
import { ApiError, apiRequest, followLines, resolveNode, resolveTarget } from '../deploy/api-client.js';

export const logsUsage = `usage: kaboot logs NODE [-f] [--server URL] [--token T | --config FILE]
  NODE        a MAC, or a host name or address the registry knows
  -f          keep following the log as the node writes it`;

export async function logsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { follow: { type: 'boolean', short: 'f' }, server: { type: 'string' }, token: { type: 'string' }, config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(logsUsage + '\n');
    return 0;
  }
  const [node, ...extra] = positionals;
  if (!node || extra.length) throw new UsageError(logsUsage);
  try {
    const t = resolveTarget(values);
    const mac = await resolveNode(t, node);
    const path = `/api/nodes/${mac}/log`;
    if (!values.follow) {
      const { body } = await apiRequest<string>(t, 'GET', path);
      process.stdout.write(typeof body === 'string' ? body : JSON.stringify(body));
      return 0;
    }
    const ac = new AbortController();
    const stop = () => ac.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await followLines(t, `${path}?follow=1`, (line) => void process.stdout.write(line + '\n'), ac.signal);
    return 0;
  } catch (e) {
    if (e instanceof ApiError) {
      process.stderr.write(`kaboot logs: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
