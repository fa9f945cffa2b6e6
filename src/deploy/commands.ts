// Remote commands (the seed's "exec" prefix of send_status.pl, authenticated): the API
// queues a command for a node, the node's agent long-polls for it, runs it, sends its
// lines to the node log (step exec:<id>) and posts its exit code. Kept in memory: a
// command outlives neither the appliance nor the node's boot.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { normalizeMac } from '../nodes/registry.js';

export type CommandState = 'queued' | 'running' | 'done';

export interface RemoteCommand {
  id: string;
  mac: string;
  argv: string[];
  timeout_s?: number;
  state: CommandState;
  exit_code: number | null;
  created: string;
  started?: string;
  finished?: string;
}

export class CommandError extends Error {
  constructor(readonly code: 'not-found' | 'conflict', message: string) {
    super(message);
  }
}

const MAX_KEPT = 1000;

export class CommandQueue {
  private readonly commands = new Map<string, RemoteCommand>();
  private readonly events = new EventEmitter();

  constructor() {
    this.events.setMaxListeners(0);
  }

  enqueue(mac: string, argv: string[], timeout_s?: number): RemoteCommand {
    const m = normalizeMac(mac)!;
    const c: RemoteCommand = { id: `c${randomBytes(4).toString('hex')}`, mac: m, argv, ...(timeout_s !== undefined ? { timeout_s } : {}), state: 'queued', exit_code: null, created: new Date().toISOString() };
    this.commands.set(c.id, c);
    this.trim();
    this.events.emit(m);
    return c;
  }

  get(mac: string, id: string): RemoteCommand | undefined {
    const c = this.commands.get(id);
    return c && c.mac === normalizeMac(mac) ? c : undefined;
  }

  /** Hands the oldest queued command of this node to its poller (now running), waiting up to waitMs for one. */
  async next(mac: string, waitMs: number, signal?: AbortSignal): Promise<RemoteCommand | undefined> {
    const m = normalizeMac(mac)!;
    const take = (): RemoteCommand | undefined => {
      for (const c of this.commands.values()) {
        if (c.mac === m && c.state === 'queued') {
          c.state = 'running';
          c.started = new Date().toISOString();
          return c;
        }
      }
      return undefined;
    };
    const now = take();
    if (now || waitMs <= 0) return now;
    return new Promise((resolve) => {
      const done = (c: RemoteCommand | undefined) => {
        clearTimeout(timer);
        this.events.off(m, onQueued);
        signal?.removeEventListener('abort', onAbort);
        resolve(c);
      };
      const onQueued = () => {
        const c = take();
        if (c) done(c);
      };
      const onAbort = () => done(undefined);
      const timer = setTimeout(() => done(undefined), waitMs);
      this.events.on(m, onQueued);
      signal?.addEventListener('abort', onAbort);
    });
  }

  finish(mac: string, id: string, exitCode: number): RemoteCommand {
    const c = this.get(mac, id);
    if (!c) throw new CommandError('not-found', `no command ${id} for ${mac}`);
    if (c.state === 'done') throw new CommandError('conflict', `command ${id} already finished with exit code ${c.exit_code}`);
    c.state = 'done';
    c.exit_code = exitCode;
    c.finished = new Date().toISOString();
    return c;
  }

  private trim(): void {
    if (this.commands.size <= MAX_KEPT) return;
    for (const [id, c] of this.commands) {
      if (this.commands.size <= MAX_KEPT) break;
      if (c.state === 'done') this.commands.delete(id);
    }
  }
}
