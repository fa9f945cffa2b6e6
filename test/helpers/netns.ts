// A throwaway network for one test: a "switch" namespace holding a bridge, and host
// namespaces each joined to it by a veth pair (eth0 inside the host); bridge() adds
// another segment, attach() gives a host one more interface on it. Names are unique
// to the run, and everything (namespaces, processes) is removed by destroy(), on exit
// and on signals, so a failing test leaves nothing behind.
import { execa, execaSync, type ResultPromise, type Options } from 'execa';
import { randomBytes } from 'node:crypto';

export interface Host {
  name: string;
  ns: string;
  /** address with prefix length, if one was given */
  cidr?: string;
  /** bare address */
  ip?: string;
  /** MAC of eth0 inside the host */
  mac: string;
}

const live = new Set<NetLab>();
let hooked = false;
function hookExit() {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const lab of live) lab.destroySync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      for (const lab of live) lab.destroySync();
      process.exit(130);
    });
  }
}

export class NetLab {
  readonly prefix: string;
  readonly switchNs: string;
  private readonly namespaces: string[] = [];
  private readonly procs: ResultPromise[] = [];
  private hostCount = 0;

  private constructor(tag: string) {
    this.prefix = `kb${tag.slice(0, 4)}${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
    this.switchNs = `${this.prefix}-sw`;
  }

  static async create(tag = 't'): Promise<NetLab> {
    hookExit();
    const lab = new NetLab(tag);
    live.add(lab);
    await lab.addNamespace(lab.switchNs);
    await lab.sh(lab.switchNs, 'ip link add br0 type bridge && ip link set br0 type bridge forward_delay 0 stp_state 0 && ip link set br0 up');
    return lab;
  }

  private async addNamespace(ns: string) {
    await execa('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    await execa('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  /** Another bridge (another L2 segment) in the switch namespace, e.g. 'br1'. */
  async bridge(name: string): Promise<string> {
    await this.sh(this.switchNs, `ip link add ${name} type bridge && ip link set ${name} type bridge forward_delay 0 stp_state 0 && ip link set ${name} up`);
    return name;
  }

  /** A host on a bridge (br0 unless `bridge` names one made by bridge()). `cidr` like 10.1.0.1/24; `mac` optional. */
  async host(name: string, opts: { cidr?: string; mac?: string; extraCidrs?: string[]; bridge?: string } = {}): Promise<Host> {
    const ns = `${this.prefix}-${name}`;
    await this.addNamespace(ns);
    const mac = await this.plug(ns, 'eth0', opts.bridge ?? 'br0', opts);
    return { name, ns, cidr: opts.cidr, ip: opts.cidr?.split('/')[0], mac };
  }

  /** One more interface (`ifname`) in an existing host, on another bridge; returns its MAC. */
  attach(host: Host, ifname: string, opts: { bridge: string; cidr?: string; mac?: string; extraCidrs?: string[] }): Promise<string> {
    return this.plug(host.ns, ifname, opts.bridge, opts);
  }

  private async plug(ns: string, ifname: string, bridge: string, opts: { cidr?: string; mac?: string; extraCidrs?: string[] }): Promise<string> {
    const idx = this.hostCount++;
    const outer = `v${idx}${randomBytes(2).toString('hex')}`;
    await execa('ip', ['link', 'add', outer, 'netns', this.switchNs, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns]);
    await this.sh(this.switchNs, `ip link set ${outer} master ${bridge} && ip link set ${outer} up`);
    if (opts.mac) await execa('ip', ['-n', ns, 'link', 'set', ifname, 'address', opts.mac]);
    await execa('ip', ['-n', ns, 'link', 'set', ifname, 'up']);
    for (const c of [opts.cidr, ...(opts.extraCidrs ?? [])]) {
      if (c) await execa('ip', ['-n', ns, 'addr', 'add', c, 'brd', '+', 'dev', ifname]);
    }
    const { stdout } = await execa('ip', ['netns', 'exec', ns, 'cat', `/sys/class/net/${ifname}/address`]);
    return stdout.trim();
  }

  /** Run a command inside a namespace and wait for it. */
  exec(ns: string, cmd: string[], opts: Options = {}) {
    return execa('ip', ['netns', 'exec', ns, ...cmd], opts);
  }

  sh(ns: string, script: string, opts: Options = {}) {
    return execa('ip', ['netns', 'exec', ns, 'bash', '-c', script], opts);
  }

  /** Start a long-running process inside a namespace; destroy() ends it. */
  spawn(ns: string, cmd: string[], opts: Options = {}): ResultPromise {
    const p = execa('ip', ['netns', 'exec', ns, ...cmd], { reject: false, ...opts });
    this.procs.push(p);
    return p;
  }

  async destroy(): Promise<void> {
    for (const p of this.procs) {
      if (p.exitCode === null && p.pid) {
        try { process.kill(p.pid, 'SIGKILL'); } catch { /* already gone */ }
      }
    }
    await Promise.allSettled(this.procs);
    this.destroySync();
  }

  destroySync(): void {
    for (const p of this.procs) {
      if (p.pid) {
        try { process.kill(p.pid, 'SIGKILL'); } catch { /* already gone */ }
      }
    }
    // Any process still inside our namespaces (started by a child) is ours too.
    for (const ns of this.namespaces) {
      try {
        const pids = execaSync('ip', ['netns', 'pids', ns], { reject: false }).stdout.split(/\s+/).filter(Boolean);
        for (const pid of pids) {
          try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
        }
      } catch { /* ns gone */ }
    }
    for (const ns of this.namespaces.splice(0).reverse()) execaSync('ip', ['netns', 'del', ns], { reject: false });
    live.delete(this);
  }
}
