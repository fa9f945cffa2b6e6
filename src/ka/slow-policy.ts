// Which node is slow. In a blocking chain every node ends up at the bottleneck's rate,
// so receive rates alone cannot name it. What differs is who waits on whom: a parent
// whose writes to a child stay blocked while that child is not itself held back by its
// own ring is waiting on the child's link or consumer. A node's capacity in a window
// is therefore bytes / (time its parent or its consumer was blocked on it, minus the
// time it was paused by its own children). A node whose capacity stays below a
// fraction of the median capacity for `windows` windows in a row is slow.

export interface NodeWindow {
  id: number;
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
  /** slow when capacity < fraction × median capacity */
  fraction: number;
  /** for this many windows in a row */
  windows: number;
  /** blocked less than this share of a window counts as unconstrained */
  unconstrainedShare: number;
}

export const defaultSlowPolicy: SlowPolicy = { fraction: 0.5, windows: 5, unconstrainedShare: 0.2 };

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

/** Keeps the count of consecutive slow windows per node; observe() returns the nodes that just crossed the line. */
export class SlowNodeTracker {
  private streak = new Map<number, number>();
  constructor(private readonly policy: SlowPolicy = defaultSlowPolicy) {}

  /** `eligible`: nodes that may be moved (not already detached at the tail, still running). */
  observe(windows: NodeWindow[], eligible: (id: number) => boolean = () => true): { slow: number[]; capacities: Map<number, number> } {
    const caps = new Map<number, number>();
    for (const w of windows) {
      const c = capacity(w, this.policy);
      if (c !== undefined) caps.set(w.id, c);
    }
    const slow: number[] = [];
    const med = caps.size >= 2 ? median([...caps.values()]) : undefined;
    for (const w of windows) {
      const c = caps.get(w.id);
      const isSlow = med !== undefined && c !== undefined && eligible(w.id) && c < this.policy.fraction * med;
      const n = isSlow ? (this.streak.get(w.id) ?? 0) + 1 : 0;
      this.streak.set(w.id, n);
      if (n === this.policy.windows) slow.push(w.id);
    }
    return { slow, capacities: caps };
  }

  forget(id: number): void {
    this.streak.delete(id);
  }
}
