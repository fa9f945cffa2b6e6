// A throwaway network for one test: a "switch" namespace holding a bridge, and host
// namespaces each joined to it by a veth pair (eth0 inside the host). Names are unique
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

  /** A host on the bridge. `cidr` like 10.1.0.1/24; `mac` optional. */
  async host(name: string, opts: { cidr?: string; mac?: string; extraCidrs?: string[] } = {}): Promise<Host> {
    const ns = `${this.prefix}-${name}`;
    await this.addNamespace(ns);
    const idx = this.hostCount++;
    const outer = `v${idx}${randomBytes(2).toString('hex')}`;
    await execa('ip', ['link', 'add', outer, 'netns', this.switchNs, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await this.sh(this.switchNs, `ip link set ${outer} master br0 && ip link set ${outer} up`);
    if (opts.mac) await execa('ip', ['-n', ns, 'link', 'set', 'eth0', 'address', opts.mac]);
    await execa('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    for (const c of [opts.cidr, ...(opts.extraCidrs ?? [])]) {
      if (c) await execa('ip', ['-n', ns, 'addr', 'add', c, 'brd', '+', 'dev', 'eth0']);
    }
    const { stdout } = await execa('ip', ['netns', 'exec', ns, 'cat', '/sys/class/net/eth0/address']);
    return { name, ns, cidr: opts.cidr, ip: opts.cidr?.split('/')[0], mac: stdout.trim() };
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
