// ProxyDHCP (PXE specification 2.1 §2.2.3): beside a DHCP server that hands out the
// addresses, kaboot answers only network-boot clients, and only with boot information,
// never an address. On port 67 a DISCOVER gets an OFFER with yiaddr 0.0.0.0; on port
// 4011 a REQUEST (boot server discovery: UEFI ROMs, and iPXE after a proxy offer) gets
// an ACK sent back where it came from.
import type { BootConfig } from '../config/schema.js';
import { isBoot, type BootClient, type BootDecision } from '../boot/decide.js';
import { bootClientOf, isPxeVendor } from '../boot/client.js';
import { MessageType, Opt, type DhcpPacket } from './packet.js';
import { getOpt, setOpt } from './options.js';
import { applyBoot, baseReply, finishOptions, replyDestination, ZERO, type Destination, type Reply } from './reply.js';
import type { Outcome } from './full-policy.js';

export interface ProxyPolicyContext {
  /** our address on the receiving interface: option 54 */
  serverId: string;
  ourAddresses: ReadonlySet<string>;
  nextServer: string;
  boot: BootConfig;
  decide: (client: BootClient) => BootDecision;
  /** which socket the request came in on */
  port: 'dhcp' | 'pxe';
  /** where the datagram came from (the 4011 reply goes back there) */
  source: { address: string; port: number };
}

const silent = (reason: string): Outcome => ({ kind: 'silent', reason });
/** No boot file for this client: not answered, but the decision is logged. */
const noBoot = (client: BootClient, decision: BootDecision): Outcome => ({ kind: 'silent', reason: 'file' in decision ? '' : decision.none, boot: { client, decision } });

function bootReply(req: DhcpPacket, ctx: ProxyPolicyContext, type: MessageType.Offer | MessageType.Ack, client: BootClient, decision: Extract<BootDecision, { file: string }>): DhcpPacket {
  const reply = baseReply(req, type, ctx.serverId);
  if (type === MessageType.Ack) reply.ciaddr = req.ciaddr;
  // BIOS ROMs take the file from the proxy offer when told to skip discovery; UEFI ROMs
  // ignore that and ask on port 4011 instead, which a proxy offer without option 43 invites.
  applyBoot(reply, decision, { nextServer: ctx.nextServer, boot: ctx.boot, pxeBypass: type === MessageType.Offer && client.arch === 0 });
  const uuid = req.options.get(Opt.ClientUuid);
  if (uuid) reply.options.set(Opt.ClientUuid, uuid);
  if (type === MessageType.Ack) {
    const item = getOpt(req.options, Opt.VendorSpecific)?.bootItem;
    if (item && decision.vendorClass === 'PXEClient') setOpt(reply.options, Opt.VendorSpecific, { bootItem: item });
  }
  finishOptions(reply, req, { pxe: true, pxelinux: decision.pxelinux });
  if (uuid && !reply.options.has(Opt.ClientUuid)) reply.options.set(Opt.ClientUuid, uuid);
  return reply;
}

/** The answer to one request in proxy mode (and to port 4011 in both modes). */
export function proxyPolicy(req: DhcpPacket, ctx: ProxyPolicyContext): Outcome {
  const type = getOpt(req.options, Opt.MessageType);
  const client = bootClientOf(req);
  if (!isPxeVendor(client.vendorClass)) return silent('not a network-boot client (no PXEClient/HTTPClient vendor class)');
  if (ctx.port === 'pxe') {
    if (type !== MessageType.Request && type !== MessageType.Inform) return silent(`message type ${String(type)} on the PXE port`);
    const d = ctx.decide(client);
    if (!isBoot(d)) return noBoot(client, d);
    const packet = bootReply(req, ctx, MessageType.Ack, client, d);
    const to: Destination = ctx.source.address === ZERO
      ? replyDestination(req, MessageType.Ack)
      : { address: ctx.source.address, port: ctx.source.port, broadcast: false };
    return { kind: 'reply', reply: { packet, to }, what: 'ACK (boot server)', boot: { client, decision: d } };
  }

  if (type === MessageType.Discover) {
    const d = ctx.decide(client);
    if (!isBoot(d)) return noBoot(client, d);
    const packet = bootReply(req, ctx, MessageType.Offer, client, d);
    const reply: Reply = { packet, to: replyDestination(req, MessageType.Offer) };
    return { kind: 'reply', reply, what: 'proxy OFFER', boot: { client, decision: d } };
  }
  if (type === MessageType.Request) {
    // Some ROMs ask the proxy itself on port 67; a REQUEST for another server is not ours.
    const sid = getOpt(req.options, Opt.ServerId);
    if (sid === undefined || !ctx.ourAddresses.has(sid)) return silent('REQUEST for the address server');
    const d = ctx.decide(client);
    if (!isBoot(d)) return noBoot(client, d);
    const packet = bootReply(req, ctx, MessageType.Ack, client, d);
    return { kind: 'reply', reply: { packet, to: replyDestination(req, MessageType.Ack) }, what: 'proxy ACK', boot: { client, decision: d } };
  }
  return silent(`message type ${String(type)} is not answered in proxy mode`);
}
