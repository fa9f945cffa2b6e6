// Pieces every reply shares: the header copied from the request, where the reply goes
// (RFC 2131 §4.1), the boot information a network-booting client gets, and the final
// option choice and order. Pure: no sockets.
import type { BootConfig } from '../config/schema.js';
import type { BootDecision } from '../boot/decide.js';
import { BOOTREPLY, BROADCAST_FLAG, MessageType, Opt, type DhcpPacket } from './packet.js';
import { getOpt, setOpt } from './options.js';
import { alwaysSentOptions, orderReplyOptions } from './option-order.js';
import { DiscoveryControl } from './pxe-options.js';

export const CLIENT_PORT = 68;
export const SERVER_PORT = 67;
export const ZERO = '0.0.0.0';
export const LIMITED_BROADCAST = '255.255.255.255';

export interface Destination {
  address: string;
  port: number;
  /** sent to 255.255.255.255 out of the receiving interface */
  broadcast: boolean;
}

export interface Reply {
  packet: DhcpPacket;
  to: Destination;
}

/** A reply header for `req`: same xid, flags, chaddr and giaddr; options 53 and 54 set. */
export function baseReply(req: DhcpPacket, type: MessageType, serverId: string): DhcpPacket {
  const options = new Map<number, Buffer>();
  setOpt(options, Opt.MessageType, type);
  setOpt(options, Opt.ServerId, serverId);
  return {
    op: BOOTREPLY,
    htype: req.htype,
    hlen: req.hlen,
    hops: 0,
    xid: req.xid,
    secs: 0,
    flags: req.flags,
    ciaddr: ZERO,
    yiaddr: ZERO,
    siaddr: ZERO,
    giaddr: req.giaddr,
    chaddr: req.chaddr,
    sname: '',
    file: '',
    options,
  };
}

/**
 * RFC 2131 §4.1: to the relay (giaddr:67) when relayed; a NAK is broadcast; then to
 * ciaddr when the client has one; else broadcast (kaboot cannot unicast to an address
 * the client does not have yet without ARP injection, so it broadcasts as if asked to).
 */
export function replyDestination(req: DhcpPacket, type: MessageType): Destination {
  if (req.giaddr !== ZERO) return { address: req.giaddr, port: SERVER_PORT, broadcast: false };
  if (type !== MessageType.Nak && req.ciaddr !== ZERO) return { address: req.ciaddr, port: CLIENT_PORT, broadcast: false };
  return { address: LIMITED_BROADCAST, port: CLIENT_PORT, broadcast: true };
}

/** A relayed NAK carries the broadcast bit, so the relay broadcasts it on the client's link. */
export function nakFlags(req: DhcpPacket): number {
  return req.giaddr !== ZERO ? req.flags | BROADCAST_FLAG : req.flags;
}

export interface BootAddressing {
  /** next-server: siaddr and option 66 */
  nextServer: string;
  boot: BootConfig;
  /** option 43 with "use the boot file" for a PXE ROM (BIOS); UEFI ROMs go to port 4011 without it */
  pxeBypass: boolean;
}

/** Put a positive boot decision into a reply: siaddr, file, 60, 66, 67, 43, and pxelinux's 208-211 (209/210 when configured). */
export function applyBoot(reply: DhcpPacket, d: Extract<BootDecision, { file: string }>, a: BootAddressing): void {
  reply.siaddr = a.nextServer;
  if (Buffer.byteLength(d.file, 'latin1') < 128) reply.file = d.file;
  setOpt(reply.options, Opt.VendorClass, d.vendorClass);
  if (d.via === 'tftp') setOpt(reply.options, Opt.TftpServerName, a.nextServer);
  setOpt(reply.options, Opt.BootfileName, d.file);
  if (a.pxeBypass && d.firmware === 'pxe' && d.vendorClass === 'PXEClient') {
    setOpt(reply.options, Opt.VendorSpecific, { discoveryControl: DiscoveryControl.UseBootFile });
  }
  if (d.pxelinux) {
    setOpt(reply.options, Opt.PxelinuxMagic, true);
    setOpt(reply.options, Opt.PxelinuxRebootTime, a.boot.pxelinux.reboot_time);
    const { config_file, path_prefix } = a.boot.pxelinux;
    if (config_file !== undefined) setOpt(reply.options, Opt.PxelinuxConfigFile, config_file);
    if (path_prefix !== undefined) setOpt(reply.options, Opt.PxelinuxPathPrefix, path_prefix);
  }
}

/** Choose and order the reply's options by the client's option 55; echo option 82 to a relay. */
export function finishOptions(reply: DhcpPacket, req: DhcpPacket, kind: { pxe: boolean; pxelinux: boolean }): void {
  const relayInfo = req.options.get(Opt.RelayAgentInfo);
  if (relayInfo !== undefined && req.giaddr !== ZERO) reply.options.set(Opt.RelayAgentInfo, relayInfo);
  reply.options = orderReplyOptions(reply.options, getOpt(req.options, Opt.ParameterRequestList), alwaysSentOptions(kind));
}

/** Option 61 when present (hex), else the MAC: the key a lease belongs to. */
export function clientKey(req: DhcpPacket, mac: string): string {
  const id = req.options.get(Opt.ClientId);
  return id && id.length > 0 ? `id:${id.toString('hex')}` : `mac:${mac}`;
}
