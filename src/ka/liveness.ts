// When is a silent node dead? A node reports STATS every second; a loaded machine can
// hold them back for seconds while the node still moves data (one run here declared
// a node dead after 6.2 s of silence with a 5 s limit while it was relaying). So the
// limit adapts (the configured floor, or k times the longest gap already seen between
// two of this node's frames, whichever is longer, up to a ceiling), and a node whose
// data position is seen to advance (its parent's or the source's counters for its link,
// or its own) within the limit is alive whatever its silence. A closed control
// connection is handled apart: that node is gone at once.

export interface LivenessPolicy {
  /** the configured floor: silent for less than this is never dead */
  deadAfterMs: number;
  /** the limit is at least this many times the longest gap seen between two frames of the node */
  gapFactor: number;
  /** and at most this */
  maxDeadAfterMs: number;
}

export const defaultLiveness: Omit<LivenessPolicy, 'deadAfterMs'> = { gapFactor: 3, maxDeadAfterMs: 60_000 };

/** What the coordinator knows of one node's signs of life. */
export interface LivenessState {
  /** last frame from the node, ms */
  lastSeen: number;
  /** longest gap seen between two of its frames, ms */
  longestGap: number;
  /** last time its data position was seen to advance, ms (0: never) */
  progressAt: number;
}

export function newLiveness(now: number): LivenessState {
  return { lastSeen: now, longestGap: 0, progressAt: 0 };
}

/** A frame arrived from the node. */
export function heard(s: LivenessState, now: number): void {
  s.longestGap = Math.max(s.longestGap, now - s.lastSeen);
  s.lastSeen = now;
}

/** Its data position was seen to advance (by itself, its parent or the source). */
export function progressed(s: LivenessState, now: number): void {
  s.progressAt = Math.max(s.progressAt, now);
}

/** How long this node may stay silent. */
export function silenceLimit(p: LivenessPolicy, s: LivenessState): number {
  return Math.max(p.deadAfterMs, Math.min(p.maxDeadAfterMs, p.gapFactor * s.longestGap));
}

export type Verdict = 'alive' | 'silent-but-moving' | 'dead';

export function judge(p: LivenessPolicy, s: LivenessState, now: number): Verdict {
  const limit = silenceLimit(p, s);
  if (now - s.lastSeen <= limit) return 'alive';
  if (s.progressAt > 0 && now - s.progressAt <= limit) return 'silent-but-moving';
  return 'dead';
}
