// The lease table: who holds which address, in memory for the policy, on disk through
// the journal. Each subnet's pool holds exactly the addresses no lease holds; a lease
// that ran out is given back to its pool by sweep(), but keeps its client's name so
// that the client gets the same address again while nobody else took it.
import { LeaseJournal, type LeaseRecord, type LeaseState, type LeaseSync } from './lease-journal.js';
import { intToIp, ipToInt } from './pool.js';
import { subnetFor, type ServedSubnet } from './subnets.js';

export type { LeaseRecord, LeaseState, LeaseSync };

export interface Lease {
  addr: number;
  address: string;
  subnet: ServedSubnet;
  client: string;
  mac: string;
  hostname?: string;
  state: LeaseState | 'offered';
  /** ms since the epoch */
  start: number;
  expires: number;
}

/** What GET /api/leases shows. */
export interface LeaseView {
  address: string;
  subnet: string;
  client: string;
  mac: string;
  hostname?: string;
  state: LeaseState | 'offered';
  start: string;
  expires: string;
  active: boolean;
}

/** A lease holds its address (out of the pool) while offered, bound or declined, until sweep() sees it ran out. */
const holds = (l: Lease) => l.state === 'offered' || l.state === 'bound' || l.state === 'declined';

export function toRecord(l: Lease): LeaseRecord {
  return {
    address: l.address,
    subnet: l.subnet.cidr,
    client: l.client,
    mac: l.mac,
    ...(l.hostname ? { hostname: l.hostname } : {}),
    state: l.state === 'offered' ? 'expired' : l.state,
    start: l.start,
    expires: l.expires,
  };
}

export interface LeaseTableOptions {
  subnets: readonly ServedSubnet[];
  /** where the journal and snapshot live; none: memory only (unit tests) */
  stateDir?: string;
  sync?: LeaseSync;
  now?: number;
}

export class LeaseTable {
  private readonly byAddr = new Map<number, Lease>();
  /** key: subnet CIDR + ' ' + client */
  private readonly byClient = new Map<string, Lease>();
  private journal: LeaseJournal | undefined;
  readonly subnets: readonly ServedSubnet[];
  /** records on disk that belong to no configured subnet (kept out of the table) */
  readonly dropped: number = 0;
  readonly skippedLines: number = 0;

  constructor(opts: LeaseTableOptions) {
    this.subnets = opts.subnets;
    const now = opts.now ?? Date.now();
    if (opts.stateDir) {
      const loaded = LeaseJournal.load(opts.stateDir);
      let dropped = 0;
      for (const r of loaded.records) if (!this.restore(r, now)) dropped++;
      this.dropped = dropped;
      this.skippedLines = loaded.skipped;
      this.journal = LeaseJournal.open(opts.stateDir, opts.sync ?? 'write', () => this.records(), loaded.lines);
    }
  }

  private restore(r: LeaseRecord, now: number): boolean {
    const subnet = subnetFor(this.subnets, r.address);
    if (!subnet) return false;
    const addr = ipToInt(r.address);
    const l: Lease = { addr, address: r.address, subnet, client: r.client, mac: r.mac, state: r.state, start: r.start, expires: r.expires, ...(r.hostname ? { hostname: r.hostname } : {}) };
    if (holds(l) && l.expires <= now) l.state = 'expired';
    if (holds(l) && subnet.pool && !subnet.pool.take(addr) && subnet.pool.contains(addr)) return false;
    this.byAddr.set(addr, l);
    if (l.client) this.byClient.set(`${subnet.cidr} ${l.client}`, l);
    return true;
  }

  get(addr: number): Lease | undefined {
    return this.byAddr.get(addr);
  }

  forClient(subnet: ServedSubnet, client: string): Lease | undefined {
    const l = this.byClient.get(`${subnet.cidr} ${client}`);
    return l && l.client === client && l.subnet === subnet ? l : undefined;
  }

  isActive(l: Lease, now: number): boolean {
    return holds(l) && l.expires > now;
  }

  /**
   * May `client` have `addr` from the dynamic pool now? Its own lease (in any state),
   * a free address, or one whose holder ran out. Reservations are the policy's business.
   */
  availableFor(subnet: ServedSubnet, client: string, addr: number, now: number): boolean {
    if (!subnet.pool?.contains(addr)) return false;
    const l = this.byAddr.get(addr);
    if (l && l.client === client && l.state !== 'declined') return true;
    if (l && this.isActive(l, now)) return false;
    return subnet.pool.isFree(addr) || (l !== undefined && holds(l));
  }

  /** A free address from the pool, sweeping ran-out leases once when it looks empty. */
  allocate(subnet: ServedSubnet, now: number): number | undefined {
    const pool = subnet.pool;
    if (!pool) return undefined;
    let a = pool.takeAny();
    if (a === undefined && this.sweep(now) > 0) a = pool.takeAny();
    return a;
  }

  /** Hold `addr` for `client` (pool side and table side); returns the lease, not yet persisted. */
  private claim(subnet: ServedSubnet, client: string, mac: string, addr: number, now: number): Lease {
    subnet.pool?.take(addr);
    const key = `${subnet.cidr} ${client}`;
    const mine = this.byClient.get(key);
    if (mine && mine.addr !== addr && mine.subnet === subnet && holds(mine)) {
      // One address per client and subnet: the other one goes back.
      mine.state = 'expired';
      mine.expires = Math.min(mine.expires, now);
      subnet.pool?.release(mine.addr);
    }
    let l = this.byAddr.get(addr);
    if (l && l.client !== client) {
      const prevKey = `${l.subnet.cidr} ${l.client}`;
      if (this.byClient.get(prevKey) === l) this.byClient.delete(prevKey);
      l = undefined;
    }
    if (!l) {
      l = { addr, address: intToIp(addr), subnet, client, mac, state: 'offered', start: now, expires: now };
      this.byAddr.set(addr, l);
    }
    l.mac = mac;
    this.byClient.set(key, l);
    return l;
  }

  /** Hold an address for a client until `until` (not persisted: an offer is no promise). */
  offer(subnet: ServedSubnet, client: string, mac: string, addr: number, now: number, until: number, hostname?: string): Lease {
    const l = this.claim(subnet, client, mac, addr, now);
    if (l.state === 'bound' && l.expires > now) return l;
    l.state = 'offered';
    l.start = now;
    l.expires = until;
    if (hostname) l.hostname = hostname;
    return l;
  }

  /** Bind and persist; the promise resolves when the lease is in the file, and only then may the ACK go. */
  bind(subnet: ServedSubnet, client: string, mac: string, addr: number, now: number, expires: number, hostname?: string): Promise<void> {
    const l = this.claim(subnet, client, mac, addr, now);
    l.state = 'bound';
    l.start = now;
    l.expires = expires;
    if (hostname) l.hostname = hostname;
    else delete l.hostname;
    return this.persist(l);
  }

  /** Forget an offer (the client chose another server). */
  withdrawOffer(l: Lease, now: number): void {
    if (l.state !== 'offered') return;
    l.state = 'expired';
    l.expires = now;
    l.subnet.pool?.release(l.addr);
  }

  release(l: Lease, now: number): Promise<void> {
    l.state = 'released';
    l.expires = now;
    l.subnet.pool?.release(l.addr);
    return this.persist(l);
  }

  /** The address is in use by someone we do not know: keep it out of the pool until `until`. */
  decline(l: Lease, now: number, until: number): Promise<void> {
    const key = `${l.subnet.cidr} ${l.client}`;
    if (this.byClient.get(key) === l) this.byClient.delete(key);
    l.client = '';
    l.state = 'declined';
    l.start = now;
    l.expires = until;
    return this.persist(l);
  }

  /** Give addresses whose lease, offer or quarantine ran out back to their pools; returns how many. */
  sweep(now: number): number {
    let freed = 0;
    for (const l of this.byAddr.values()) {
      if (holds(l) && l.expires <= now) {
        l.state = 'expired';
        l.subnet.pool?.release(l.addr);
        freed++;
      }
    }
    return freed;
  }

  private persist(l: Lease): Promise<void> {
    return this.journal ? this.journal.append(toRecord(l)) : Promise.resolve();
  }

  /** Every lease as stored (for compaction). */
  records(): LeaseRecord[] {
    const out: LeaseRecord[] = [];
    for (const l of this.byAddr.values()) if (l.state !== 'offered' || l.client) out.push(toRecord(l));
    return out;
  }

  list(now = Date.now()): LeaseView[] {
    return [...this.byAddr.values()]
      .sort((a, b) => a.addr - b.addr)
      .map((l) => ({
        address: l.address,
        subnet: l.subnet.cidr,
        client: l.client,
        mac: l.mac,
        ...(l.hostname ? { hostname: l.hostname } : {}),
        state: l.state,
        start: new Date(l.start).toISOString(),
        expires: new Date(l.expires).toISOString(),
        active: this.isActive(l, now),
      }));
  }

  get size(): number {
    return this.byAddr.size;
  }

  journalStats(): { written: number; batches: number } | undefined {
    return this.journal ? { written: this.journal.written, batches: this.journal.batches } : undefined;
  }

  async close(): Promise<void> {
    await this.journal?.close();
    this.journal = undefined;
  }
}
