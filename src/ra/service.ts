// ipv6_ra: quiet — on each served interface, answer IPv6 router solicitations with a
// router advertisement that configures nothing (router lifetime 0, M=0 O=0, no prefix),
// so that iPXE and UEFI firmware stop waiting for IPv6 router discovery (about 15 s per
// iPXE start on a link without a router). One such advertisement is also sent when it
// starts. The raw sockets are non-blocking and drained from a timer (the addon has no
// event-loop watcher), so an answer leaves within one poll interval.
import type { Logger } from '../log.js';
import { Icmp6Socket } from '../net/icmp6-socket.js';
import { encodeRouterAdvertisement, quietAdvertisement, ICMP6_ROUTER_SOLICITATION } from './codec.js';
import { ALL_NODES, ALL_ROUTERS, planReply, validateSolicitation } from './policy.js';

export interface RaInterface {
  name: string;
  /** lower-case colon-separated MAC, sent as the source link-layer address option */
  mac: string;
}

export interface QuietAdvertiserOptions {
  interfaces: readonly RaInterface[];
  logger: Logger;
  /** ms between drains of the sockets; default 100 */
  pollMs?: number;
}

export interface QuietAdvertiser {
  /** advertisements sent and solicitations seen, per interface */
  stats(): Record<string, { solicitations: number; ignored: number; advertisements: number; errors: number }>;
  close(): void;
}

const MAX_PER_POLL = 64;
const hasMac = (mac: string) => mac !== '00:00:00:00:00:00';

class InterfaceAdvertiser {
  readonly counts = { solicitations: 0, ignored: 0, advertisements: 0, errors: 0 };
  private lastMulticastAt: number | undefined;
  private pendingMulticast: NodeJS.Timeout | undefined;
  private readonly advertisement: Buffer;

  constructor(readonly iface: RaInterface, private readonly socket: Icmp6Socket, private readonly log: Logger) {
    this.advertisement = encodeRouterAdvertisement(quietAdvertisement(hasMac(iface.mac) ? iface.mac : undefined));
  }

  send(to: string): void {
    if (to === ALL_NODES) this.lastMulticastAt = Date.now();
    try {
      this.socket.send(to, this.advertisement);
      this.counts.advertisements++;
      this.log.debug({ iface: this.iface.name, to }, 'ipv6 ra: sent');
    } catch (e) {
      // No link-local address yet (DAD), no carrier, a neighbour that does not answer:
      // the next solicitation gets another try.
      this.counts.errors++;
      this.log.warn({ iface: this.iface.name, to, err: (e as Error).message }, 'ipv6 ra: send failed');
    }
  }

  drain(): void {
    for (let i = 0; i < MAX_PER_POLL; i++) {
      let rx;
      try {
        rx = this.socket.receive();
      } catch (e) {
        this.counts.errors++;
        this.log.warn({ iface: this.iface.name, err: (e as Error).message }, 'ipv6 ra: receive failed');
        return;
      }
      if (!rx) return;
      const verdict = validateSolicitation(rx);
      if (!verdict.accept) {
        this.counts.ignored++;
        this.log.debug({ iface: this.iface.name, from: rx.source, why: verdict.why }, 'ipv6 ra: solicitation ignored');
        continue;
      }
      this.counts.solicitations++;
      const now = Date.now();
      const plan = planReply(verdict.source, now, this.lastMulticastAt);
      if (plan.at <= now) this.send(plan.to);
      else this.pendingMulticast ??= setTimeout(() => {
        this.pendingMulticast = undefined;
        this.send(ALL_NODES);
      }, plan.at - now);
    }
  }

  close(): void {
    clearTimeout(this.pendingMulticast);
    this.socket.close();
  }
}

/**
 * Opens a raw ICMPv6 socket on every interface (throws Icmp6SocketError when one cannot
 * be opened, e.g. EPERM without CAP_NET_RAW) and starts answering.
 */
export function startQuietAdvertiser(opts: QuietAdvertiserOptions): QuietAdvertiser {
  const log = opts.logger.child({ svc: 'ipv6-ra' });
  const advertisers: InterfaceAdvertiser[] = [];
  try {
    for (const iface of opts.interfaces) {
      const socket = Icmp6Socket.open(iface.name, { types: [ICMP6_ROUTER_SOLICITATION], groups: [ALL_ROUTERS] });
      advertisers.push(new InterfaceAdvertiser(iface, socket, log));
    }
  } catch (e) {
    for (const a of advertisers) a.close();
    throw e;
  }
  for (const a of advertisers) {
    log.info({ iface: a.iface.name }, 'ipv6 ra: answering router solicitations with "no IPv6 service here" (router lifetime 0, M=0 O=0, no prefix)');
    a.send(ALL_NODES);
  }
  const timer = setInterval(() => {
    for (const a of advertisers) a.drain();
  }, opts.pollMs ?? 100);
  timer.unref();
  return {
    stats: () => Object.fromEntries(advertisers.map((a) => [a.iface.name, { ...a.counts }])),
    close() {
      clearInterval(timer);
      for (const a of advertisers) a.close();
    },
  };
}
