// The DHCP listener: one socket per served interface on the DHCP port (and one on the
// PXE port 4011), each tied to its interface so a reply leaves where its request came
// in. It decodes, asks the policy (full or proxy), waits for the lease to be on disk,
// and sends. Bad datagrams are counted and logged, never thrown.
import type dgram from 'node:dgram';
import type { Logger } from 'pino';
import type { KabootConfig } from '../config/schema.js';
import type { NodeLookup } from '../nodes/registry.js';
import type { Ipv4Interface } from '../net/interfaces.js';
import { openDeviceSocket } from '../net/udp-socket.js';
import { decideBoot, describeArch, type BootClient, type BootDecision } from '../boot/decide.js';
import { decodePacket, encodePacket, maxReplySize } from './codec.js';
import { BOOTREQUEST, MessageType, Opt, macOf, type DhcpPacket } from './packet.js';
import { getOpt } from './options.js';
import { fullPolicy, type Outcome } from './full-policy.js';
import { proxyPolicy } from './proxy-policy.js';
import { LeaseTable, type LeaseView } from './leases.js';
import { buildSubnet, subnetForRequest, inSubnet, type ServedSubnet } from './subnets.js';
import { ipToInt } from './pool.js';
import { LIMITED_BROADCAST, ZERO } from './reply.js';

export interface DhcpServerOptions {
  config: KabootConfig;
  /** the interfaces to serve (selectInterfaces) */
  interfaces: readonly Ipv4Interface[];
  nodes: NodeLookup;
  logger: Logger;
  /** a lease table to use; by default one is opened in config.state_dir (full mode) */
  leases?: LeaseTable;
  /** how sockets are opened; default: openDeviceSocket (SO_BINDTODEVICE, SO_BROADCAST) */
  openSocket?: (ifname: string, port: number, address: string) => Promise<dgram.Socket>;
  /** clock, ms since the epoch */
  now?: () => number;
}

export interface DhcpStats {
  received: number;
  decodeErrors: number;
  /** requests no policy answered (not for us, not a PXE client, ...) */
  silent: number;
  offers: number;
  acks: number;
  naks: number;
  /** DISCOVERs left unanswered because the pool was empty */
  exhausted: number;
  sendErrors: number;
  /** lease writes that failed: their ACK was not sent */
  commitErrors: number;
  /** unicast replies dropped because too many were still waiting to leave (an unreachable destination stalls the socket) */
  sendDropped: number;
  leases: number;
  journal?: { written: number; batches: number };
}

export interface DhcpServer {
  close(): Promise<void>;
  stats(): DhcpStats;
  leases(): LeaseView[];
}

/** Unicast replies allowed to wait for the kernel at once, per socket; more are dropped (counted). */
const MAX_PENDING_SENDS = 4096;

interface Lane {
  sock: dgram.Socket;
  /** sends handed to the socket whose callback has not run yet */
  pending: number;
}

interface Outgoing {
  broadcast: Lane;
  unicast: Lane;
  pxe?: Lane;
}

interface Served {
  iface: Ipv4Interface;
  address: string;
  subnet?: ServedSubnet;
}

/** A log line at most once a second per kind, with the count of those not logged. */
function rateLimited(logger: Logger) {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (kind: string, fields: Record<string, unknown>, msg: string) => {
    if (!logger.isLevelEnabled('debug')) return;
    const now = Date.now();
    const s = last.get(kind);
    if (s && now - s.at < 1000) {
      s.suppressed++;
      return;
    }
    logger.debug({ ...fields, suppressed: s?.suppressed ?? 0 }, msg);
    last.set(kind, { at: now, suppressed: 0 });
  };
}

export async function startDhcpServer(opts: DhcpServerOptions): Promise<DhcpServer> {
  const { config, logger, nodes } = opts;
  const log = logger.child({ svc: 'dhcp' });
  const now = opts.now ?? Date.now;
  const dhcp = config.dhcp;
  const ourAddresses = new Set(opts.interfaces.flatMap((i) => i.addresses.map((a) => a.address)));
  const subnets = dhcp.mode === 'full' ? dhcp.subnets.map((s) => buildSubnet(s, ourAddresses)) : [];
  const leases = opts.leases ?? new LeaseTable({ subnets, ...(dhcp.mode === 'full' ? { stateDir: config.state_dir } : {}), sync: dhcp.lease_sync, now: now() });
  const served: Served[] = opts.interfaces.map((iface) => {
    const subnet =
      subnets.find((s) => s.config.interface === iface.name) ??
      subnets.find((s) => s.config.interface === undefined && iface.addresses.some((a) => inSubnet(s, ipToInt(a.address))));
    // The server id is our address inside the subnet served here, when the interface has several.
    const address = (subnet && iface.addresses.find((a) => inSubnet(subnet, ipToInt(a.address)))?.address) ?? iface.addresses[0]?.address ?? ZERO;
    return { iface, address, ...(subnet ? { subnet } : {}) };
  });
  const stats: DhcpStats = { received: 0, decodeErrors: 0, silent: 0, offers: 0, acks: 0, naks: 0, exhausted: 0, sendErrors: 0, commitErrors: 0, sendDropped: 0, leases: 0 };
  const debugLimited = rateLimited(log);
  const sockets: dgram.Socket[] = [];
  const open = opts.openSocket ?? ((ifname: string, port: number, address: string) => openDeviceSocket(ifname, port, { broadcast: true, address }));

  const decideFor = (nextServer: string) => (client: BootClient): BootDecision =>
    decideBoot({ client, node: nodes.get(client.mac), boot: config.boot, serverIp: nextServer, httpPort: config.http.port });

  const logBoot = (mode: string, o: Outcome) => {
    const b = o.boot;
    if (!b) return;
    const d = b.decision;
    log.info(
      {
        mac: b.client.mac,
        arch: b.client.arch,
        archName: describeArch(b.client.arch),
        firmware: d.firmware,
        mode,
        ...('file' in d ? { file: d.file, via: d.via, reason: d.reason } : { file: null, via: null, reason: d.none }),
        nextBoot: d.nextBoot,
      },
      'boot decision',
    );
  };

  /**
   * Replies leave by one of the interface's sockets, chosen by destination: broadcasts
   * by the broadcast socket, unicasts (relays, clients that have an address) by the
   * unicast one, port-4011 answers by the PXE socket. A unicast to a host that does
   * not answer ARP holds the socket's send buffer for seconds; kept apart, such a
   * stall never delays the broadcast OFFERs and ACKs that booting clients wait for.
   */
  const send = (out: Outgoing, kind: 'dhcp' | 'pxe', req: DhcpPacket, o: Extract<Outcome, { kind: 'reply' }>) => {
    let buf: Buffer;
    try {
      buf = encodePacket(o.reply.packet, { maxSize: maxReplySize(req) });
    } catch (e) {
      stats.sendErrors++;
      log.error({ err: e, what: o.what }, 'cannot encode reply');
      return;
    }
    const lane = kind === 'pxe' ? out.pxe : o.reply.to.broadcast ? out.broadcast : out.unicast;
    if (!lane) return;
    if (lane.pending >= MAX_PENDING_SENDS) {
      stats.sendDropped++;
      debugLimited('dropped', { to: o.reply.to.address, pending: lane.pending }, 'reply dropped: too many replies waiting to leave');
      return;
    }
    lane.pending++;
    lane.sock.send(buf, o.reply.to.port, o.reply.to.address, (err) => {
      lane.pending--;
      if (err) {
        stats.sendErrors++;
        debugLimited('send', { err: err.message, to: o.reply.to.address }, 'send failed');
      }
    });
    const t = getOpt(o.reply.packet.options, Opt.MessageType);
    if (t === MessageType.Offer) stats.offers++;
    else if (t === MessageType.Ack) stats.acks++;
    else if (t === MessageType.Nak) stats.naks++;
  };

  const handle = (s: Served, out: Outgoing, kind: 'dhcp' | 'pxe', msg: Buffer, rinfo: dgram.RemoteInfo) => {
    stats.received++;
    const decoded = decodePacket(msg);
    if (!decoded.ok) {
      stats.decodeErrors++;
      debugLimited('decode', { iface: s.iface.name, from: rinfo.address, code: decoded.error.code, error: decoded.error.message }, 'bad DHCP datagram');
      return;
    }
    const req = decoded.packet;
    if (req.op !== BOOTREQUEST) {
      stats.silent++;
      return;
    }
    let outcome: Outcome;
    let mode: string;
    const t = now();
    if (kind === 'pxe' && dhcp.mode === 'full' && !subnetForRequest(req.giaddr, s.subnet, subnets)) {
      // Full mode serves only the networks it was configured for, boot information included.
      stats.silent++;
      return;
    }
    if (kind === 'pxe' || dhcp.mode === 'proxy') {
      mode = kind === 'pxe' ? 'pxe' : 'proxy';
      const nextServer = s.subnet?.config.next_server ?? s.address;
      outcome = proxyPolicy(req, {
        serverId: s.address,
        ourAddresses,
        nextServer,
        boot: config.boot,
        decide: decideFor(nextServer),
        port: kind,
        source: { address: rinfo.address, port: rinfo.port },
      });
    } else {
      mode = 'full';
      const subnet = subnetForRequest(req.giaddr, s.subnet, subnets);
      if (!subnet) {
        stats.silent++;
        debugLimited('nosubnet', { iface: s.iface.name, giaddr: req.giaddr, mac: macOf(req) }, 'no configured subnet for this request: ignored');
        return;
      }
      const nextServer = subnet.config.next_server ?? s.address;
      outcome = fullPolicy(req, {
        now: t,
        subnet,
        serverId: s.address,
        ourAddresses,
        dhcp,
        boot: config.boot,
        leases,
        nextServer,
        decide: decideFor(nextServer),
      });
    }
    logBoot(mode, outcome);
    if (outcome.kind === 'silent') {
      stats.silent++;
      if (outcome.exhausted) {
        stats.exhausted++;
        const mac = macOf(req);
        if (stats.exhausted === 1 || stats.exhausted % 1000 === 0) log.warn({ mac, exhausted: stats.exhausted }, outcome.reason);
      } else {
        debugLimited('silent', { mode, mac: macOf(req), reason: outcome.reason }, 'not answered');
      }
      outcome.commit?.catch((e: unknown) => {
        stats.commitErrors++;
        log.error({ err: e }, 'lease write failed');
      });
      return;
    }
    const reply = outcome;
    if (reply.commit) {
      reply.commit.then(
        () => send(out, kind, req, reply),
        (e: unknown) => {
          stats.commitErrors++;
          log.error({ err: e, what: reply.what }, 'lease write failed: ACK not sent');
        },
      );
    } else {
      send(out, kind, req, reply);
    }
  };

  if (dhcp.mode === 'off') log.info('DHCP is off (dhcp.mode: off)');
  try {
    for (const s of dhcp.mode === 'off' ? [] : served) {
      // Clients without an address broadcast to 255.255.255.255; a socket bound to that
      // address receives only those, and sends from the interface's own address.
      const lane = async (port: number, address: string): Promise<Lane> => {
        const sock = await open(s.iface.name, port, address);
        sockets.push(sock);
        sock.on('error', (e) => log.error({ err: e, iface: s.iface.name, port, address }, 'DHCP socket error'));
        return { sock, pending: 0 };
      };
      const out: Outgoing = {
        broadcast: await lane(dhcp.port, LIMITED_BROADCAST),
        unicast: await lane(dhcp.port, s.address),
        ...(dhcp.proxy_port !== dhcp.port ? { pxe: await lane(dhcp.proxy_port, ZERO) } : {}),
      };
      const listen = (l: Lane | undefined, kind: 'dhcp' | 'pxe') =>
        l?.sock.on('message', (msg, rinfo) => {
          try {
            handle(s, out, kind, msg, rinfo);
          } catch (e) {
            // A bug, not bad input (that is a typed decode error): log it and live on.
            log.error({ err: e, iface: s.iface.name }, 'DHCP handler failed');
          }
        });
      listen(out.broadcast, 'dhcp');
      listen(out.unicast, 'dhcp');
      listen(out.pxe, 'pxe');
      if (dhcp.mode === 'full' && !s.subnet) log.warn({ iface: s.iface.name }, 'no configured subnet on this interface: requests there are ignored');
      log.info({ iface: s.iface.name, address: s.address, mode: dhcp.mode, subnet: s.subnet?.cidr, pool: s.subnet?.pool?.size }, 'DHCP listening');
    }
  } catch (e) {
    for (const sock of sockets) sock.close();
    if (!opts.leases) await leases.close();
    throw e;
  }

  const sweeper = setInterval(() => leases.sweep(now()), 5000);
  sweeper.unref();

  return {
    async close() {
      clearInterval(sweeper);
      await Promise.all(sockets.map((sock) => new Promise<void>((r) => sock.close(() => r()))));
      if (!opts.leases) await leases.close();
    },
    stats() {
      const j = leases.journalStats();
      return { ...stats, leases: leases.size, ...(j ? { journal: j } : {}) };
    },
    leases() {
      return leases.list(now());
    },
  };
}
