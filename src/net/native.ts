// Loads kaboot's N-API addon (native/), built by `npm install`. There is no JavaScript
// fallback: without the addon kaboot cannot tie a socket to an interface, and serving
// DHCP on the wrong interface is worse than not starting.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface DeviceSocketRequest {
  /** SO_BROADCAST: allow sending to broadcast addresses */
  broadcast?: boolean;
  /** SO_REUSEADDR before bind */
  reuseAddr?: boolean;
  /** local IPv4 address to bind; default 0.0.0.0 (needed to receive broadcasts) */
  address?: string;
}

export interface Icmp6SocketRequest {
  /** ICMPv6 types the socket receives (ICMP6_FILTER); none when absent or empty */
  types?: number[];
  /** multicast groups joined on the interface, e.g. ff02::2 */
  groups?: string[];
}

export interface Icmp6SocketHandle {
  fd: number;
  ifindex: number;
}

export interface Icmp6Received {
  /** the ICMPv6 message, from its type byte */
  data: Buffer;
  /** sender's address, without scope */
  source: string;
  /** the IPv6 hop limit it arrived with; -1 when the kernel gave none */
  hopLimit: number;
  truncated: boolean;
}

export interface NativeAddon {
  /** An IPv4 UDP socket tied to `ifname` (SO_BINDTODEVICE, IP_PKTINFO on) and bound; returns its fd. */
  udpSocketOnDevice(ifname: string, port: number, opts?: DeviceSocketRequest): number;
  /** Closes a descriptor that never reached dgram, or an ICMPv6 socket. */
  closeFd(fd: number): void;
  /** A non-blocking raw ICMPv6 socket tied to `ifname`, hop limit 255 (see native/README.md). */
  icmp6SocketOnDevice(ifname: string, opts?: Icmp6SocketRequest): Icmp6SocketHandle;
  /** sendto(address%ifindex); the kernel fills the checksum and picks the source. */
  icmp6Send(fd: number, ifindex: number, address: string, data: Uint8Array): number;
  /** One non-blocking receive; null when nothing waits. */
  icmp6Receive(fd: number): Icmp6Received | null;
}

export const ADDON_FILE = join('native', 'build', 'Release', 'kaboot_native.node');

export class NativeAddonMissingError extends Error {
  readonly code = 'KABOOT_NATIVE_MISSING';
  constructor(readonly path: string, cause?: unknown) {
    const why = cause instanceof Error ? ` (${cause.message})` : '';
    super(`native addon not built: run npm install (needs python3, make, g++); looked for ${path}${why}`, { cause });
    this.name = 'NativeAddonMissingError';
  }
}

/** The kaboot package root: the nearest folder above this module whose package.json is kaboot's. */
export function packageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'kaboot') return dir;
      } catch { /* not ours: keep climbing */ }
    }
    if (dirname(dir) === dir) throw new Error(`kaboot's package.json not found above ${from}`);
  }
}

/** Loads the addon at `path`; NativeAddonMissingError if it is absent or will not load. */
export function loadAddonFrom(path: string): NativeAddon {
  if (!existsSync(path)) throw new NativeAddonMissingError(path);
  try {
    return createRequire(import.meta.url)(path) as NativeAddon;
  } catch (e) {
    throw new NativeAddonMissingError(path, e);
  }
}

let loaded: NativeAddon | undefined;

/** The package's own build of the addon, loaded once. */
export function loadNative(): NativeAddon {
  loaded ??= loadAddonFrom(join(packageRoot(), ADDON_FILE));
  return loaded;
}
