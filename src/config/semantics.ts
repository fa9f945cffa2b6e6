// Checks that a schema cannot express: addresses inside their subnet, ranges in order,
// no MAC reserved twice, a cached file no larger than the cache, a pxelinux path prefix
// that ends in a slash. Each returns the key to blame and how to fix it.
import ipaddr from 'ipaddr.js';
import type { KabootConfig } from './schema.js';

export interface SemanticProblem {
  key: string;
  problem: string;
  fix: string;
}

const toInt = (a: string) => ipaddr.IPv4.parse(a).toByteArray().reduce((n, b) => n * 256 + b, 0);

export function checkSemantics(config: KabootConfig): SemanticProblem | undefined {
  return checkTftp(config) ?? checkBoot(config) ?? checkDhcp(config);
}

function checkTftp({ tftp }: KabootConfig): SemanticProblem | undefined {
  if (tftp.cache_file_max_mib !== undefined && tftp.cache_mib > 0 && tftp.cache_file_max_mib > tftp.cache_mib) {
    return {
      key: 'tftp.cache_file_max_mib',
      problem: `${tftp.cache_file_max_mib} MiB is more than the whole cache (tftp.cache_mib: ${tftp.cache_mib})`,
      fix: `Make cache_file_max_mib at most ${tftp.cache_mib}, or raise cache_mib.`,
    };
  }
  return undefined;
}

function checkBoot({ boot }: KabootConfig): SemanticProblem | undefined {
  const prefix = boot.pxelinux.path_prefix;
  if (prefix !== undefined && !prefix.endsWith('/')) {
    return {
      key: 'boot.pxelinux.path_prefix',
      problem: `pxelinux glues it to every file name as it is ("${prefix}" + "pxelinux.cfg/default" = "${prefix}pxelinux.cfg/default")`,
      fix: `End it with a slash, e.g. "${prefix}/".`,
    };
  }
  return undefined;
}

function checkDhcp(config: KabootConfig): SemanticProblem | undefined {
  const { dhcp } = config;
  if (dhcp.mode === 'full' && dhcp.subnets.length === 0) {
    return { key: 'dhcp.subnets', problem: 'full DHCP mode needs at least one subnet', fix: 'Add a subnet (see docs/config.md), or set dhcp.mode: proxy.' };
  }
  const seenMacs = new Map<string, string>();
  for (const [i, s] of dhcp.subnets.entries()) {
    const base = `dhcp.subnets[${i}]`;
    const [net, len] = ipaddr.IPv4.parseCIDR(s.subnet);
    const inside = (a: string) => ipaddr.IPv4.parse(a).match(net, len);
    if (s.range) {
      const [first, last] = s.range;
      for (const [j, a] of [first, last].entries()) {
        if (!inside(a)) return { key: `${base}.range[${j}]`, problem: `${a} is outside ${s.subnet}`, fix: `Pick an address inside ${s.subnet}.` };
      }
      if (toInt(first) > toInt(last)) return { key: `${base}.range`, problem: `${first} comes after ${last}`, fix: 'Give the lower address first.' };
    }
    if (s.max_lease_time !== undefined && s.lease_time !== undefined && s.max_lease_time < s.lease_time) {
      return { key: `${base}.max_lease_time`, problem: `shorter than lease_time (${s.lease_time})`, fix: 'Make max_lease_time at least lease_time.' };
    }
    for (const [j, h] of (s.hosts ?? []).entries()) {
      if (!inside(h.address)) return { key: `${base}.hosts[${j}].address`, problem: `${h.address} is outside ${s.subnet}`, fix: `Pick an address inside ${s.subnet}.` };
      const mac = h.mac.toLowerCase().replace(/-/g, ':');
      const prev = seenMacs.get(mac);
      if (prev) return { key: `${base}.hosts[${j}].mac`, problem: `${mac} is already reserved at ${prev}`, fix: 'Reserve each MAC once.' };
      seenMacs.set(mac, `${base}.hosts[${j}]`);
    }
    for (let k = 0; k < i; k++) {
      const other = dhcp.subnets[k]!;
      const [onet, olen] = ipaddr.IPv4.parseCIDR(other.subnet);
      if (net.match(onet, olen) || onet.match(net, len)) {
        return { key: `${base}.subnet`, problem: `${s.subnet} overlaps dhcp.subnets[${k}] (${other.subnet})`, fix: 'Give each subnet its own address range.' };
      }
    }
  }
  return undefined;
}
