// The typed form of a DHCPv4 message (RFC 2131 §2). The codec (codec.ts) turns bytes
// into this and back; options.ts holds the per-option codecs. Policy code works only
// with these types and never sees bytes.

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;

export enum MessageType {
  Discover = 1,
  Offer = 2,
  Request = 3,
  Decline = 4,
  Ack = 5,
  Nak = 6,
  Release = 7,
  Inform = 8,
}

/** Option codes kaboot understands. Others are kept raw and passed over. */
export enum Opt {
  Pad = 0,
  SubnetMask = 1,
  Routers = 3,
  DnsServers = 6,
  HostName = 12,
  DomainName = 15,
  InterfaceMtu = 26,
  BroadcastAddress = 28,
  NtpServers = 42,
  VendorSpecific = 43,
  RequestedIp = 50,
  LeaseTime = 51,
  Overload = 52,
  MessageType = 53,
  ServerId = 54,
  ParameterRequestList = 55,
  Message = 56,
  MaxMessageSize = 57,
  RenewalTime = 58,
  RebindingTime = 59,
  VendorClass = 60,
  ClientId = 61,
  TftpServerName = 66,
  BootfileName = 67,
  UserClass = 77,
  /** RFC 3046: a server echoes it unchanged in its reply to a relay */
  RelayAgentInfo = 82,
  ClientArch = 93,
  ClientNdi = 94,
  ClientUuid = 97,
  Ipxe = 175,
  PxelinuxMagic = 208,
  PxelinuxConfigFile = 209,
  PxelinuxPathPrefix = 210,
  PxelinuxRebootTime = 211,
  End = 255,
}

/**
 * Options as an ordered map from code to raw value bytes (already joined across
 * split instances per RFC 3396 and across the overloaded file/sname fields).
 * Typed access goes through options.ts (getOpt / setOpt), so an unknown code is
 * never lost and a known one is decoded only when asked for.
 */
export type OptionMap = Map<number, Buffer>;

export interface DhcpPacket {
  op: typeof BOOTREQUEST | typeof BOOTREPLY;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  /** dotted quads */
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** the 16-byte chaddr field as received */
  chaddr: Buffer;
  /** sname and file fields as text (empty when they carried overloaded options) */
  sname: string;
  file: string;
  options: OptionMap;
}

export const BROADCAST_FLAG = 0x8000;

/** lower-case colon MAC from chaddr (Ethernet, hlen 6) */
export function macOf(p: Pick<DhcpPacket, 'chaddr' | 'hlen'>): string {
  const n = Math.min(Math.max(p.hlen, 0), 16);
  return [...p.chaddr.subarray(0, n)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}
