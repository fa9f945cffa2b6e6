// The HTTP side of the appliance: one fastify instance, one plugin per area.
import Fastify, { LogController, type FastifyInstance, type FastifyBaseLogger } from 'fastify';
import type { Logger } from '../log.js';
import { apiRoutes, type ApiDeps } from './api.js';
import { bootRoutes, type BootRouteDeps } from './boot-routes.js';
import { imageRoutes } from '../images/http.js';
import { nodeLogRoutes } from './node-log-routes.js';

export interface HttpServerDeps extends ApiDeps, BootRouteDeps {
  logger: Logger;
  stateDir: string;
}

export async function buildHttpServer(deps: HttpServerDeps): Promise<FastifyInstance> {
  const app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false } }, loggerInstance: deps.logger.child({ svc: 'http' }) as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), bodyLimit: 64 * 1024 });

  // One line per finished transfer: client, path, status, bytes, seconds, rate.
  app.addHook('onResponse', async (req, reply) => {
    const seconds = reply.elapsedTime / 1000;
    const bytes = Number(reply.getHeader('content-length') ?? 0);
    req.log.info({ client: req.ip, method: req.method, url: req.url, status: reply.statusCode, bytes, seconds: Number(seconds.toFixed(3)), rate_mbs: seconds > 0 ? Number((bytes / seconds / 1e6).toFixed(1)) : undefined }, 'http transfer');
  });

  await app.register(apiRoutes, { prefix: '/api', ...deps });
  await app.register(imageRoutes, { prefix: '/api', imagesDir: deps.imagesDir, token: deps.token });
  await app.register(nodeLogRoutes, { prefix: '/api', stateDir: deps.stateDir, nodes: deps.nodes, token: deps.token });
  await app.register(bootRoutes, deps);
  return app;
}
