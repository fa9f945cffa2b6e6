// Which node is slow. In a blocking chain every node ends up at the bottleneck's rate,
// so receive rates alone cannot name it. What differs is who waits on whom: a parent
// whose writes to a child stay blocked while that child is not itself held back by its
// own ring is waiting on the child's link or consumer. A node's capacity in a window
// is therefore bytes / (time its parent or its consumer was blocked on it, minus the
// time it was paused by its own children). A node whose capacity stays below a
// fraction of every other node's for `windows` windows in a row is slow: a slow node
// holds its parent back and starves its children, so nobody else is waited on.
//
// The source can always outrun a link, so it always waits on the node it feeds: a head
// behind a slow link and a head whose link is as fast as every other (a switch of equal
// ports) give the same figures. A node fed by the source is therefore compared only
// with the source's other children. And a move is a trial: if the chain does not speed
// up after it, the limit was shared, its rate becomes a ceiling, and a node whose
// capacity is close to it is not moved again.

import { SOURCE_ID } from './topology.js';

export interface NodeWindow {
  id: number;
  /** the node it receives from (0: the source) */
  parent: number;
  /** bytes the parent sent to it in the window, and how long the parent's writes waited on it */
  linkBytes: number;
  linkBlockedMs: number;
  /** bytes its local consumer took, and how long writes to the consumer waited */
  consumerBytes: number;
  consumerBlockedMs: number;
  /** time it stopped reading its parent because its own ring was full (held back by its children or consumer) */
  pausedMs: number;
  windowMs: number;
}

export interface SlowPolicy {
  /** slow when capacity < fraction × the lowest capacity among the nodes it is compared with */
  fraction: number;
  /** for this many windows in a row */
  windows: number;
  /** blocked less than this share of a window counts as unconstrained */
  unconstrainedShare: number;
}

export const defaultSlowPolicy: SlowPolicy = { fraction: 0.5, windows: 5, unconstrainedShare: 0.2 };

/** After a move, the chain must run this much faster than the moved node's capacity, or the limit was shared. */
const TRIAL_LIFT = 1.25;

/** Bytes/s a node could take in this window, Infinity when nothing waited on it, undefined when nothing flowed. */
export function capacity(w: NodeWindow, policy: SlowPolicy = defaultSlowPolicy): number | undefined {
  if (w.linkBytes === 0 && w.consumerBytes === 0) return undefined;
  const linkWait = Math.max(0, w.linkBlockedMs - w.pausedMs);
  const rates: number[] = [];
  if (w.linkBytes > 0) rates.push(linkWait < policy.unconstrainedShare * w.windowMs ? Infinity : (w.linkBytes * 1000) / linkWait);
  if (w.consumerBytes > 0) {
    rates.push(w.consumerBlockedMs < policy.unconstrainedShare * w.windowMs ? Infinity : (w.consumerBytes * 1000) / w.consumerBlockedMs);
  }
  return Math.min(...rates);
}

export function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  if (s.length % 2 === 1) return s[mid];
  const lo = s[mid - 1] as number;
  const hi = s[mid] as number;
  return lo === Infinity || hi === Infinity ? (lo === Infinity ? Infinity : hi) : (lo + hi) / 2;
}

/** The rate the chain moved at in a window: the median of what its nodes' parents sent them. */
export function chainRate(windows: NodeWindow[]): number | undefined {
  return median(windows.filter((w) => w.windowMs > 0).map((w) => (w.linkBytes * 1000) / w.windowMs));
}

/**
 * The capacity a node is measured against: the lowest among the others (a node fed by
 * the source: among the source's other children). Undefined when there is none.
 */
export function reference(self: NodeWindow, windows: NodeWindow[], caps: Map<number, number>): number | undefined {
  const others = windows.filter((w) => w.id !== self.id && caps.has(w.id) && (self.parent !== SOURCE_ID || w.parent === SOURCE_ID));
  return others.length ? Math.min(...others.map((w) => caps.get(w.id) as number)) : undefined;
}

/**
 * Keeps the count of consecutive slow windows per node; observe() returns the nodes that
 * just crossed the line, and takes the caller to move them: the next `windows` windows
 * judge the move, and nobody is named meanwhile.
 */
export class SlowNodeTracker {
  private streak = new Map<number, number>();
  private trial: { capacity: number; windowsLeft: number; rates: number[] } | null = null;
  /** bytes/s a move did not beat: a limit every node shares; 0 while none is known */
  ceiling = 0;
  constructor(private readonly policy: SlowPolicy = defaultSlowPolicy) {}

  /** `eligible`: nodes that may be moved (not already detached at the tail, still running). */
  observe(windows: NodeWindow[], eligible: (id: number) => boolean = () => true): { slow: number[]; capacities: Map<number, number> } {
    const caps = new Map<number, number>();
    for (const w of windows) {
      const c = capacity(w, this.policy);
      if (c !== undefined) caps.set(w.id, c);
    }
    if (this.trial) {
      this.judgeTrial(chainRate(windows.filter((w) => eligible(w.id))));
      return { slow: [], capacities: caps };
    }
    const slow: number[] = [];
    for (const w of windows) {
      const c = caps.get(w.id);
      const ref = reference(w, windows, caps);
      const belowOthers = c !== undefined && ref !== undefined && c < this.policy.fraction * ref;
      const belowCeiling = this.ceiling === 0 || (c !== undefined && c < this.policy.fraction * this.ceiling);
      const n = belowOthers && belowCeiling && eligible(w.id) ? (this.streak.get(w.id) ?? 0) + 1 : 0;
      this.streak.set(w.id, n);
      if (n === this.policy.windows) slow.push(w.id);
    }
    if (slow.length > 0) {
      this.trial = { capacity: Math.min(...slow.map((id) => caps.get(id) as number)), windowsLeft: this.policy.windows, rates: [] };
      this.streak.clear();
    }
    return { slow, capacities: caps };
  }

  private judgeTrial(rate: number | undefined): void {
    const trial = this.trial as NonNullable<typeof this.trial>;
    if (rate !== undefined) trial.rates.push(rate);
    if (--trial.windowsLeft > 0) return;
    const after = median(trial.rates);
    if (after === undefined || after < trial.capacity * TRIAL_LIFT) this.ceiling = Math.max(this.ceiling, trial.capacity);
    this.trial = null;
  }

  forget(id: number): void {
    this.streak.delete(id);
  }
}
