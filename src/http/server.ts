// The HTTP side of the appliance: one fastify instance, one plugin per area.
import Fastify, { LogController, type FastifyInstance, type FastifyBaseLogger } from 'fastify';
import type { Logger } from '../log.js';
import { apiRoutes, type ApiDeps } from './api.js';
import { bootRoutes, type BootRouteDeps } from './boot-routes.js';
import { imageRoutes } from '../images/http.js';
import { nodeLogRoutes } from './node-log-routes.js';
import { deployRoutes } from './deploy-routes.js';
import type { DeploymentManager } from '../deploy/manager.js';
import { NodeLogs } from '../nodes/node-logs.js';

export interface HttpServerDeps extends ApiDeps, BootRouteDeps {
  logger: Logger;
  stateDir: string;
  /** deployments: their routes, node tokens, status handling; absent in tests of the bare appliance */
  deployments?: DeploymentManager;
  /** the node logs, shared with the deployments */
  logs?: NodeLogs;
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
  const logs = deps.logs ?? new NodeLogs(deps.stateDir);
  const dm = deps.deployments;
  await app.register(nodeLogRoutes, {
    prefix: '/api',
    stateDir: deps.stateDir,
    nodes: deps.nodes,
    token: deps.token,
    logs,
    ...(dm ? { tokenForNode: (mac: string) => dm.tokenForNode(mac), onStatus: dm.onStatus.bind(dm) } : {}),
  });
  if (dm) await app.register(deployRoutes, { prefix: '/api', token: deps.token, deployments: dm, logs });
  await app.register(bootRoutes, {
    ...deps,
    ...(dm ? { deploymentOf: (mac: string) => dm.kernelParams(mac), recruit: (mac: string) => dm.recruit(mac) } : {}),
  });
  return app;
}
