// Who feeds whom: building the chain or tree, and re-planning it when a node dies,
// turns out slow, or joins late. Pure functions over a plain map; the coordinator
// applies the plans. The source is node 0 and is never removed.

export const SOURCE_ID = 0;

export interface Topology {
  /** child id → parent id, for every node in the relay (the source has no entry) */
  parent: Map<number, number>;
  /** nodes in relay order (chain order; breadth-first for a tree); the source excluded */
  order: number[];
  /** children per node, at most this many in the initial build */
  arity: number;
}

export interface Attachment {
  child: number;
  parent: number;
  mode: 'blocking' | 'detached';
}

/** Nodes joined, ordered the way the chain is built: by IPv4 address, then by id. */
export function relayOrder(nodes: ReadonlyArray<{ id: number; address: string }>): number[] {
  const key = (a: string) => {
    const m = /^(?:::ffff:)?(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
    return m ? ((Number(m[1]) * 256 + Number(m[2])) * 256 + Number(m[3])) * 256 + Number(m[4]) : Number.MAX_SAFE_INTEGER;
  };
  return [...nodes].sort((x, y) => key(x.address) - key(y.address) || x.id - y.id).map((n) => n.id);
}

/** A chain (arity 1) or a balanced tree of `arity` under the source, in `order`. */
export function buildTopology(order: readonly number[], arity = 1): Topology {
  if (!Number.isInteger(arity) || arity < 1) throw new RangeError(`arity must be a positive integer, got ${arity}`);
  const parent = new Map<number, number>();
  // position 0 is the source; position p's parent is floor((p-1)/arity)
  const at = [SOURCE_ID, ...order];
  for (let p = 1; p < at.length; p++) parent.set(at[p] as number, at[Math.floor((p - 1) / arity)] as number);
  return { parent, order: [...order], arity };
}

export function childrenOf(t: Topology, id: number): number[] {
  return t.order.filter((n) => t.parent.get(n) === id);
}

/** Chain from the source down to `id` (source first). */
export function pathTo(t: Topology, id: number): number[] {
  const path: number[] = [];
  let cur: number | undefined = id;
  const seen = new Set<number>();
  while (cur !== undefined && !seen.has(cur)) {
    seen.add(cur);
    path.unshift(cur);
    if (cur === SOURCE_ID) break;
    cur = t.parent.get(cur);
  }
  return path;
}

/**
 * Node `gone` left the relay (dead, or departed). Its children are re-attached: in a
 * chain, to its parent (the child resumes from the parent's ring, or the spool behind
 * it); in a tree, the first child takes `gone`'s place under its parent and the other
 * children hang under that first child. `serving` tells whether a node can still feed
 * others; a parent that cannot is skipped for its own nearest serving ancestor.
 */
export function planRemoval(t: Topology, gone: number, serving: (id: number) => boolean = () => true): { topology: Topology; attach: Attachment[] } {
  const parent = new Map(t.parent);
  const order = t.order.filter((n) => n !== gone);
  let up = parent.get(gone) ?? SOURCE_ID;
  while (up !== SOURCE_ID && !serving(up)) up = parent.get(up) ?? SOURCE_ID;
  parent.delete(gone);
  const kids = t.order.filter((n) => t.parent.get(n) === gone);
  const attach: Attachment[] = [];
  const [first, ...rest] = kids;
  if (first !== undefined) {
    parent.set(first, up);
    attach.push({ child: first, parent: up, mode: 'blocking' });
    for (const k of rest) {
      parent.set(k, first);
      attach.push({ child: k, parent: first, mode: 'blocking' });
    }
  }
  return { topology: { parent, order, arity: t.arity }, attach };
}

/** The node a newcomer hangs under: the last serving node in relay order (the chain's tail), or the source if none. */
export function tailOf(t: Topology, serving: (id: number) => boolean = () => true, exclude?: number): number {
  for (let i = t.order.length - 1; i >= 0; i--) {
    const n = t.order[i] as number;
    if (n !== exclude && serving(n)) return n;
  }
  return SOURCE_ID;
}

/** A node that joins after the start: it becomes the tail, detached (it never holds the others back) and catches up from the spool. */
export function planLateJoin(t: Topology, id: number, serving: (id: number) => boolean = () => true): { topology: Topology; attach: Attachment[] } {
  const tail = tailOf(t, serving);
  const parent = new Map(t.parent);
  parent.set(id, tail);
  return { topology: { parent, order: [...t.order, id], arity: t.arity }, attach: [{ child: id, parent: tail, mode: 'detached' }] };
}

/**
 * A slow node moves to the tail: its children take its place (as in planRemoval), and
 * it re-attaches, detached, under the tail of what remains, so it slows only itself.
 */
export function planMoveToTail(t: Topology, slow: number, serving: (id: number) => boolean = () => true): { topology: Topology; attach: Attachment[] } {
  const removed = planRemoval(t, slow, serving);
  const tail = tailOf(removed.topology, serving);
  const parent = new Map(removed.topology.parent);
  parent.set(slow, tail);
  return {
    topology: { parent, order: [...removed.topology.order, slow], arity: t.arity },
    attach: [...removed.attach, { child: slow, parent: tail, mode: 'detached' }],
  };
}

export type ResumeFrom = 'ring' | 'spool';

/** Where a re-attached child's bytes come from: its new parent's ring if it still holds `offset`, else the spool (through the parent). */
export function resumeSource(childOffset: number, parentRingStart: number): ResumeFrom {
  return childOffset >= parentRingStart ? 'ring' : 'spool';
}
