// Full DHCP (RFC 2131): what to answer a client on a subnet kaboot serves. Pure
// decisions over the lease table; the server does the sockets. A reply that grants a
// lease carries `commit`, the write that must finish before the reply may leave.
import type { BootConfig, DhcpConfig } from '../config/schema.js';
import { isBoot, type BootClient, type BootDecision } from '../boot/decide.js';
import { bootClientOf, isPxeVendor } from '../boot/client.js';
import { MessageType, Opt, macOf, type DhcpPacket } from './packet.js';
import { getOpt, setOpt } from './options.js';
import type { Lease, LeaseTable } from './leases.js';
import { intToIp, ipToInt } from './pool.js';
import { inSubnet, type ServedSubnet } from './subnets.js';
import { applyBoot, baseReply, clientKey, finishOptions, nakFlags, replyDestination, ZERO, type Reply } from './reply.js';

export const DEFAULT_LEASE_TIME = 43_200;
export const DEFAULT_MAX_LEASE_TIME = 86_400;
const MIN_LEASE_TIME = 60;

export interface FullPolicyContext {
  /** ms since the epoch */
  now: number;
  /** chosen by the server: by giaddr when relayed, else the receiving interface's subnet */
  subnet: ServedSubnet;
  /** our address on the receiving interface: option 54 */
  serverId: string;
  /** every address kaboot answers as (a REQUEST naming any of them is for us) */
  ourAddresses: ReadonlySet<string>;
  dhcp: Pick<DhcpConfig, 'authoritative' | 'offer_hold' | 'decline_quarantine'>;
  boot: BootConfig;
  leases: LeaseTable;
  /** next-server for boot files (subnet.next_server or the receiving interface) */
  nextServer: string;
  /** the boot decision for a network-booting client (decideBoot with the node registry) */
  decide: (client: BootClient) => BootDecision;
}

export type Outcome =
  | {
      kind: 'reply';
      reply: Reply;
      /** resolve before sending: the lease is in the file */
      commit?: Promise<void>;
      what: string;
      boot?: { client: BootClient; decision: BootDecision };
    }
  | { kind: 'silent'; reason: string; commit?: Promise<void>; exhausted?: boolean; boot?: { client: BootClient; decision: BootDecision } };

const silent = (reason: string, extra: { commit?: Promise<void>; exhausted?: boolean } = {}): Outcome => ({ kind: 'silent', reason, ...extra });

export interface LeaseTimes {
  lease: number;
  t1: number;
  t2: number;
}

/** The subnet's lease time, or the client's option 51 up to max_lease_time. */
export function leaseTimes(req: DhcpPacket, subnet: ServedSubnet): LeaseTimes {
  const dflt = subnet.config.lease_time ?? DEFAULT_LEASE_TIME;
  const max = subnet.config.max_lease_time ?? Math.max(dflt, DEFAULT_MAX_LEASE_TIME);
  const asked = getOpt(req.options, Opt.LeaseTime);
  const lease = asked === undefined ? Math.min(dflt, max) : Math.max(MIN_LEASE_TIME, Math.min(asked, max));
  return { lease, t1: Math.floor(lease / 2), t2: Math.floor((lease * 7) / 8) };
}

type Grant = { ok: true; addr: number; hostname?: string; known: boolean } | { ok: false; why: string; wrongSubnet?: boolean };

/** May this client have `address` on this subnet now? */
function grantable(req: DhcpPacket, ctx: FullPolicyContext, client: string, mac: string, address: string): Grant {
  const { subnet, leases, now } = ctx;
  const addr = ipToInt(address);
  if (!inSubnet(subnet, addr)) return { ok: false, why: `${address} is not in ${subnet.cidr}`, wrongSubnet: true };
  const resv = subnet.reservations.get(mac);
  if (resv) {
    return resv.address === address
      ? { ok: true, addr, known: true, ...(resv.hostname ? { hostname: resv.hostname } : {}) }
      : { ok: false, why: `${mac} is reserved ${resv.address}, not ${address}` };
  }
  if (subnet.reserved.has(addr)) return { ok: false, why: `${address} is reserved for another host` };
  if (!subnet.pool?.contains(addr)) return { ok: false, why: `${address} is not in the pool of ${subnet.cidr}` };
  if (!leases.availableFor(subnet, client, addr, now)) return { ok: false, why: `${address} is leased to another client` };
  const mine = leases.get(addr);
  return { ok: true, addr, known: mine !== undefined && mine.client === client };
}

const u32Cache = new Map<number, Buffer>();
/** Lease times repeat (a handful of values per config): encode each once. */
function u32(n: number): Buffer {
  let b = u32Cache.get(n);
  if (!b) {
    b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    if (u32Cache.size < 1024) u32Cache.set(n, b);
  }
  return b;
}

function leaseOptions(reply: DhcpPacket, ctx: FullPolicyContext, times: LeaseTimes | undefined, hostname?: string): void {
  if (times) {
    reply.options.set(Opt.LeaseTime, u32(times.lease));
    reply.options.set(Opt.RenewalTime, u32(times.t1));
    reply.options.set(Opt.RebindingTime, u32(times.t2));
  }
  for (const [code, v] of ctx.subnet.options) reply.options.set(code, v);
  if (hostname) setOpt(reply.options, Opt.HostName, hostname);
}

/** Boot information for a client that network-boots (PXE, HTTP boot, iPXE). */
function withBoot(req: DhcpPacket, reply: DhcpPacket, ctx: FullPolicyContext): { pxe: boolean; pxelinux: boolean; boot?: { client: BootClient; decision: BootDecision } } {
  // Most clients say nothing of network boot: skip the work for them.
  if (!req.options.has(Opt.VendorClass) && !req.options.has(Opt.UserClass) && !req.options.has(Opt.Ipxe)) return { pxe: false, pxelinux: false };
  const client = bootClientOf(req);
  if (!isPxeVendor(client.vendorClass) && !client.ipxe) return { pxe: false, pxelinux: false };
  const decision = ctx.decide(client);
  if (!isBoot(decision)) return { pxe: false, pxelinux: false, boot: { client, decision } };
  applyBoot(reply, decision, { nextServer: ctx.nextServer, boot: ctx.boot, pxeBypass: client.arch === 0 });
  return { pxe: true, pxelinux: decision.pxelinux, boot: { client, decision } };
}

function offerOrAck(req: DhcpPacket, ctx: FullPolicyContext, type: MessageType.Offer | MessageType.Ack, addr: number, hostname: string | undefined, times: LeaseTimes): Reply & { boot?: { client: BootClient; decision: BootDecision } } {
  const reply = baseReply(req, type, ctx.serverId);
  reply.yiaddr = intToIp(addr);
  if (req.ciaddr !== ZERO) reply.ciaddr = req.ciaddr;
  leaseOptions(reply, ctx, times, hostname);
  const b = withBoot(req, reply, ctx);
  finishOptions(reply, req, b);
  return { packet: reply, to: replyDestination(req, type), ...(b.boot ? { boot: b.boot } : {}) };
}

function nak(req: DhcpPacket, ctx: FullPolicyContext, why: string): Outcome {
  const reply = baseReply(req, MessageType.Nak, ctx.serverId);
  reply.flags = nakFlags(req);
  setOpt(reply.options, Opt.Message, why.slice(0, 250));
  finishOptions(reply, req, { pxe: false, pxelinux: false });
  return { kind: 'reply', reply: { packet: reply, to: replyDestination(req, MessageType.Nak) }, what: `NAK: ${why}` };
}

function discover(req: DhcpPacket, ctx: FullPolicyContext, client: string, mac: string): Outcome {
  const { subnet, leases, now } = ctx;
  const times = leaseTimes(req, subnet);
  let addr: number | undefined;
  let hostname: string | undefined;
  const resv = subnet.reservations.get(mac);
  if (resv) {
    addr = ipToInt(resv.address);
    hostname = resv.hostname;
  } else {
    const prev = leases.forClient(subnet, client);
    if (prev && prev.state !== 'declined' && leases.availableFor(subnet, client, prev.addr, now)) addr = prev.addr;
    const asked = getOpt(req.options, Opt.RequestedIp);
    if (addr === undefined && asked !== undefined) {
      const a = ipToInt(asked);
      if (inSubnet(subnet, a) && !subnet.reserved.has(a) && leases.availableFor(subnet, client, a, now)) addr = a;
    }
    if (addr === undefined) addr = leases.allocate(subnet, now);
    if (addr === undefined) return silent(`pool exhausted on ${subnet.cidr}`, { exhausted: true });
  }
  leases.offer(subnet, client, mac, addr, now, now + ctx.dhcp.offer_hold * 1000, hostname);
  const r = offerOrAck(req, ctx, MessageType.Offer, addr, hostname, times);
  return { kind: 'reply', reply: r, what: `OFFER ${intToIp(addr)}`, ...(r.boot ? { boot: r.boot } : {}) };
}

function ack(req: DhcpPacket, ctx: FullPolicyContext, client: string, mac: string, g: Extract<Grant, { ok: true }>, state: string): Outcome {
  const times = leaseTimes(req, ctx.subnet);
  const commit = ctx.leases.bind(ctx.subnet, client, mac, g.addr, ctx.now, ctx.now + times.lease * 1000, g.hostname);
  const r = offerOrAck(req, ctx, MessageType.Ack, g.addr, g.hostname, times);
  return { kind: 'reply', reply: r, commit, what: `ACK ${intToIp(g.addr)} (${state})`, ...(r.boot ? { boot: r.boot } : {}) };
}

function request(req: DhcpPacket, ctx: FullPolicyContext, client: string, mac: string): Outcome {
  const serverId = getOpt(req.options, Opt.ServerId);
  const asked = getOpt(req.options, Opt.RequestedIp);
  const { authoritative } = ctx.dhcp;

  if (serverId !== undefined) {
    // SELECTING: the client answers one OFFER.
    if (!ctx.ourAddresses.has(serverId)) {
      const offered = ctx.leases.forClient(ctx.subnet, client);
      if (offered?.state === 'offered') ctx.leases.withdrawOffer(offered, ctx.now);
      return silent(`client chose server ${serverId}`);
    }
    const want = asked ?? (req.ciaddr !== ZERO ? req.ciaddr : undefined);
    if (want === undefined) return nak(req, ctx, 'REQUEST names no address');
    const g = grantable(req, ctx, client, mac, want);
    return g.ok ? ack(req, ctx, client, mac, g, 'selecting') : nak(req, ctx, g.why);
  }

  // INIT-REBOOT (requested address, no ciaddr) or RENEWING/REBINDING (ciaddr).
  const initReboot = req.ciaddr === ZERO;
  const want = initReboot ? asked : req.ciaddr;
  const state = initReboot ? 'init-reboot' : 'renewing';
  if (want === undefined) return silent('REQUEST without server id, requested address or ciaddr');
  const g = grantable(req, ctx, client, mac, want);
  if (g.ok) {
    // Not authoritative: confirm only what we know we gave; someone else may own the rest.
    if (!g.known && !authoritative) return silent(`${state}: no record of ${client} at ${want} and not authoritative`);
    return ack(req, ctx, client, mac, g, state);
  }
  return authoritative ? nak(req, ctx, g.why) : silent(`${state}: ${g.why} (not authoritative)`);
}

function ownLease(req: DhcpPacket, ctx: FullPolicyContext, client: string, address: string | undefined): Lease | undefined {
  if (address === undefined || address === ZERO) return undefined;
  const l = ctx.leases.get(ipToInt(address));
  return l && l.client === client && l.subnet === ctx.subnet ? l : undefined;
}

function forUs(req: DhcpPacket, ctx: FullPolicyContext): boolean {
  const sid = getOpt(req.options, Opt.ServerId);
  return sid === undefined || ctx.ourAddresses.has(sid);
}

function inform(req: DhcpPacket, ctx: FullPolicyContext): Outcome {
  const reply = baseReply(req, MessageType.Ack, ctx.serverId);
  reply.ciaddr = req.ciaddr;
  leaseOptions(reply, ctx, undefined);
  const b = withBoot(req, reply, ctx);
  finishOptions(reply, req, b);
  return { kind: 'reply', reply: { packet: reply, to: replyDestination(req, MessageType.Ack) }, what: 'ACK (inform)', ...(b.boot ? { boot: b.boot } : {}) };
}

/** The answer to one request on a subnet kaboot serves in full mode. */
export function fullPolicy(req: DhcpPacket, ctx: FullPolicyContext): Outcome {
  const type = getOpt(req.options, Opt.MessageType);
  const mac = macOf(req);
  const client = clientKey(req, mac);
  switch (type) {
    case MessageType.Discover:
      return discover(req, ctx, client, mac);
    case MessageType.Request:
      return request(req, ctx, client, mac);
    case MessageType.Decline: {
      if (!forUs(req, ctx)) return silent('DECLINE for another server');
      const l = ownLease(req, ctx, client, getOpt(req.options, Opt.RequestedIp));
      if (!l) return silent('DECLINE of an address this client does not hold');
      const commit = ctx.leases.decline(l, ctx.now, ctx.now + ctx.dhcp.decline_quarantine * 1000);
      return silent(`DECLINE: ${l.address} quarantined for ${ctx.dhcp.decline_quarantine} s`, { commit });
    }
    case MessageType.Release: {
      if (!forUs(req, ctx)) return silent('RELEASE for another server');
      const l = ownLease(req, ctx, client, req.ciaddr);
      if (!l || l.state !== 'bound') return silent('RELEASE of an address this client does not hold');
      const commit = ctx.leases.release(l, ctx.now);
      return silent(`RELEASE: ${l.address} back in the pool`, { commit });
    }
    case MessageType.Inform:
      if (req.ciaddr === ZERO) return silent('INFORM without ciaddr');
      return inform(req, ctx);
    case undefined:
      return silent('no message type (BOOTP is not served)');
    default:
      return silent(`message type ${type} is not for a server`);
  }
}
