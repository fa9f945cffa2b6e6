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

export interface NativeAddon {
  /** An IPv4 UDP socket tied to `ifname` (SO_BINDTODEVICE, IP_PKTINFO on) and bound; returns its fd. */
  udpSocketOnDevice(ifname: string, port: number, opts?: DeviceSocketRequest): number;
  /** Closes a descriptor that never reached dgram. */
  closeFd(fd: number): void;
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
