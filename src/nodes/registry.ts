// The node registry: every MAC kaboot knows, its state and what it boots next.
// DHCP, TFTP and HTTP read it (through NodeLookup); the API and the agent change it.
// It lives in one JSON file replaced atomically on every change.
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../util/atomic-write.js';

export type NextBoot = 'kamethod' | 'local';
export type NodeState = 'unknown' | 'booting' | 'deploying' | 'deployed' | 'failed';

export interface NodeRecord {
  /** lower-case, colon-separated */
  mac: string;
  next_boot: NextBoot;
  state: NodeState;
  hostname?: string;
  /** last address seen for this node (DHCP or HTTP) */
  ip?: string;
  /** the deployment (id) that holds this node: its kernel line carries that deployment's token */
  deployment?: string;
  /** ISO time of the last change */
  updated: string;
}

/** What the protocol servers need: a read-only look-up. */
export interface NodeLookup {
  get(mac: string): NodeRecord | undefined;
}

export function normalizeMac(mac: string): string | undefined {
  const m = mac.trim().toLowerCase().replace(/-/g, ':');
  return /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(m) ? m : undefined;
}

interface RegistryFile {
  version: 1;
  nodes: NodeRecord[];
}

export class NodeRegistry implements NodeLookup {
  private readonly nodes = new Map<string, NodeRecord>();
  readonly file: string;

  constructor(stateDir: string) {
    mkdirSync(stateDir, { recursive: true });
    this.file = join(stateDir, 'nodes.json');
    let text: string | undefined;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (text !== undefined) {
      const parsed = JSON.parse(text) as RegistryFile;
      if (parsed.version !== 1 || !Array.isArray(parsed.nodes)) throw new Error(`${this.file}: not a kaboot node registry (version 1)`);
      for (const n of parsed.nodes) {
        const mac = normalizeMac(n.mac);
        if (mac) this.nodes.set(mac, { ...n, mac });
      }
    }
  }

  get(mac: string): NodeRecord | undefined {
    const m = normalizeMac(mac);
    return m ? this.nodes.get(m) : undefined;
  }

  list(): NodeRecord[] {
    return [...this.nodes.values()].sort((a, b) => a.mac.localeCompare(b.mac));
  }

  /** Create or change a node; the file is replaced before this returns. */
  upsert(mac: string, change: Partial<Omit<NodeRecord, 'mac' | 'updated'>>): NodeRecord {
    const m = normalizeMac(mac);
    if (!m) throw new Error(`not a MAC address: ${JSON.stringify(mac)}`);
    const prev = this.nodes.get(m);
    const next: NodeRecord = {
      next_boot: 'local',
      state: 'unknown',
      ...prev,
      ...change,
      mac: m,
      updated: new Date().toISOString(),
    };
    this.nodes.set(m, next);
    this.persist();
    return next;
  }

  remove(mac: string): boolean {
    const m = normalizeMac(mac);
    if (!m || !this.nodes.delete(m)) return false;
    this.persist();
    return true;
  }

  private persist(): void {
    const body: RegistryFile = { version: 1, nodes: this.list() };
    writeFileAtomicSync(this.file, JSON.stringify(body, null, 2) + '\n');
  }
}
