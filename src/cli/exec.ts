// kaboot exec NODE -- CMD...: runs a command on a node through its agent (the seed's
// "exec" prefix, authenticated), prints the command's lines from the node log and exits
// with the command's exit code.
import { parseArgs } from 'node:util';
import { UsageError } from './main.js';
import { ApiError, apiRequest, followLines, resolveNode, resolveTarget, splitLogLine } from '../deploy/api-client.js';

export const execUsage = `usage: kaboot exec NODE [--timeout S] [--server URL] [--token T | --config FILE] -- CMD [ARG...]
  NODE          a MAC, or a host name or address the registry knows
  --timeout S   the agent stops the command after S seconds
The command runs in the node's initrd (busybox); stage2's tools as "chroot /stage2 TOOL".`;

export async function execCommand(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const own = dash >= 0 ? argv.slice(0, dash) : argv;
  const cmd = dash >= 0 ? argv.slice(dash + 1) : [];
  const { values, positionals } = parseArgs({
    args: own,
    allowPositionals: true,
    options: { timeout: { type: 'string' }, server: { type: 'string' }, token: { type: 'string' }, config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(execUsage + '\n');
    return 0;
  }
  const [node, ...extra] = positionals;
  if (!node || extra.length || cmd.length === 0) throw new UsageError(execUsage);
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(Number.isInteger(timeout) && timeout >= 1)) throw new UsageError(`--timeout ${values.timeout}: expected whole seconds ≥ 1`);
  try {
    const t = resolveTarget(values);
    const mac = await resolveNode(t, node);
    const ac = new AbortController();
    process.once('SIGINT', () => ac.abort());
    // follow first: the followed log starts with the whole current log, so whatever the
    // timing no line of the command is missed; lines before the id is known wait in `early`
    let exitCode: number | undefined;
    let id: string | undefined;
    const early: string[] = [];
    const onLine = (raw: string): boolean => {
      if (id === undefined) {
        early.push(raw);
        return true;
      }
      const l = splitLogLine(raw);
      if (!l || l.step !== `exec:${id}`) return true;
      if (l.stream === 'status') {
        const m = /^exit=(-?\d+)$/.exec(l.text);
        if (m) {
          exitCode = Number(m[1]);
          return false;
        }
        return true;
      }
      // the command's stdout alone on stdout; its stderr and the agent's own lines ("$ cmd", "exit N") on stderr
      (l.stream === 'stdout' ? process.stdout : process.stderr).write(l.text + '\n');
      return true;
    };
    const following = followLines(t, `/api/nodes/${mac}/log?follow=1`, onLine, ac.signal);
    const { body } = await apiRequest<{ id: string }>(t, 'POST', `/api/nodes/${mac}/exec`, { argv: cmd, ...(timeout !== undefined ? { timeout_s: timeout } : {}) });
    id = body.id;
    for (const raw of early.splice(0)) if (!onLine(raw)) break;
    process.stderr.write(`kaboot exec: command ${id} queued for ${mac}\n`);
    await following;
    if (exitCode === undefined) {
      // the stream ended first (appliance restarted, Ctrl-C): ask for the state
      const { body: c } = await apiRequest<{ state: string; exit_code: number | null }>(t, 'GET', `/api/nodes/${mac}/commands/${id}`).catch(() => ({ body: { state: 'unknown', exit_code: null } }));
      if (c.exit_code === null) {
        process.stderr.write(`kaboot exec: command ${id} is ${c.state}; no exit code yet\n`);
        return 124;
      }
      exitCode = c.exit_code;
    }
    return exitCode < 0 ? 255 : exitCode;
  } catch (e) {
    if (e instanceof ApiError) {
      process.stderr.write(`kaboot exec: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
