// When and where kaboot answers a router solicitation (RFC 4861 6.1.1, 6.2.6). Plain
// functions of the message and the clock, so they are tested without a network.
import { decodeRouterSolicitation, type NdDecodeError, type RouterSolicitation } from './codec.js';

export const ALL_NODES = 'ff02::1';
export const ALL_ROUTERS = 'ff02::2';
/** RFC 4861 MIN_DELAY_BETWEEN_RAS: multicast advertisements at most this often */
export const MIN_DELAY_BETWEEN_RAS_MS = 3000;

export interface ReceivedSolicitation {
  data: Buffer;
  source: string;
  /** IPv6 hop limit on arrival; -1 if unknown */
  hopLimit: number;
}

export type SolicitationVerdict =
  | { accept: true; solicitation: RouterSolicitation; source: string }
  | { accept: false; why: 'hop-limit' | 'unspecified-with-lla' | NdDecodeError['kind'] };

const isUnspecified = (a: string) => /^(0*:)*:?0*$/.test(a) || a === '::';

/** RFC 4861 6.1.1: hop limit 255, valid layout, and no link-layer option from the unspecified address. */
export function validateSolicitation(rx: ReceivedSolicitation): SolicitationVerdict {
  if (rx.hopLimit !== 255) return { accept: false, why: 'hop-limit' };
  const rs = decodeRouterSolicitation(rx.data);
  if (!rs.ok) return { accept: false, why: rs.error.kind };
  if (isUnspecified(rx.source) && rs.value.sourceLinkLayer !== undefined) return { accept: false, why: 'unspecified-with-lla' };
  return { accept: true, solicitation: rs.value, source: rx.source };
}

export type ReplyPlan = { to: string; at: number };

/**
 * Where and when to answer an accepted solicitation received at `now`. A solicitor
 * with an address gets a unicast answer at once (6.2.6 allows it, and no rate limit
 * applies, so many nodes booting together each get theirs); one without an address
 * (::) gets the multicast answer, no sooner than MIN_DELAY_BETWEEN_RAS after the last.
 */
export function planReply(source: string, now: number, lastMulticastAt: number | undefined): ReplyPlan {
  if (!isUnspecified(source)) return { to: source, at: now };
  const earliest = lastMulticastAt === undefined ? now : lastMulticastAt + MIN_DELAY_BETWEEN_RAS_MS;
  return { to: ALL_NODES, at: Math.max(now, earliest) };
}
