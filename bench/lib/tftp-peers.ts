// TFTP servers and clients run inside NetLab namespaces, for the TFTP integration
// tests and benchmarks: kaboot's own server (src/tftp/standalone.ts as a child
// process) and the peers tftpd-hpa, atftpd and dnsmasq, each on port 69 of its own
// namespace. atftpd conflicts with tftpd-hpa as a Debian package, so it is unpacked
// (apt-get download + dpkg -x) into a cache folder instead of being installed.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import type { NetLab } from '../../test/helpers/netns.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const atftpdCache = process.env.KABOOT_BENCH_CACHE ?? '/var/cache/kaboot-bench';

export type PeerName = 'kaboot' | 'tftpd-hpa' | 'atftpd' | 'dnsmasq';

export interface RunningTftpServer {
  name: PeerName;
  proc: ResultPromise;
  /** kaboot only: its stats (server and file cache) as printed on SIGUSR2 */
  stats?: () => Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export interface ServerOptions {
  ns: string;
  root: string;
  /** address the server listens on (kaboot, dnsmasq, atftpd); tftpd-hpa binds all */
  address: string;
  port?: number;
  /** taskset CPU list, e.g. "0" */
  cpu?: string;
  /** kaboot: extra arguments for standalone.ts */
  extraArgs?: string[];
}

function pinned(cpu: string | undefined, cmd: string[]): string[] {
  return cpu === undefined ? cmd : ['taskset', '-c', cpu, ...cmd];
}

async function waitForUdpPort(lab: NetLab, ns: string, port: number, proc: ResultPromise, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) throw new Error(`${what} exited (${proc.exitCode}): ${String(await proc.then((r) => r.stderr).catch(() => ''))}`);
    const { stdout } = await lab.exec(ns, ['ss', '-Hulpn', `sport = :${port}`], { reject: false });
    if (String(stdout ?? '').trim().length > 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not bind UDP port ${port}`);
}

async function stopProc(proc: ResultPromise): Promise<void> {
  if (proc.exitCode === null && proc.pid) {
    try { process.kill(proc.pid, 'SIGTERM'); } catch { /* gone */ }
    const t = setTimeout(() => { try { if (proc.pid) process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ } }, 3000);
    await proc.catch(() => undefined);
    clearTimeout(t);
  }
}

/** kaboot's TFTP server as a child process: node --import tsx src/tftp/standalone.ts. */
export async function startKaboot(lab: NetLab, o: ServerOptions): Promise<RunningTftpServer> {
  const port = o.port ?? 69;
  const args = ['--root', o.root, '--address', o.address, '--port', String(port), '--log-level', 'warn', ...(o.extraArgs ?? [])];
  const cmd = pinned(o.cpu, [process.execPath, '--import', 'tsx', join(repoRoot, 'src/tftp/standalone.ts'), ...args]);
  const proc = lab.spawn(o.ns, cmd, { cwd: repoRoot, buffer: false, stdout: 'pipe', stderr: 'inherit' });
  const lines: string[] = [];
  let waiting: ((line: string) => void) | null = null;
  let partial = '';
  proc.stdout?.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (line.startsWith('{"stats"') && waiting) waiting(line);
      else lines.push(line);
    }
  });
  for (let i = 0; i < 400 && !lines.some((l) => l.startsWith('{"ready"')); i++) {
    if (proc.exitCode !== null) throw new Error(`kaboot tftp exited early: ${lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!lines.some((l) => l.startsWith('{"ready"'))) throw new Error('kaboot tftp did not become ready');
  const stats = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no stats from kaboot tftp')), 5000);
      waiting = (line) => {
        clearTimeout(t);
        waiting = null;
        resolve(JSON.parse(line) as Record<string, unknown>);
      };
      if (proc.pid) process.kill(proc.pid, 'SIGUSR2');
    });
  return { name: 'kaboot', proc, stats, stop: () => stopProc(proc) };
}

export async function startTftpdHpa(lab: NetLab, o: ServerOptions): Promise<RunningTftpServer> {
  // -a fails (exit 66) in a namespace with only loopback (LAB-NOTES): bind all.
  const proc = lab.spawn(o.ns, pinned(o.cpu, ['/usr/sbin/in.tftpd', '-L', '-s', '-B', '65464', o.root]), { stdout: 'ignore', stderr: 'pipe' });
  await waitForUdpPort(lab, o.ns, 69, proc, 'in.tftpd');
  return { name: 'tftpd-hpa', proc, stop: () => stopProc(proc) };
}

/** atftpd unpacked from its .deb into the cache folder; downloaded on first use. */
export async function ensureAtftpd(): Promise<string> {
  const bin = join(atftpdCache, 'atftpd', 'usr', 'sbin', 'atftpd');
  if (existsSync(bin)) return bin;
  await mkdir(atftpdCache, { recursive: true });
  await execa('apt-get', ['download', 'atftpd'], { cwd: atftpdCache });
  const deb = (await readdir(atftpdCache)).find((f) => f.startsWith('atftpd_') && f.endsWith('.deb'));
  if (!deb) throw new Error('apt-get download atftpd gave no .deb');
  await execa('dpkg', ['-x', join(atftpdCache, deb), join(atftpdCache, 'atftpd')]);
  if (!existsSync(bin)) throw new Error(`no ${bin} after dpkg -x`);
  // dpkg -x installs no dependencies: add the shared libraries atftpd links against.
  const { stdout } = await execa('ldd', [bin]);
  if (stdout.includes('not found')) {
    await execa('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'libwrap0', 'libpcre2-8-0'], { env: { DEBIAN_FRONTEND: 'noninteractive' } });
  }
  return bin;
}

export async function startAtftpd(lab: NetLab, o: ServerOptions): Promise<RunningTftpServer> {
  const bin = await ensureAtftpd();
  const cmd = [bin, '--daemon', '--no-fork', '--user', 'root', '--group', 'root', '--port', '69', '--bind-address', o.address,
    '--maxthread', '200', '--logfile', '/dev/null', '--verbose=1', o.root];
  const proc = lab.spawn(o.ns, pinned(o.cpu, cmd), { stdout: 'ignore', stderr: 'pipe' });
  await waitForUdpPort(lab, o.ns, 69, proc, 'atftpd');
  return { name: 'atftpd', proc, stop: () => stopProc(proc) };
}

export async function startDnsmasq(lab: NetLab, o: ServerOptions): Promise<RunningTftpServer> {
  const cmd = ['/usr/sbin/dnsmasq', '--no-daemon', '--port=0', '--enable-tftp', `--tftp-root=${o.root}`, `--listen-address=${o.address}`,
    '--bind-interfaces', '--user=root', '--group=root', '--pid-file=', '--no-resolv', '--no-hosts', '--tftp-max=200', '--conf-file=/dev/null'];
  const proc = lab.spawn(o.ns, pinned(o.cpu, cmd), { stdout: 'ignore', stderr: 'pipe' });
  await waitForUdpPort(lab, o.ns, 69, proc, 'dnsmasq');
  return { name: 'dnsmasq', proc, stop: () => stopProc(proc) };
}

export function startPeer(name: PeerName, lab: NetLab, o: ServerOptions): Promise<RunningTftpServer> {
  switch (name) {
    case 'kaboot': return startKaboot(lab, o);
    case 'tftpd-hpa': return startTftpdHpa(lab, o);
    case 'atftpd': return startAtftpd(lab, o);
    case 'dnsmasq': return startDnsmasq(lab, o);
  }
}

export type ClientName = 'curl' | 'atftp' | 'tftp-hpa';

export interface FetchOptions {
  blksize?: number;
  windowsize?: number;
  cpu?: string;
  port?: number;
  /** tftp-hpa: transfer mode, default the client's own (netascii) */
  mode?: 'binary' | 'ascii';
}

/** The command line that fetches `file` from `host` into `out` with a real client. */
export function fetchCommand(client: ClientName, host: string, file: string, out: string, o: FetchOptions = {}): string[] {
  const port = o.port ?? 69;
  let cmd: string[];
  switch (client) {
    case 'curl':
      cmd = ['curl', '-sS', '--fail', '--path-as-is', '-o', out, ...(o.blksize ? ['--tftp-blksize', String(o.blksize)] : []), `tftp://${host}:${port}/${file}`];
      break;
    case 'atftp':
      cmd = ['atftp', ...(o.blksize ? ['--option', `blksize ${o.blksize}`] : []), ...(o.windowsize ? ['--option', `windowsize ${o.windowsize}`] : []),
        '-g', '-r', file, '-l', out, host, String(port)];
      break;
    case 'tftp-hpa':
      cmd = ['tftp', ...(o.mode ? ['-m', o.mode] : []), host, String(port), '-c', 'get', file, out];
      break;
  }
  return o.cpu === undefined ? cmd : ['taskset', '-c', o.cpu, ...cmd];
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}
