// kaboot deploy: the seed's ka-d.sh, talking to a running `kaboot serve` over HTTP.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { UsageError } from './main.js';
import { goldenReadOptions, bootloaderOption } from './golden-options.js';
import { ApiError, apiRequest, resolveTarget, type ApiTarget } from '../deploy/api-client.js';
import { MAC_PATTERN, type Deployment, type DeploymentRequest } from '../deploy/deployment.js';
import { formatDeployment } from '../deploy/summary.js';
import { hostname } from 'node:os';
import { liveImageName } from '../deploy/live.js';
import { runLiveGolden, LiveGoldenError } from '../deploy/live-golden.js';
import type { GoldenDiskOptions } from '../images/golden.js';
import type { BootloaderName } from '../images/manifest.js';
import { CaptureError } from '../images/squashfs.js';
import { BootCodeError } from '../images/boot-code.js';
import { DiskReadError } from '../images/desc-from-disk.js';
import { DescError } from '../images/desc.js';

export const deployUsage = `usage:
  kaboot deploy IMAGE (-n N | --mac MAC ...) [options]   start a deployment
  kaboot deploy --live --server URL --token-file F (-n N | --mac MAC ...) [--from / ...] [options]
                       on the golden: it is the source, streaming its file systems as the nodes want them
  kaboot deploy list | show ID | cancel ID

  -n N                 the next N nodes that PXE boot and that the registry does not know
  --mac MAC            a node by MAC (repeat)
  -x DIR               do not copy DIR (repeat; a file system's mount point: formatted empty)
  -X DRIVE             leave DRIVE alone (repeat)
  -m [DRIVE]           copy the golden's MBR boot code (446 bytes) as the image recorded it
                       (of golden drive DRIVE; to the node's DRIVE if -p names it, else its first drive)
  -M [DRIVE=]FILE      FILE (446 bytes) becomes the boot code of DRIVE's MBR
  -D [DRIVE:]N=FILE    partition N is copied byte for byte from FILE (a raw image on the appliance)
  -p DRIVE=DESCFILE    partition scheme of DRIVE (repeat); default: the image's, on the first disk
  -d SECONDS           delay between the release of two nodes at the end of a session
  -r KIND[:OPTIONS]    grub | extlinux | none, with initramfs options ("grub:--with=ata_piix")
  --session-wait S     a session starts S seconds after its first node joined (120)
  --hostname-pattern P host names, {n} = node number, {mac} = its MAC (node{n})
  --no-reboot          nodes stay up when done
  --wait               print the nodes' progress until the deployment ends; exit 1 if a node failed
  --server URL         kaboot serve's HTTP address (default http://127.0.0.1:<http.port of --config>)
  --token T | --config FILE   the API token, or the appliance config whose state_dir holds api-token
  --json               print JSON
  --token-file F       read the API token from F

  with --live (on the golden, read as kaboot image push reads it):
  --from DIR | MOUNT=DIR  the golden's trees (default /, with the file systems mounted below it)
  --desc FILE | --desc-from DEV   partition scheme (default: the disk holding /)
  --mbr FILE | --mbr-from DEV | --no-mbr   MBR boot code for -m (default: that disk's)
  --bootloader B       grub-pc | grub-efi | extlinux (default: guessed from the files)
  --name NAME          what the deployment calls the golden (live-<host name>)
  --keep NAME          also store what the golden sends as image NAME on the appliance`;

const common = {
  server: { type: 'string' },
  token: { type: 'string' },
  config: { type: 'string', short: 'c' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parseRaw(spec: string): NonNullable<DeploymentRequest['raw']>[number] {
  const m = /^(?:([a-z][a-z0-9]*):(\d+)|([a-z]+)(\d+)|(\d+))=(\/.*)$/.exec(spec);
  if (!m) throw new UsageError(`-D ${spec}: expected [DRIVE:]N=FILE with an absolute FILE on the appliance (-D sda:3=/srv/part3.img, -D 3=/srv/part3.img)`);
  const drive = m[1] ?? m[3];
  return { ...(drive ? { drive } : {}), partition: Number(m[2] ?? m[4] ?? m[5]), file: m[6]! };
}

function parseBootloader(spec: string): NonNullable<DeploymentRequest['bootloader']> {
  const m = /^(grub|extlinux|none)(?:[:\s]+(.*))?$/s.exec(spec.trim());
  if (!m) throw new UsageError(`-r ${spec}: expected grub, extlinux or none, optionally with initramfs options ("grub:--with=ata_piix")`);
  return { kind: m[1] as 'grub' | 'extlinux' | 'none', ...(m[2]?.trim() ? { options: m[2].trim() } : {}) };
}

function readOrUsage(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new UsageError(`${what}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
}

/** Options of kaboot deploy that take a value: what follows them is not a positional. */
const VALUE_OPTIONS = new Set(['-n', '--mac', '-x', '-X', '-M', '-D', '-p', '-d', '-r', '--session-wait', '--hostname-pattern', '--server', '--token', '--token-file', '--config', '-c', '--from', '--exclude', '--desc', '--desc-from', '--mbr', '--mbr-from', '--bootloader', '--name', '--keep']);
const DRIVE_RE = /^[a-z][a-z0-9]{0,31}$/;

/**
 * ka-d.sh's "-m [DRIVE]": parseArgs has no optional values, so "-m sda" becomes
 * "--copy-mbr=sda" here. The word after -m is its DRIVE only when it looks like a drive
 * name and the image is named elsewhere (kaboot deploy IMAGE -m sda, -m sda IMAGE);
 * "kaboot deploy -m IMAGE" keeps IMAGE as the image.
 */
export function splitCopyMbr(argv: string[], imageless = false): string[] {
  const positional = (i: number) => {
    const a = argv[i]!;
    return !a.startsWith('-') && !(i > 0 && VALUE_OPTIONS.has(argv[i - 1]!));
  };
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-m' && i + 1 < argv.length && positional(i + 1) && DRIVE_RE.test(argv[i + 1]!)) {
      const others = argv.some((_x, j) => j !== i + 1 && positional(j));
      if (imageless || others) {
        out.push(`--copy-mbr=${argv[i + 1]}`);
        i++;
        continue;
      }
    }
    out.push(a);
  }
  return out;
}

export interface LiveArgs {
  from: string[];
  disk: GoldenDiskOptions;
  bootloader?: BootloaderName;
  keep?: string;
}


export function requestFromArgs(argv: string[]): { request: DeploymentRequest; wait: boolean; target: { server?: string; token?: string; config?: string }; json: boolean; live?: LiveArgs } {
  const { values, positionals } = parseArgs({
    args: splitCopyMbr(argv, argv.includes('--live')),
    allowPositionals: true,
    options: {
      ...common,
      'token-file': { type: 'string' },
      live: { type: 'boolean' },
      name: { type: 'string' },
      ...goldenReadOptions,
      keep: { type: 'string' },
      'copy-mbr': { type: 'string' },
      n: { type: 'string', short: 'n' },
      mac: { type: 'string', multiple: true },
      x: { type: 'string', short: 'x', multiple: true },
      X: { type: 'string', short: 'X', multiple: true },
      m: { type: 'boolean', short: 'm' },
      M: { type: 'string', short: 'M' },
      D: { type: 'string', short: 'D', multiple: true },
      p: { type: 'string', short: 'p', multiple: true },
      d: { type: 'string', short: 'd' },
      r: { type: 'string', short: 'r' },
      'session-wait': { type: 'string' },
      'hostname-pattern': { type: 'string' },
      'no-reboot': { type: 'boolean' },
      wait: { type: 'boolean' },
    },
  });
  let image: string | undefined;
  let live: LiveArgs | undefined;
  const liveOnly = (['name', 'from', 'desc', 'desc-from', 'mbr', 'mbr-from', 'no-mbr', 'bootloader', 'keep'] as const).filter((k) => values[k] !== undefined);
  if (values.live) {
    if (positionals.length) throw new UsageError(`deploy --live: the golden is the source, no IMAGE (got ${JSON.stringify(positionals[0])}); --name NAME names it`);
    image = values.name ?? liveImageName(hostname());
    const bootloader = bootloaderOption(values.bootloader);
    live = {
      from: values.from?.length ? values.from : ['/'],
      disk: { desc: values.desc, 'desc-from': values['desc-from'], mbr: values.mbr, 'mbr-from': values['mbr-from'], 'no-mbr': values['no-mbr'] },
      ...(bootloader ? { bootloader } : {}),
      ...(values.keep ? { keep: values.keep } : {}),
    };
  } else {
    if (liveOnly.length) throw new UsageError(`deploy: --${liveOnly[0]} is for --live (run on the golden)`);
    [image] = positionals;
    if (!image) throw new UsageError(`deploy: which image?\n\n${deployUsage}`);
    if (positionals.length > 1) throw new UsageError(`deploy: unexpected ${JSON.stringify(positionals[1])}`);
  }
  const num = (v: string | undefined, what: string, min: number) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new UsageError(`${what} ${v}: expected a number ≥ ${min}`);
    return n;
  };
  const count = num(values.n, '-n', 1);
  if (count !== undefined && !Number.isInteger(count)) throw new UsageError(`-n ${values.n}: expected a whole number`);
  const request: DeploymentRequest = { image };
  if (count !== undefined) request.count = count;
  for (const m of values.mac ?? []) if (!new RegExp(MAC_PATTERN).test(m)) throw new UsageError(`--mac ${m}: not a MAC address (52:54:00:12:34:56)`);
  if (values.mac?.length) request.macs = values.mac;
  if (values.x?.length) request.exclude = values.x;
  if (values.X?.length) request.exclude_drives = values.X;
  if (values['copy-mbr'] !== undefined) {
    if (!DRIVE_RE.test(values['copy-mbr'])) throw new UsageError(`-m ${values['copy-mbr']}: not a drive name (sda, vda, nvme0n1)`);
    request.copy_mbr = values['copy-mbr'];
  } else if (values.m) request.copy_mbr = true;
  if (values.M) {
    const m = /^(?:([a-z][a-z0-9]*)=)?(.+)$/.exec(values.M)!;
    request.mbr = { ...(m[1] ? { drive: m[1] } : {}), base64: readOrUsage(m[2]!, '-M').toString('base64') };
  }
  if (values.D?.length) request.raw = values.D.map(parseRaw);
  if (values.p?.length) {
    request.descs = values.p.map((spec) => {
      const m = /^([a-z][a-z0-9]*)=(.+)$/.exec(spec);
      if (!m) throw new UsageError(`-p ${spec}: expected DRIVE=DESCFILE (-p sda=/root/desc)`);
      return { drive: m[1]!, desc: readOrUsage(m[2]!, `-p ${m[1]}`).toString('utf8') };
    });
  }
  const delay = num(values.d, '-d', 0);
  if (delay !== undefined) request.release_delay_s = delay;
  const sw = num(values['session-wait'], '--session-wait', 1);
  if (sw !== undefined) request.wait_s = sw;
  if (values.r) request.bootloader = parseBootloader(values.r);
  if (values['hostname-pattern']) request.hostname_pattern = values['hostname-pattern'];
  if (values['no-reboot']) request.reboot = false;
  let token = values.token;
  if (!token && values['token-file']) token = readOrUsage(values['token-file'], '--token-file').toString('utf8').trim();
  return { request, wait: !!values.wait, target: { server: values.server, token, config: values.config }, json: !!values.json, ...(live ? { live } : {}) };
}

async function waitForDeployment(t: ApiTarget, id: string, out: (s: string) => void): Promise<Deployment> {
  const seen = new Map<string, string>();
  for (;;) {
    const { body: d } = await apiRequest<Deployment>(t, 'GET', `/api/deployments/${id}`);
    for (const n of d.nodes) {
      const key = `${n.state} ${n.step ?? ''} ${n.message ?? ''}`;
      if (seen.get(n.mac) !== key) {
        seen.set(n.mac, key);
        out(`${new Date().toISOString()} ${n.mac} ${n.state}${n.step ? ` step=${n.step}` : ''}${n.message ? ` ${n.message}` : ''}\n`);
      }
    }
    if (d.state !== 'waiting' && d.state !== 'running') return d;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** kaboot deploy --live: on the golden, create the deployment and stream its file systems when asked. */
async function liveDeploy(t: ApiTarget, request: DeploymentRequest, live: LiveArgs, wait: boolean, json: boolean): Promise<number> {
  const say = (m: string) => process.stderr.write(`kaboot: ${m}\n`);
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const d = await runLiveGolden({ target: t, request, from: live.from, disk: live.disk, ...(live.bootloader ? { bootloader: live.bootloader } : {}), ...(live.keep ? { keep: live.keep } : {}), say, signal: ac.signal });
    if (json && !wait) process.stdout.write(JSON.stringify(d, null, 2) + '\n');
    if (!wait) return 0;
    const end = await waitForDeployment(t, d.id, (s) => process.stdout.write(s));
    process.stdout.write(json ? JSON.stringify(end, null, 2) + '\n' : formatDeployment(end));
    return end.state === 'done' ? 0 : 1;
  } catch (e) {
    if (e instanceof LiveGoldenError || e instanceof CaptureError || e instanceof BootCodeError || e instanceof DiskReadError) {
      say(`deploy --live: ${e.message}`);
      return 1;
    }
    if (e instanceof DescError) {
      say(`deploy --live: desc: ${e.message}`);
      return 65;
    }
    throw e;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

export async function deployCommand(argv: string[]): Promise<number> {
  const out = (s: string) => process.stdout.write(s);
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
    out(deployUsage + '\n');
    return sub === undefined ? 2 : 0;
  }
  try {
    if (sub === 'list' || sub === 'show' || sub === 'cancel') {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: common });
      const t = resolveTarget(values);
      if (sub === 'list') {
        const { body } = await apiRequest<{ deployments: Deployment[] }>(t, 'GET', '/api/deployments');
        if (values.json) out(JSON.stringify(body, null, 2) + '\n');
        else for (const d of body.deployments) out(`${d.id}  ${d.image.padEnd(20)} ${d.state.padEnd(9)} nodes ${d.nodes.filter((n) => n.state === 'deployed').length}/${d.want} deployed${d.message ? `  ${d.message}` : ''}\n`);
        return 0;
      }
      const id = positionals[0];
      if (!id) throw new UsageError(`deploy ${sub}: which deployment (ID)?`);
      const { body } = await apiRequest<Deployment>(t, sub === 'show' ? 'GET' : 'DELETE', `/api/deployments/${encodeURIComponent(id)}`);
      out(values.json ? JSON.stringify(body, null, 2) + '\n' : formatDeployment(body));
      return 0;
    }
    const { request, wait, target, json, live } = requestFromArgs(argv);
    const t = resolveTarget(target);
    if (live) return await liveDeploy(t, request, live, wait, json);
    const { body: d } = await apiRequest<Deployment>(t, 'POST', '/api/deployments', request);
    out(json ? JSON.stringify(d, null, 2) + '\n' : `deployment ${d.id} created: image ${d.image}, ${d.recruiting ? `the next ${d.want} unknown nodes that PXE boot` : `${d.nodes.length} nodes (${d.nodes.map((n) => n.mac).join(', ')})`}, sessions ${d.sessions.map((s) => s.name).join(', ')}\n`);
    if (!wait) return 0;
    const end = await waitForDeployment(t, d.id, out);
    out(formatDeployment(end));
    return end.state === 'done' ? 0 : 1;
  } catch (e) {
    if (e instanceof ApiError) {
      process.stderr.write(`kaboot deploy: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
