// What TFTP serves: generated pxelinux.cfg files first (so a node's boot follows the
// registry, never a stale file), then images_dir, then Debian's boot loaders.
import { realpathSync } from 'node:fs';
import { dirname, basename } from 'node:path';
import type { BootConfig } from '../config/schema.js';
import type { NodeLookup } from '../nodes/registry.js';
import { bufferSource, isLookupError, type FileProvider, type FileSource, type TftpClient, type TftpLookupError } from '../tftp/provider.js';
import { dirProvider, safeRelativePath } from '../tftp/dir-provider.js';
import { FileCache, fileCacheOptions } from '../tftp/file-cache.js';
import { loaderPath } from './loaders.js';
import { pxelinuxConfig, macFromPxelinuxName } from './pxelinux-config.js';

export interface BootFileDeps {
  imagesDir: string;
  boot: BootConfig;
  nodes: NodeLookup;
  httpPort: number;
  tftp: { cache_mib: number; cache_file_max_mib?: number | undefined };
  /** kaboot.token / kaboot.deployment for a node held by a deployment */
  deploymentOf?: (mac: string) => { id: string; token: string } | undefined;
  /** count mode: an unknown node asking for its pxelinux.cfg may join a recruiting deployment */
  recruit?: (mac: string) => boolean;
}

export function bootFileProvider(deps: BootFileDeps): FileProvider {
  const cache = new FileCache(fileCacheOptions(deps.tftp));
  // pxelinux asks for <path_prefix>pxelinux.cfg/...: a relative prefix is a folder below the root.
  const prefix = (deps.boot.pxelinux.path_prefix ?? '').split('/').filter(Boolean);
  const images = dirProvider(deps.imagesDir, { cache });
  const loaderDirs = new Map<string, FileProvider>();

  function generated(asked: string[], client: TftpClient): FileSource | undefined {
    const segments = prefix.length > 0 && prefix.every((p, i) => asked[i] === p) ? asked.slice(prefix.length) : asked;
    if (segments.length !== 2 || segments[0] !== 'pxelinux.cfg') return undefined;
    const name = segments[1]!;
    const at = { server: client.localAddress, httpPort: deps.httpPort };
    if (name === 'default') return bufferSource(Buffer.from(pxelinuxConfig(deps.boot, deps.boot.default, at)));
    const mac = macFromPxelinuxName(name);
    let node = mac ? deps.nodes.get(mac) : undefined;
    if (mac && !node && deps.recruit?.(mac)) node = deps.nodes.get(mac);
    // Only nodes the registry knows get a file of their own; the others fall through
    // pxelinux's search (UUID, hex IP prefixes) to `default`.
    if (!node) return undefined;
    const dep = node.next_boot === 'kamethod' ? deps.deploymentOf?.(node.mac) : undefined;
    return bufferSource(Buffer.from(pxelinuxConfig(deps.boot, node.next_boot, dep ? { ...at, deployment: dep } : at)));
  }

  return {
    async open(path: string, client: TftpClient): Promise<FileSource | TftpLookupError> {
      const safe = safeRelativePath(path);
      if (!safe.ok) return { error: 'access-denied', message: `access violation: ${safe.reason}` };
      const gen = generated(safe.segments, client);
      if (gen) return gen;
      const fromImages = await images.open(path, client);
      if (!isLookupError(fromImages) || fromImages.error !== 'not-found') return fromImages;
      const packaged = loaderPath(safe.segments.join('/'));
      if (!packaged) return fromImages;
      // Debian links some loaders elsewhere (/usr/lib/ipxe/ipxe.efi -> /boot/ipxe.efi): the
      // packaged path is trusted, so serve what it points at rather than refuse the link.
      let loader: string;
      try {
        loader = realpathSync(packaged);
      } catch {
        return fromImages;
      }
      let dir = loaderDirs.get(dirname(loader));
      if (!dir) loaderDirs.set(dirname(loader), (dir = dirProvider(dirname(loader), { cache })));
      return dir.open(basename(loader), client);
    },
  };
}
