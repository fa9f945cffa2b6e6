// The configured subnets in the form the DHCP policy works with: integer networks,
// a pool per range, reservations by MAC, and the interface each one is served on.
import type { SubnetConfig } from '../config/schema.js';
import { AddressPool, intToIp, ipToInt } from './pool.js';
import { Opt, type OptionMap } from './packet.js';
import { setOpt } from './options.js';

export interface Reservation {
  mac: string;
  address: string;
  hostname?: string;
}

export interface ServedSubnet {
  /** the configured CIDR, e.g. 10.0.0.0/24 */
  cidr: string;
  network: number;
  prefixLength: number;
  mask: string;
  broadcast: string;
  config: SubnetConfig;
  /** undefined when the subnet has only reservations */
  pool?: AddressPool;
  /** by lower-case colon MAC */
  reservations: Map<string, Reservation>;
  /** reserved addresses (ints), never handed out dynamically */
  reserved: Set<number>;
  /** the subnet's own options (1, 3, 6, 15, 28), encoded once */
  options: OptionMap;
}

const maskOf = (len: number) => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);

export function inSubnet(s: Pick<ServedSubnet, 'network' | 'prefixLength'>, addr: number): boolean {
  return ((addr & maskOf(s.prefixLength)) >>> 0) === s.network;
}

/** `exclude`: addresses never to hand out (kaboot's own addresses, for one). */
export function buildSubnet(config: SubnetConfig, exclude: Iterable<string> = []): ServedSubnet {
  const [net, lenText] = config.subnet.split('/');
  const prefixLength = Number(lenText);
  const mask = maskOf(prefixLength);
  const network = (ipToInt(net!) & mask) >>> 0;
  const bcast = (network | (~mask >>> 0)) >>> 0;
  const reservations = new Map<string, Reservation>();
  const reserved = new Set<number>();
  for (const h of config.hosts ?? []) {
    const mac = h.mac.toLowerCase().replace(/-/g, ':');
    reservations.set(mac, { mac, address: h.address, ...(h.hostname ? { hostname: h.hostname } : {}) });
    reserved.add(ipToInt(h.address));
  }
  const s: ServedSubnet = {
    cidr: `${intToIp(network)}/${prefixLength}`,
    network,
    prefixLength,
    mask: intToIp(mask),
    broadcast: intToIp(bcast),
    config,
    reservations,
    reserved,
    options: new Map(),
  };
  setOpt(s.options, Opt.SubnetMask, s.mask);
  if (config.routers?.length) setOpt(s.options, Opt.Routers, config.routers);
  if (config.dns_servers?.length) setOpt(s.options, Opt.DnsServers, config.dns_servers);
  if (config.domain_name) setOpt(s.options, Opt.DomainName, config.domain_name);
  setOpt(s.options, Opt.BroadcastAddress, s.broadcast);
  if (config.range) {
    const never = new Set<number>(reserved);
    for (const a of exclude) {
      const n = ipToInt(a);
      if (inSubnet(s, n)) never.add(n);
    }
    // The network and broadcast addresses are never a host's (except on /31 and /32).
    if (prefixLength < 31) {
      never.add(network);
      never.add(bcast);
    }
    s.pool = new AddressPool(ipToInt(config.range[0]), ipToInt(config.range[1]), never);
  }
  return s;
}

/** The subnet holding `addr`, if any. */
export function subnetFor(subnets: readonly ServedSubnet[], addr: string | number): ServedSubnet | undefined {
  const n = typeof addr === 'number' ? addr : ipToInt(addr);
  return subnets.find((s) => inSubnet(s, n));
}

/**
 * The subnet a request is served from: the relay's (by giaddr) when relayed, else the
 * receiving interface's. undefined: not a subnet kaboot serves, so the request is ignored.
 */
export function subnetForRequest(giaddr: string, interfaceSubnet: ServedSubnet | undefined, all: readonly ServedSubnet[]): ServedSubnet | undefined {
  return giaddr !== '0.0.0.0' ? subnetFor(all, giaddr) : interfaceSubnet;
}
