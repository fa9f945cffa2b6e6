// kaboot-agent: the node side of a kamethod boot. Runs in the initrd (started by /init);
// with --dry-run it runs on any Linux host up to "found the appliance, reported status".
import { readFileSync, existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseKernelCmdline, type AgentCmdline } from './cmdline.js';
import { detectFirmware } from './firmware.js';
import { afterFailedAttempt, defaultRetryPolicy, type RetryPolicy } from './retry-policy.js';
import { applianceCandidates, probeAppliance } from './appliance.js';
import { ApplianceLog } from './log-client.js';
import { consoleSink, runSteps, type Step, type LineSink } from './steps.js';
import { networkUp, type NetworkState } from './network.js';
import { execa } from 'execa';
import { deploySteps, withStatus, defaultPaths, type DeployState } from './deploy/index.js';
import { chrootEnv } from './deploy/types.js';
import { startExecPoller, type ExecPoller } from './exec-poller.js';

export const agentVersion = '0.1.0';

const usage = `usage: kaboot-agent [--dry-run] [--cmdline FILE] [--token T] [--no-dhcp]
  --dry-run          stop after finding the appliance and reporting status; never reboot
  --cmdline FILE     read the kernel command line from FILE (default /proc/cmdline)
  --token T          the deployment token (default: kaboot.token= on the command line)
  --no-dhcp          keep the addresses already set (a host, not a node)
  --sys DIR          sysfs (default /sys)   --busybox PATH   (default /bin/busybox or busybox)
  --run-dir DIR      where the DHCP script and leases go (default /run/kaboot-agent)
  --retry-delay-ms N the first pause between attempts (default ${defaultRetryPolicy.firstDelayMs})
`;

interface AgentState extends NetworkState {
  cmdline: AgentCmdline;
  appliance?: string;
  tried: string[];
}

const findAppliance: Step<AgentState> = {
  name: 'find-appliance',
  async run(ctx) {
    const s = ctx.state;
    const candidates = applianceCandidates(s.cmdline.server, s.leases);
    s.tried = candidates;
    for (const c of candidates) {
      const r = await probeAppliance(c);
      if (r.ok) {
        s.appliance = c;
        ctx.say(`found the kaboot appliance at ${c}`);
        return;
      }
      ctx.say(`${c}: ${r.reason}`);
    }
    throw new Error(candidates.length ? `no kaboot appliance answered at ${candidates.join(', ')}` : 'no appliance address: no kaboot.server= and no DHCP next-server');
  },
};

export async function agentMain(argv: string[]): Promise<number> {
  let a;
  try {
    a = parseArgs({
      args: argv,
      options: {
        'dry-run': { type: 'boolean', default: false },
        cmdline: { type: 'string', default: '/proc/cmdline' },
        token: { type: 'string' },
        'no-dhcp': { type: 'boolean', default: false },
        sys: { type: 'string', default: '/sys' },
        busybox: { type: 'string' },
        'run-dir': { type: 'string', default: '/run/kaboot-agent' },
        'retry-delay-ms': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (e) {
    process.stderr.write(`kaboot-agent: ${(e as Error).message}\n${usage}`);
    return 2;
  }
  if (a.help) {
    process.stdout.write(usage);
    return 0;
  }
  const dryRun = a['dry-run'];
  const cmdline = parseKernelCmdline(readFileSync(a.cmdline, 'utf8'));
  const policy: RetryPolicy = { ...defaultRetryPolicy, ...(a['retry-delay-ms'] ? { firstDelayMs: Number(a['retry-delay-ms']), maxDelayMs: Number(a['retry-delay-ms']) * 8 } : {}) };
  const log = new ApplianceLog();
  const sinks: LineSink[] = [consoleSink(), (l) => log.add(l)];
  const say = (line: string) => sinks.forEach((s) => s({ step: 'agent', stream: 'agent', line, ts: new Date().toISOString() }));
  say(`kaboot-agent ${agentVersion} (node ${process.version})${dryRun ? ', dry run' : ''}`);
  for (const p of cmdline.problems) say(`kernel command line: ${p}`);

  const state: AgentState = {
    cmdline,
    busybox: a.busybox ?? (existsSync('/bin/busybox') ? '/bin/busybox' : 'busybox'),
    runDir: a['run-dir'],
    sysRoot: a.sys,
    firmware: detectFirmware(a.sys),
    ...(cmdline.ip && cmdline.bootif ? { firmwareLease: { mac: cmdline.bootif, lease: cmdline.ip } } : {}),
    dhcp: !a['no-dhcp'],
    nics: [],
    leases: [],
    tried: [],
  };
  const network: Step<AgentState> = { name: 'network', run: (ctx) => networkUp(ctx) };

  for (let attempt = 1; ; attempt++) {
    const r = await runSteps([network, findAppliance], state, sinks);
    if (r.ok) break;
    const next = afterFailedAttempt(attempt, applianceCandidates(cmdline.server, state.leases), policy);
    say(next.message);
    const fw = state.firmwareLease;
    if (fw) {
      // the firmware's lease did not lead to the appliance (stale, or another server's): DHCP from now on
      const nic = state.nics.find((n) => n.mac === fw.mac);
      state.leases = state.leases.filter((l) => l.iface !== nic?.name);
      delete state.firmwareLease;
      say('the next attempt asks DHCP instead of using the boot firmware\'s lease');
    }
    if (next.kind === 'retry') {
      await new Promise((res) => setTimeout(res, next.delayMs));
      continue;
    }
    if (dryRun) {
      say('dry run: would reboot now');
      return 1;
    }
    await execa(state.busybox, ['sync'], { reject: false });
    await execa(state.busybox, ['reboot', '-f'], { reject: false });
    return 1;
  }

  const token = a.token ?? cmdline.token;
  const nic = (cmdline.bootif && state.nics.find((n) => n.mac === cmdline.bootif)) || state.nics.find((n) => state.leases[0]?.iface === n.name) || state.nics[0]!;
  if (!token) {
    say('no token (kaboot.token= on the kernel command line or --token): cannot report to the appliance');
    return 1;
  }
  log.connect({ base: state.appliance!, mac: nic.mac, token });
  try {
    await log.status('booting', 'find-appliance', `agent ${agentVersion} on ${nic.name} ${nic.mac}, ${state.firmware}`);
    say(`reported status booting to ${state.appliance} as ${nic.mac}`);
  } catch (e) {
    say(`could not report status: ${(e as Error).message}`);
    return 1;
  }
  if (dryRun) {
    const flushed = await log.flush();
    log.stop();
    if (!flushed) {
      process.stderr.write(`kaboot-agent: log not delivered: ${log.lastError}\n`);
      return 1;
    }
    return 0;
  }
  return deploy({ base: state.appliance!, mac: nic.mac, token, firmware: state.firmware, busybox: state.busybox, log, sinks, say });
}

interface DeployArgs {
  base: string;
  mac: string;
  token: string;
  firmware: AgentState['firmware'];
  busybox: string;
  log: ApplianceLog;
  sinks: LineSink[];
  say: (line: string) => void;
}

/**
 * The deploy steps. On success: unmounted, reported, rebooted (when the plan says so). On a
 * failure: reported failed with the step and the error, no reboot, and the agent stays up
 * with its log streaming and the remote-command poller running, so `kaboot exec` can look.
 */
async function deploy(a: DeployArgs): Promise<number> {
  let poller: ExecPoller | undefined;
  const startPoller = (): ExecPoller => (poller ??= startExecPoller({ base: a.base, mac: a.mac, token: a.token, sinks: a.sinks, env: chrootEnv, flush: () => a.log.flush() }));
  const s: DeployState = {
    appliance: a.base,
    applianceHost: new URL(a.base).hostname.replace(/^\[|\]$/g, ''),
    mac: a.mac,
    token: a.token,
    firmware: a.firmware,
    busybox: a.busybox,
    paths: defaultPaths,
    log: a.log,
    onPlan: () => void startPoller(),
    disks: [],
    targets: [],
    mounted: [],
  };
  const started = Date.now();
  const r = await runSteps(withStatus(deploySteps), s, a.sinks);
  if (r.ok) {
    a.say(`deployed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await a.log.flush();
    if (s.plan?.reboot) {
      a.say('rebooting');
      await a.log.flush();
      poller?.stop();
      await execa(a.busybox, ['sync'], { reject: false });
      await execa(a.busybox, ['reboot', '-f'], { reject: false });
      return 0;
    }
    a.say('the plan says no reboot: staying up for remote commands');
  } else {
    await a.log.status('failed', r.step, r.error.slice(0, 4000)).catch((e: unknown) => a.say(`could not report failed: ${(e as Error).message}`));
    a.say(`deploy failed at ${r.step}: not rebooting; the node stays up for \`kaboot exec\``);
  }
  await a.log.flush();
  // a node whose plan never came has no poller yet: start it, the appliance may still know the node
  await startPoller().done;
  return r.ok ? 0 : 3;
}
