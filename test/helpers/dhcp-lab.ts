// Shared pieces of the DHCP integration tests: a config file for kaboot, the DHCP
// server started as its own process inside a namespace (dhcp-runner.ts, or
// `kaboot serve` once it serves DHCP), and its JSON log read line by line.
import { writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tempDir } from './temp-dir.js';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { ResultPromise } from 'execa';
import type { NetLab } from './netns.js';
import type { DhcpStats } from '../../src/dhcp/server.js';

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** A kaboot.yaml with DHCP only (TFTP and HTTP off), state in `dir`. */
export function writeDhcpConfig(dir: string, dhcp: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  const file = join(dir, 'kaboot.yaml');
  const doc = {
    interfaces: ['eth0'],
    images_dir: join(dir, 'images'),
    state_dir: join(dir, 'state'),
    dhcp,
    tftp: { enabled: false },
    http: { enabled: false, port: 8080 },
    log: { level: 'info', pretty: false },
    ...extra,
  };
  writeFileSync(file, stringify(doc));
  return file;
}

export interface LogLine {
  msg?: string;
  level?: number;
  [k: string]: unknown;
}

export class RunningServer {
  readonly lines: LogLine[] = [];
  private listeners: ((l: LogLine) => void)[] = [];
  /** set for `kaboot serve`: stats and leases come from its HTTP API */
  api?: (path: string) => Promise<unknown>;
  constructor(readonly proc: ResultPromise) {
    let buf = '';
    proc.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let parsed: LogLine;
        try {
          parsed = JSON.parse(line) as LogLine;
        } catch {
          parsed = { msg: line };
        }
        this.lines.push(parsed);
        for (const l of this.listeners) l(parsed);
      }
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The first log line (from now, or already seen when `past`) that matches. */
  waitFor(pred: (l: LogLine) => boolean, timeoutMs = 20_000, past = true): Promise<LogLine> {
    const seen = past ? this.lines.find(pred) : undefined;
    if (seen) return Promise.resolve(seen);
    return new Promise((res, rej) => {
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((x) => x !== on);
        const stderr = String((this.proc as unknown as { stderr?: { read?: () => unknown } }).stderr?.read?.() ?? '');
        rej(new Error(`timed out waiting for a log line; last lines: ${JSON.stringify(this.lines.slice(-5))} ${stderr}`));
      }, timeoutMs);
      const on = (l: LogLine) => {
        if (!pred(l)) return;
        clearTimeout(timer);
        this.listeners = this.listeners.filter((x) => x !== on);
        res(l);
      };
      this.listeners.push(on);
      this.proc.once('exit', (code) => {
        clearTimeout(timer);
        rej(new Error(`server exited (${String(code)}) before the awaited log line; last lines: ${JSON.stringify(this.lines.slice(-5))}`));
      });
    });
  }

  /** The DHCP stats: from GET /api/health under `kaboot serve`, else by SIGUSR2 to the runner. */
  async stats(): Promise<DhcpStats & { rss?: number }> {
    if (this.api) return (await this.api('/api/health') as { dhcp: DhcpStats }).dhcp;
    const p = this.waitFor((l) => l.msg === 'dhcp stats', 10_000, false);
    process.kill(this.pid, 'SIGUSR2');
    const l = await p;
    return { ...(l.stats as DhcpStats), rss: l.rss as number };
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    try {
      process.kill(this.pid, signal);
    } catch { /* already gone */ }
  }
}

/** Start the DHCP server in `ns` and wait until it listens. */
export async function startDhcp(lab: NetLab, ns: string, configFile: string, opts: { leasesOut?: string } = {}): Promise<RunningServer> {
  const cmd = ['node', '--import', 'tsx', join(REPO, 'test/helpers/dhcp-runner.ts'), '--config', configFile];
  if (opts.leasesOut) cmd.push('--leases-out', opts.leasesOut);
  const proc = lab.spawn(ns, cmd, { cwd: REPO, stdout: 'pipe', stderr: 'pipe', buffer: false });
  const srv = new RunningServer(proc);
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await srv.waitFor((l) => l.msg === 'dhcp runner ready', 30_000);
  } catch (e) {
    throw new Error(`${(e as Error).message}\nstderr: ${stderr}`);
  }
  return srv;
}

/** A shell script for udhcpc / dhclient that appends its environment to `out` when a lease is bound. */
function envDumpScript(dir: string, name: string, out: string, boundWhen: string): string {
  const file = join(dir, name);
  writeFileSync(file, `#!/bin/sh\ncase "$1$reason" in ${boundWhen}) env | sort > ${out} ;; esac\nexit 0\n`, { mode: 0o755 });
  return file;
}

function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

export interface UdhcpcOptions {
  /** the client's interface in its namespace (default eth0) */
  iface?: string;
  /** DISCOVERs before giving up (-t; default 5) */
  tries?: number;
  /** seconds between DISCOVERs (-T; default 2) */
  wait?: number;
  /** options udhcpc should ask for by name (-O each), e.g. 'domain', 'hostname' */
  request?: string[];
  /** the whole run is stopped after this many seconds (default 40) */
  limit?: number;
}

export interface DhcpClientRun {
  exitCode: number | undefined;
  /** stdout and stderr interleaved, for assertion messages */
  output: string;
  /**
   * the environment the client handed its script when the lease was bound; undefined when it got none.
   * udhcpc: ip, router, dns, domain, serverid, lease, …; dhclient: reason, new_ip_address, new_routers, …
   */
  env: Record<string, string> | undefined;
}

/**
 * Run a DHCP client whose script (made here, `boundWhen` its case pattern on $1 or
 * $reason) dumps the lease's environment; the script and the dump live in a temporary
 * folder removed afterwards.
 */
async function runWithEnvDump(lab: NetLab, ns: string, boundWhen: string, command: (script: string) => string[]): Promise<DhcpClientRun> {
  const dir = tempDir('dhcp-client');
  try {
    const out = join(dir.path, 'lease.env');
    const script = envDumpScript(dir.path, 'script', out, boundWhen);
    const r = await lab.exec(ns, command(script), { reject: false, all: true });
    return { exitCode: r.exitCode, output: String(r.all), env: existsSync(out) ? parseEnv(readFileSync(out, 'utf8')) : undefined };
  } finally {
    dir.remove();
  }
}

/** busybox udhcpc in `ns`, in the foreground, once (-f -q -n): the lease it got. */
export function udhcpc(lab: NetLab, ns: string, opts: UdhcpcOptions = {}): Promise<DhcpClientRun> {
  return runWithEnvDump(lab, ns, 'bound|renew', (script) => {
    const cmd = ['timeout', String(opts.limit ?? 40), 'busybox', 'udhcpc', '-f', '-q', '-n', '-i', opts.iface ?? 'eth0',
      '-t', String(opts.tries ?? 5), '-T', String(opts.wait ?? 2), '-s', script];
    for (const o of opts.request ?? []) cmd.push('-O', o);
    return cmd;
  });
}

/** Where dhclient keeps its lease file (read again at its next start: INIT-REBOOT) and its pid file. */
export interface DhclientFiles {
  leases: string;
  pid: string;
}

/**
 * ISC dhclient in `ns`, once (-1), on eth0: the lease it got (BOUND, or REBOOT when its lease
 * file held one the server confirmed). It stays in the background holding the lease; stop
 * it with stopDhclient(files).
 */
export function dhclient(lab: NetLab, ns: string, files: DhclientFiles): Promise<DhcpClientRun> {
  return runWithEnvDump(lab, ns, 'BOUND|REBOOT', (script) => ['timeout', '30', 'dhclient', '-1', '-v', '-sf', script, '-lf', files.leases, '-pf', files.pid, 'eth0']);
}

/** SIGKILL the dhclient that dhclient() left in the background (ours: its pid file names it). */
export async function stopDhclient(files: DhclientFiles): Promise<void> {
  // dhclient writes its pid file after it forks into the background, so possibly after its parent exited.
  for (let i = 0; i < 100 && !existsSync(files.pid); i++) await new Promise((r) => setTimeout(r, 50));
  const pid = Number(readFileSync(files.pid, 'utf8').trim());
  if (pid > 0) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
}

/** Where `kaboot serve` is told to listen for HTTP in these tests (inside the namespace). */
export const SERVE_HTTP_PORT = 8080;

/**
 * Start `kaboot serve --config FILE` in `ns` (from source, through tsx, so no build is
 * needed and the code under test is the working tree's) and wait for "kaboot ready".
 * Its DHCP stats and leases are read from its HTTP API with curl inside the namespace.
 */
export async function startServe(lab: NetLab, ns: string, configFile: string): Promise<RunningServer> {
  const entry = `import(${JSON.stringify(join(REPO, 'src/cli/main.ts'))}).then((m) => m.main(['serve', '--config', ${JSON.stringify(configFile)}])).then((code) => process.exit(code))`;
  const proc = lab.spawn(ns, ['node', '--import', 'tsx', '--input-type=module', '-e', entry], { cwd: REPO, stdout: 'pipe', stderr: 'pipe', buffer: false });
  const srv = new RunningServer(proc);
  srv.api = async (path: string) => {
    const r = await lab.exec(ns, ['curl', '-sS', '--max-time', '10', `http://127.0.0.1:${SERVE_HTTP_PORT}${path}`], { reject: false });
    if (r.exitCode !== 0) throw new Error(`GET ${path}: ${String(r.stderr)}`);
    return JSON.parse(String(r.stdout)) as unknown;
  };
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await srv.waitFor((l) => l.msg === 'kaboot ready', 60_000);
  } catch (e) {
    throw new Error(`${(e as Error).message}\nstderr: ${stderr}`);
  }
  return srv;
}

/** writeDhcpConfig for `kaboot serve`: HTTP on (the API), TFTP off. */
export function writeServeConfig(dir: string, dhcp: Record<string, unknown>): string {
  return writeDhcpConfig(dir, dhcp, { http: { enabled: true, port: SERVE_HTTP_PORT, address: '0.0.0.0' } });
}

/** One reply test/helpers/dhcp-probe.ts heard, as it prints it. */
export interface ProbeReply {
  from: string;
  type: number;
  yiaddr: string;
  siaddr: string;
  file: string;
  serverId?: string;
  vendorClass?: string;
  bootfile?: string;
  discoveryControl?: number;
  pxelinuxMagic: boolean;
}

/** Run the scripted PXE/iPXE client (dhcp-probe.ts, its flags in `args`) in `ns`; the replies it heard. */
export async function probePxe(lab: NetLab, ns: string, args: string[]): Promise<{ exitCode: number | undefined; output: string; replies: ProbeReply[] }> {
  const r = await lab.exec(ns, ['node', '--import', 'tsx', join(REPO, 'test/helpers/dhcp-probe.ts'), ...args], { cwd: REPO, reject: false, all: true });
  const replies = r.exitCode === 0 ? String(r.stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as ProbeReply) : [];
  return { exitCode: r.exitCode, output: String(r.all), replies };
}
