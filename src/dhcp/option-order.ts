// Which options a reply carries, and in which order: the "parameter request list" rule.
//
// RFC 2131 §4.3.1: the server returns the parameters the client asked for in option 55
// when it has a value for them, and omits the ones it cannot provide. RFC 2132 §9.8: the
// server MUST try to put the requested options in the order the client asked.
// isc-dhcpd builds a priority list (53, 54, 51 and 56 first, then the client's option 55,
// or a built-in default list when there is none) and stores only the options in that list,
// as many as fit; a config can override the client's list with its own
// dhcp-parameter-request-list. dnsmasq sends an option only when the client asks for it,
// apart from the few a lease needs, unless configured with dhcp-option-force, which its
// manual says PXELinux needs (208-211 are never requested). Kea has "always-send".
//
// kaboot's rule, in that spirit:
//   1. 53 (message type) first and 54 (server id) second: every client needs them.
//   2. Then the requested codes, in the client's order, when the reply has a value.
//   3. Then the always-sent codes (see alwaysSentOptions) not requested, in the reply's order.
//   4. Everything else is dropped, except 82 (relay agent information), which a server must
//      echo to the relay (RFC 3046 §2.2) and which goes last.
// A request without option 55 (BOOTP, some ROMs) gets every option the reply has.
import { Opt, type OptionMap } from './packet.js';

/** The options a lease needs, sent whether asked for or not. */
export const ALWAYS_SENT_LEASE: readonly number[] = [
  Opt.MessageType,
  Opt.ServerId,
  Opt.LeaseTime,
  Opt.RenewalTime,
  Opt.RebindingTime,
  Opt.SubnetMask,
  Opt.Routers,
  Opt.DnsServers,
];
/** PXE boot information: the point of a reply to a PXE client, never dropped (the PXE spec needs 60 "PXEClient" in it). */
export const ALWAYS_SENT_PXE: readonly number[] = [Opt.VendorClass, Opt.VendorSpecific, Opt.TftpServerName, Opt.BootfileName];
/** pxelinux reads these only when present, and Debian's pxelinux does not request them. */
export const ALWAYS_SENT_PXELINUX: readonly number[] = [
  Opt.PxelinuxMagic,
  Opt.PxelinuxConfigFile,
  Opt.PxelinuxPathPrefix,
  Opt.PxelinuxRebootTime,
];

export function alwaysSentOptions(kind: { pxe?: boolean; pxelinux?: boolean } = {}): number[] {
  return [...ALWAYS_SENT_LEASE, ...(kind.pxe ? ALWAYS_SENT_PXE : []), ...(kind.pxelinux ? ALWAYS_SENT_PXELINUX : [])];
}

/**
 * A new map with the reply's options chosen and ordered by the rule above.
 * `requested` is the client's option 55 (undefined when it sent none).
 */
export function orderReplyOptions(reply: OptionMap, requested: readonly number[] | undefined, always: readonly number[]): OptionMap {
  const out: OptionMap = new Map();
  const take = (code: number) => {
    const v = reply.get(code);
    if (v !== undefined && !out.has(code) && code !== Opt.RelayAgentInfo) out.set(code, v);
  };
  take(Opt.MessageType);
  take(Opt.ServerId);
  if (requested === undefined) {
    for (const code of reply.keys()) take(code);
  } else {
    for (const code of requested) take(code);
    const alwaysSet = new Set(always);
    for (const code of reply.keys()) if (alwaysSet.has(code)) take(code);
  }
  const relay = reply.get(Opt.RelayAgentInfo);
  if (relay !== undefined) out.set(Opt.RelayAgentInfo, relay);
  return out;
}
