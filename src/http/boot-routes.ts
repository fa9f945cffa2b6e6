// What booting nodes fetch over HTTP: their iPXE script, and kernel, initrd and
// images from images_dir (HEAD and Range through @fastify/static), with Debian's boot
// loaders as a fallback for names images_dir does not hold.
import type { FastifyPluginAsync } from 'fastify';
import fastifyStatic from '@fastify/static';
import { dirname, basename, join } from 'node:path';
import { statSync } from 'node:fs';
import type { BootConfig } from '../config/schema.js';
import type { NodeRegistry } from '../nodes/registry.js';
import { normalizeMac } from '../nodes/registry.js';
import { baseUrl, ipxeScript } from '../boot/ipxe-script.js';
import { loaderPath } from '../boot/loaders.js';
import { isInside } from '../util/contained-path.js';

export interface BootRouteDeps {
  imagesDir: string;
  boot: BootConfig;
  nodes: NodeRegistry;
  httpPort: number;
  /** kaboot.token / kaboot.deployment for a node held by a deployment */
  deploymentOf?: (mac: string) => { id: string; token: string } | undefined;
  /** count mode: an unknown node asking for its script may join a recruiting deployment */
  recruit?: (mac: string) => boolean;
}

/** The local-boot EFI image's URL when images_dir holds it (checked per script, so a later `kaboot stage2 build` counts at once). */
function localEfiUrl(imagesDir: string, file: string, base: string): string | undefined {
  const rel = file.replace(/^\/+/, '');
  if (!rel || rel.split('/').includes('..')) return undefined;
  try {
    if (!statSync(join(imagesDir, rel)).isFile()) return undefined;
  } catch {
    return undefined;
  }
  return `${base}/${rel.split('/').map(encodeURIComponent).join('/')}`;
}

export const bootRoutes: FastifyPluginAsync<BootRouteDeps> = async (app, deps) => {
  app.get<{ Params: { name: string } }>('/ipxe/:name', async (req, reply) => {
    const mac = normalizeMac(req.params.name.replace(/\.ipxe$/, ''));
    if (!mac) return reply.code(404).send({ error: 'not found', message: 'expected /ipxe/<mac>.ipxe' });
    if (!deps.nodes.get(mac)) deps.recruit?.(mac);
    const node = deps.nodes.get(mac);
    const next = node?.next_boot ?? deps.boot.default;
    const server = req.socket.localAddress?.replace(/^::ffff:/, '') ?? req.hostname;
    const deployment = next === 'kamethod' ? deps.deploymentOf?.(mac) : undefined;
    const at = { server, httpPort: deps.httpPort };
    const uefiLocalUrl = next === 'local' ? localEfiUrl(deps.imagesDir, deps.boot.files.uefi_local, baseUrl(at)) : undefined;
    req.log.info({ mac, next_boot: next, client: req.ip, deployment: deployment?.id, uefi_local: uefiLocalUrl }, 'ipxe script');
    return reply.type('text/plain').send(ipxeScript(deps.boot, next, { ...at, ...(deployment ? { deployment } : {}) }, mac, { uefiLocalUrl }));
  });

  await app.register(fastifyStatic, {
    root: deps.imagesDir,
    prefix: '/',
    index: false,
    list: false,
    serveDotFiles: false,
    cacheControl: false,
    // symlinks are followed by the file system; refuse any that lead outside images_dir
    onFile: async (path: string) => {
      if (path.startsWith(deps.imagesDir) && !(await isInside(deps.imagesDir, path))) {
        throw Object.assign(new Error('path escapes images_dir'), { statusCode: 403 });
      }
    },
  } as Parameters<typeof fastifyStatic>[1]);

  app.setNotFoundHandler(async (req, reply) => {
    const name = decodeURIComponent((req.url.split('?')[0] ?? '').replace(/^\/+/, ''));
    const loader = (req.method === 'GET' || req.method === 'HEAD') ? loaderPath(name) : undefined;
    if (loader) return reply.sendFile(basename(loader), dirname(loader));
    return reply.code(404).send({ error: 'not found', message: `${req.method} ${req.url}` });
  });
};
