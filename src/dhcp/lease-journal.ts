// Leases on disk: an append-only journal of JSON lines beside a snapshot that is
// replaced atomically when the journal grows. A lease is in the journal before its ACK
// leaves (kill -9 safe with 'write'; power-loss safe with 'fsync'). Appends that arrive
// while a write is in flight wait and go out together in the next one (group commit),
// so the rate stays high when every write costs an fsync.
import { closeSync, existsSync, fdatasync, ftruncateSync, mkdirSync, openSync, readFileSync, write, writeSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';

export type LeaseState = 'bound' | 'released' | 'expired' | 'declined';

/** One lease as stored: the last word on one address. */
export interface LeaseRecord {
  address: string;
  /** subnet (CIDR) the address belongs to */
  subnet: string;
  /** "id:<hex of option 61>" or "mac:<mac>" */
  client: string;
  mac: string;
  hostname?: string;
  state: LeaseState;
  /** ms since the epoch */
  start: number;
  expires: number;
}

export type LeaseSync = 'write' | 'fsync';

interface SnapshotFile {
  version: 1;
  leases: LeaseRecord[];
}

export interface LoadedLeases {
  records: LeaseRecord[];
  /** journal lines that could not be read (a torn last line after a crash) */
  skipped: number;
}

const STATES: ReadonlySet<string> = new Set(['bound', 'released', 'expired', 'declined']);

function validRecord(r: unknown): r is LeaseRecord {
  const o = r as Partial<LeaseRecord> | null;
  return (
    typeof o === 'object' && o !== null &&
    typeof o.address === 'string' && typeof o.subnet === 'string' && typeof o.client === 'string' &&
    typeof o.mac === 'string' && typeof o.state === 'string' && STATES.has(o.state) &&
    typeof o.start === 'number' && typeof o.expires === 'number'
  );
}

export class LeaseJournal {
  readonly snapshotFile: string;
  readonly journalFile: string;
  private fd: number;
  private pending: string[] = [];
  private waiting: (() => void)[] = [];
  private failing: ((e: Error) => void)[] = [];
  private inFlight = false;
  private scheduled = false;
  private closed = false;
  private linesInJournal = 0;
  /** lines written since start (for stats) */
  written = 0;
  /** write batches since start: written / batches is the mean group size */
  batches = 0;

  private constructor(
    dir: string,
    private readonly sync: LeaseSync,
    private readonly snapshot: () => LeaseRecord[],
    lines: number,
  ) {
    this.snapshotFile = join(dir, 'dhcp-leases.json');
    this.journalFile = join(dir, 'dhcp-leases.journal');
    this.fd = openSync(this.journalFile, 'a', 0o600);
    this.linesInJournal = lines;
  }

  /** Read what is on disk: the snapshot, then the journal on top (last record per address wins). */
  static load(dir: string): LoadedLeases & { lines: number } {
    const byAddress = new Map<string, LeaseRecord>();
    let skipped = 0;
    let lines = 0;
    const snapshotFile = join(dir, 'dhcp-leases.json');
    const journalFile = join(dir, 'dhcp-leases.journal');
    if (existsSync(snapshotFile)) {
      const parsed = JSON.parse(readFileSync(snapshotFile, 'utf8')) as SnapshotFile;
      if (parsed.version !== 1 || !Array.isArray(parsed.leases)) throw new Error(`${snapshotFile}: not a kaboot lease file (version 1)`);
      for (const r of parsed.leases) if (validRecord(r)) byAddress.set(r.address, r);
    }
    if (existsSync(journalFile)) {
      for (const line of readFileSync(journalFile, 'utf8').split('\n')) {
        if (!line) continue;
        lines++;
        try {
          const r: unknown = JSON.parse(line);
          if (validRecord(r)) byAddress.set(r.address, r);
          else skipped++;
        } catch {
          skipped++;
        }
      }
    }
    return { records: [...byAddress.values()], skipped, lines };
  }

  /**
   * Open the journal for appending. `snapshot` gives every current record, for
   * compaction. `lines` is how many lines the journal already holds (from load()).
   */
  static open(dir: string, sync: LeaseSync, snapshot: () => LeaseRecord[], lines = 0): LeaseJournal {
    mkdirSync(dir, { recursive: true });
    return new LeaseJournal(dir, sync, snapshot, lines);
  }

  /** Resolves once the record is in the file (and on disk with 'fsync'). */
  append(r: LeaseRecord): Promise<void> {
    if (this.closed) return Promise.reject(new Error('lease journal is closed'));
    this.pending.push(JSON.stringify(r));
    return new Promise<void>((resolve, reject) => {
      this.waiting.push(resolve);
      this.failing.push(reject);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.inFlight || this.scheduled) return;
    this.scheduled = true;
    // After the current I/O phase, so every datagram already read joins this batch.
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.inFlight || this.pending.length === 0 || this.closed) return;
    this.inFlight = true;
    const buf = Buffer.from(this.pending.join('\n') + '\n');
    const n = this.pending.length;
    const done = this.waiting;
    const fail = this.failing;
    this.pending = [];
    this.waiting = [];
    this.failing = [];
    const finish = (err: Error | null) => {
      this.inFlight = false;
      if (err) {
        for (const f of fail) f(err);
      } else {
        this.written += n;
        this.batches++;
        this.linesInJournal += n;
        for (const d of done) d();
      }
      if (!err && this.needsCompaction()) {
        this.compact().catch(() => undefined).finally(() => this.schedule());
      } else if (this.pending.length > 0) {
        this.schedule();
      }
    };
    if (this.sync === 'write') {
      // A write(2) into the page cache is a few microseconds: cheaper done here than
      // through the thread pool, and it survives kill -9 as soon as it returns.
      try {
        writeAll(this.fd, buf);
        finish(null);
      } catch (e) {
        finish(e as Error);
      }
      return;
    }
    writeAllAsync(this.fd, buf, (err) => {
      if (err) return finish(err);
      fdatasync(this.fd, (e) => finish(e));
    });
  }

  private needsCompaction(): boolean {
    return this.linesInJournal > 20_000 && this.linesInJournal > 4 * this.snapshotSizeHint();
  }

  private lastSnapshotSize = 0;
  private snapshotSizeHint(): number {
    return this.lastSnapshotSize;
  }

  /** Replace the snapshot with every current record and empty the journal. */
  async compact(): Promise<void> {
    if (this.closed) return;
    this.inFlight = true;
    try {
      const records = this.snapshot();
      const body: SnapshotFile = { version: 1, leases: records };
      await writeFileAtomic(this.snapshotFile, JSON.stringify(body) + '\n', { fsync: true });
      // Every journal line is now in the snapshot; replaying them again would change nothing.
      ftruncateSync(this.fd, 0);
      this.linesInJournal = 0;
      this.lastSnapshotSize = records.length;
    } finally {
      this.inFlight = false;
    }
  }

  /** Write what is pending, then close. */
  async close(): Promise<void> {
    while (this.inFlight || this.pending.length > 0) {
      if (!this.inFlight) this.flush();
      await new Promise((r) => setTimeout(r, 2));
    }
    this.closed = true;
    closeSync(this.fd);
  }
}

function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

function writeAllAsync(fd: number, buf: Buffer, cb: (err: Error | null) => void, off = 0): void {
  write(fd, buf, off, buf.length - off, null, (err, n) => {
    if (err) return cb(err);
    if (off + n < buf.length) return writeAllAsync(fd, buf, cb, off + n);
    cb(null);
  });
}
