// The host's IPv4 interfaces, and which of them kaboot serves. The table comes from
// the kernel (ip -j addr); everything else is pure, so it is tested without a network.
import os from 'node:os';
import ipaddr from 'ipaddr.js';
import { execaSync } from 'execa';

export interface Ipv4Address {
  /** e.g. 10.0.0.1 */
  address: string;
  /** e.g. 255.255.255.0 */
  netmask: string;
  prefixLength: number;
  /** address with prefix length, e.g. 10.0.0.1/24 */
  cidr: string;
  /** network address, e.g. 10.0.0.0 */
  network: string;
  /** directed broadcast, e.g. 10.0.0.255; 255.255.255.255 on a /31 or /32, which have none */
  broadcast: string;
}

export interface Ipv4Interface {
  name: string;
  /** lower-case colon-separated MAC; 00:00:00:00:00:00 for devices without one (tun) */
  mac: string;
  /** in the order the kernel lists them; the first is the primary address */
  addresses: Ipv4Address[];
}

/** What os.networkInterfaces() returns. */
export type InterfaceTable = NodeJS.Dict<os.NetworkInterfaceInfo[]>;

export function describeIpv4(address: string, netmask: string): Ipv4Address {
  const prefixLength = ipaddr.IPv4.parse(netmask).prefixLengthFromSubnetMask();
  if (prefixLength === null) throw new Error(`netmask ${netmask} of ${address} is not contiguous`);
  const cidr = `${address}/${prefixLength}`;
  return {
    address,
    netmask,
    prefixLength,
    cidr,
    network: ipaddr.IPv4.networkAddressFromCIDR(cidr).toString(),
    broadcast: prefixLength >= 31 ? '255.255.255.255' : ipaddr.IPv4.broadcastAddressFromCIDR(cidr).toString(),
  };
}

interface IpAddrJson {
  ifname?: string;
  address?: string;
  flags?: string[];
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
}

/**
 * The kernel's IPv4 addresses as `ip -j addr` lists them, in os.networkInterfaces()'s
 * shape. Not os.networkInterfaces() itself: libuv leaves out interfaces without carrier,
 * and an appliance must start (and bind) while its deploy NIC has no link yet.
 */
export function kernelInterfaceTable(): InterfaceTable {
  const { stdout } = execaSync('ip', ['-j', 'addr', 'show']);
  const table: InterfaceTable = {};
  for (const link of JSON.parse(stdout) as IpAddrJson[]) {
    if (!link.ifname) continue;
    const internal = link.flags?.includes('LOOPBACK') ?? false;
    table[link.ifname] = (link.addr_info ?? [])
      .filter((a) => a.family === 'inet' && a.local && a.prefixlen !== undefined)
      .map((a) => ({
        address: a.local!,
        netmask: ipaddr.IPv4.subnetMaskFromPrefixLength(a.prefixlen!).toString(),
        family: 'IPv4' as const,
        mac: link.address ?? '00:00:00:00:00:00',
        internal,
        cidr: `${a.local}/${a.prefixlen}`,
      }));
  }
  return table;
}

/** Interfaces with at least one IPv4 address, loopback excluded, sorted by name. */
export function ipv4Interfaces(table: InterfaceTable = kernelInterfaceTable()): Ipv4Interface[] {
  const result: Ipv4Interface[] = [];
  for (const [name, infos] of Object.entries(table)) {
    const v4 = (infos ?? []).filter((i) => i.family === 'IPv4' && !i.internal);
    const first = v4[0];
    if (!first) continue;
    result.push({ name, mac: first.mac.toLowerCase(), addresses: v4.map((i) => describeIpv4(i.address, i.netmask)) });
  }
  return result.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The interface (and its address) whose subnet holds `ip`, if any. */
export function interfaceForAddress(interfaces: readonly Ipv4Interface[], ip: string): { iface: Ipv4Interface; address: Ipv4Address } | undefined {
  const target = ipaddr.IPv4.parse(ip);
  for (const iface of interfaces) {
    for (const address of iface.addresses) {
      if (target.match(ipaddr.IPv4.parse(address.network), address.prefixLength)) return { iface, address };
    }
  }
  return undefined;
}

export { InterfaceSelectionError } from './errors.js';
import { InterfaceSelectionError } from './errors.js';

const listing = (interfaces: readonly Ipv4Interface[]) =>
  interfaces.length === 0
    ? 'this host has no interface with an IPv4 address (loopback excepted)'
    : `interfaces with IPv4: ${interfaces.map((i) => `${i.name} (${i.addresses.map((a) => a.cidr).join(', ')})`).join(', ')}`;

/**
 * The interfaces to serve: the configured ones, in the configured order, or, when
 * none are configured, every interface with IPv4 (loopback excepted).
 * Throws InterfaceSelectionError naming each missing interface and listing the
 * existing ones, or when nothing is left to serve.
 */
export function selectInterfaces(configured: readonly string[] | undefined, available: readonly Ipv4Interface[] = ipv4Interfaces()): Ipv4Interface[] {
  const names = available.map((i) => i.name);
  if (configured === undefined) {
    if (available.length === 0) throw new InterfaceSelectionError(`no interface to serve: ${listing(available)}`, [], names);
    return [...available];
  }
  if (configured.length === 0) {
    throw new InterfaceSelectionError(`interfaces: an empty list serves nothing; leave the key out to serve every interface with IPv4 (${listing(available)})`, [], names);
  }
  const wanted = [...new Set(configured)];
  const missing = wanted.filter((n) => !names.includes(n));
  if (missing.length > 0) {
    const what = missing.length === 1 ? `interface ${missing[0]} is` : `interfaces ${missing.join(', ')} are`;
    throw new InterfaceSelectionError(`${what} not present or without an IPv4 address; ${listing(available)}`, missing, names);
  }
  return wanted.map((n) => available.find((i) => i.name === n)!);
}
