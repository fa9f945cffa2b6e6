// Sends the agent's lines to the appliance (POST /api/nodes/:mac/log, x-ndjson) in batches.
// Lines made before the appliance is known wait in the queue, so the network step's own
// output reaches the node's log too. A failed post keeps its lines for the next try.
import { httpRequest } from './http.js';

export interface AgentLine {
  step: string;
  stream: 'stdout' | 'stderr' | 'status' | 'agent';
  line: string;
  ts: string;
}

export interface ApplianceTarget {
  base: string;
  mac: string;
  token: string;
}

export type NodeStatus = 'booting' | 'deploying' | 'deployed' | 'failed';

export class ApplianceLog {
  private queue: AgentLine[] = [];
  private target: ApplianceTarget | undefined;
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** lines dropped because the queue was full (oldest first) */
  dropped = 0;
  lastError: string | undefined;

  constructor(private readonly opts: { maxQueued?: number; batch?: number; intervalMs?: number } = {}) {}

  add(l: AgentLine): void {
    this.queue.push(l);
    const max = this.opts.maxQueued ?? 100_000;
    if (this.queue.length > max) {
      this.dropped += this.queue.length - max;
      this.queue.splice(0, this.queue.length - max);
    }
    this.schedule();
  }

  connect(t: ApplianceTarget): void {
    this.target = t;
    this.schedule();
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Sends everything queued; resolves when the queue is empty or a post failed. */
  async flush(): Promise<boolean> {
    while (this.flushing) await this.flushing;
    if (!this.target) return this.queue.length === 0;
    const run = this.sendAll(this.target);
    this.flushing = run;
    try {
      await run;
    } finally {
      this.flushing = undefined;
    }
    return this.queue.length === 0;
  }

  async status(state: NodeStatus, step: string, message?: string): Promise<void> {
    const t = this.target;
    if (!t) throw new Error('no appliance yet');
    const r = await httpRequest(`${t.base}/api/nodes/${t.mac}/status`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ state, step, ...(message ? { message } : {}) }),
      signal: AbortSignal.timeout(10_000),
    });
    if (!r.ok) throw new Error(`status ${state}: HTTP ${r.status} ${r.text()}`);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.timer || !this.target) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush().then((ok) => {
        if (!ok) this.schedule();
      });
    }, this.opts.intervalMs ?? 200);
    this.timer.unref();
  }

  private async sendAll(t: ApplianceTarget): Promise<void> {
    const batch = this.opts.batch ?? 500;
    while (this.queue.length > 0) {
      const chunk = this.queue.slice(0, batch);
      try {
        const r = await httpRequest(`${t.base}/api/nodes/${t.mac}/log`, {
          method: 'POST',
          headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/x-ndjson' },
          body: chunk.map((l) => JSON.stringify(l)).join('\n') + '\n',
          signal: AbortSignal.timeout(10_000),
        });
        if (!r.ok) {
          this.lastError = `HTTP ${r.status} ${r.text()}`;
          return;
        }
      } catch (e) {
        this.lastError = String(e);
        return;
      }
      this.queue.splice(0, chunk.length);
    }
  }
}
