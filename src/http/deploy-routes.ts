// Deployments and what their nodes ask for. Register with { prefix: '/api' }.
//   POST   /deployments                      (API token) DeploymentRequest → 201 the deployment
//   GET    /deployments, /deployments/:id    (API token)
//   DELETE /deployments/:id                  (API token) cancel
//   GET    /deployments/:id/live?wait=20     (API token) a live golden's long poll → {state, feeds}
//   POST   /deployments/:id/live/:session    (API token) body: the golden's zstd tar stream of that
//                                            file system (application/zstd, chunked, trailer
//                                            x-kaboot-sha256), read as fast as the session sends
//   GET    /nodes/:mac/plan?firmware=bios|uefi            (node) → DeployPlan
//   POST   /nodes/:mac/exec {argv, timeout_s?}            (API token) → 201 {id}
//   GET    /nodes/:mac/commands?wait=20                   (node) → 200 {id, argv, timeout_s} | 204
//   POST   /nodes/:mac/commands/:id/result {exit_code}    (node)
//   GET    /nodes/:mac/commands/:id                       (API token) → {id, argv, state, exit_code}
// "(node)": the API token or the token of the deployment that holds that MAC.
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { normalizeMac } from '../nodes/registry.js';
import { formatLogLine, type NodeLogs } from '../nodes/node-logs.js';
import { requireToken, requireNodeToken } from './auth.js';
import { DeploymentRequest, MAC_PATTERN, publicView } from '../deploy/deployment.js';
import { DeployError, type DeploymentManager } from '../deploy/manager.js';
import { CommandError } from '../deploy/commands.js';

export interface DeployRouteDeps {
  token: string;
  deployments: DeploymentManager;
  logs: NodeLogs;
}

const MacParam = Type.Object({ mac: Type.String({ pattern: MAC_PATTERN }) });
const IdParam = Type.Object({ id: Type.String({ pattern: '^d-[0-9]{14}-[0-9a-f]{4}$' }) });
const CommandParams = Type.Object({ mac: Type.String({ pattern: MAC_PATTERN }), id: Type.String({ pattern: '^c[0-9a-f]{8}$' }) });
const PlanQuery = Type.Object({ firmware: Type.Union([Type.Literal('bios'), Type.Literal('uefi')]) }, { additionalProperties: false });
const WaitQuery = Type.Object({ wait: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$' })) }, { additionalProperties: false });
const ExecBody = Type.Object({
  argv: Type.Array(Type.String({ maxLength: 64 * 1024 }), { minItems: 1, maxItems: 1024 }),
  timeout_s: Type.Optional(Type.Integer({ minimum: 1, maximum: 86400 })),
}, { additionalProperties: false });
const ResultBody = Type.Object({ exit_code: Type.Integer({ minimum: -1, maximum: 255 }) }, { additionalProperties: false });

const LiveParams = Type.Object({ id: Type.String({ pattern: '^d-[0-9]{14}-[0-9a-f]{4}$' }), session: Type.String({ pattern: '^kainstall[0-9]{1,3}$' }) });

const MAX_WAIT_S = 60;

function sendError(reply: FastifyReply, e: unknown) {
  if (e instanceof DeployError || e instanceof CommandError) {
    const status = e.code === 'not-found' ? 404 : e.code === 'conflict' ? 409 : 400;
    return reply.code(status).send({ error: status === 404 ? 'not found' : status === 409 ? 'conflict' : 'bad request', message: e.message });
  }
  throw e;
}

export const deployRoutes: FastifyPluginAsync<DeployRouteDeps> = async (app, deps) => {
  const api = requireToken(deps.token);
  const node = requireNodeToken(deps.token, (mac) => deps.deployments.tokenForNode(mac));
  const dm = deps.deployments;

  app.post<{ Body: Static<typeof DeploymentRequest> }>('/deployments', { preHandler: api, schema: { body: DeploymentRequest }, bodyLimit: 4 * 1024 * 1024 }, async (req, reply) => {
    try {
      const d = await dm.create(req.body);
      return reply.code(201).send(publicView(d));
    } catch (e) {
      return sendError(reply, e);
    }
  });

  app.get('/deployments', { preHandler: api }, async () => ({ deployments: dm.list().map(publicView) }));

  // a live golden's uploads stay streams: never buffered, no size limit, no timeout
  app.addContentTypeParser('application/zstd', (_req, payload, done) => done(null, payload));

  app.get<{ Params: Static<typeof IdParam>; Querystring: Static<typeof WaitQuery> }>(
    '/deployments/:id/live',
    { preHandler: api, schema: { params: IdParam, querystring: WaitQuery } },
    async (req, reply) => {
      const ac = new AbortController();
      const onClose = () => ac.abort();
      req.raw.once('close', onClose);
      try {
        return await dm.waitLive(req.params.id, Math.min(MAX_WAIT_S, Number(req.query.wait ?? 0)) * 1000, ac.signal);
      } catch (e) {
        return sendError(reply, e);
      } finally {
        req.raw.off('close', onClose);
      }
    },
  );

  app.post<{ Params: Static<typeof LiveParams> }>(
    '/deployments/:id/live/:session',
    { preHandler: api, schema: { params: LiveParams } },
    async (req, reply) => {
      try {
        if (req.headers['content-type'] !== 'application/zstd') throw new DeployError('bad-request', 'send the file system as application/zstd (tar | zstd, as kaboot deploy --live does)');
        return await dm.feedLive(req.params.id, req.params.session, req.raw);
      } catch (e) {
        // the body may be unread: answer, then close the connection rather than read it
        reply.header('connection', 'close');
        return sendError(reply, e);
      }
    },
  );

  app.get<{ Params: Static<typeof IdParam> }>('/deployments/:id', { preHandler: api, schema: { params: IdParam } }, async (req, reply) => {
    const d = dm.get(req.params.id);
    return d ? publicView(d) : reply.code(404).send({ error: 'not found', message: `no deployment ${req.params.id}` });
  });

  app.delete<{ Params: Static<typeof IdParam> }>('/deployments/:id', { preHandler: api, schema: { params: IdParam } }, async (req, reply) => {
    try {
      return publicView(await dm.cancel(req.params.id));
    } catch (e) {
      return sendError(reply, e);
    }
  });

  app.get<{ Params: Static<typeof MacParam>; Querystring: Static<typeof PlanQuery> }>(
    '/nodes/:mac/plan',
    { preHandler: node, schema: { params: MacParam, querystring: PlanQuery } },
    async (req, reply) => {
      try {
        return dm.plan(req.params.mac, req.query.firmware, req.ip);
      } catch (e) {
        return sendError(reply, e);
      }
    },
  );

  app.post<{ Params: Static<typeof MacParam>; Body: Static<typeof ExecBody> }>(
    '/nodes/:mac/exec',
    { preHandler: api, schema: { params: MacParam, body: ExecBody } },
    async (req, reply) => {
      const mac = normalizeMac(req.params.mac)!;
      const c = dm.commands.enqueue(mac, req.body.argv, req.body.timeout_s);
      deps.logs.append(mac, [formatLogLine({ step: `exec:${c.id}`, stream: 'status', line: `queued: ${JSON.stringify(c.argv)}` })]);
      return reply.code(201).send({ id: c.id });
    },
  );

  app.get<{ Params: Static<typeof MacParam>; Querystring: Static<typeof WaitQuery> }>(
    '/nodes/:mac/commands',
    { preHandler: node, schema: { params: MacParam, querystring: WaitQuery } },
    async (req, reply) => {
      const waitS = Math.min(MAX_WAIT_S, Number(req.query.wait ?? 0));
      const ac = new AbortController();
      const onClose = () => ac.abort();
      req.raw.once('close', onClose);
      try {
        const c = await dm.commands.next(req.params.mac, waitS * 1000, ac.signal);
        if (!c) return reply.code(204).send();
        // the poller left while we waited: give the command back
        if (ac.signal.aborted) {
          c.state = 'queued';
          delete c.started;
          return reply.code(204).send();
        }
        deps.logs.append(c.mac, [formatLogLine({ step: `exec:${c.id}`, stream: 'status', line: 'running' })]);
        return { id: c.id, argv: c.argv, ...(c.timeout_s !== undefined ? { timeout_s: c.timeout_s } : {}) };
      } finally {
        req.raw.off('close', onClose);
      }
    },
  );

  app.post<{ Params: Static<typeof CommandParams>; Body: Static<typeof ResultBody> }>(
    '/nodes/:mac/commands/:id/result',
    { preHandler: node, schema: { params: CommandParams, body: ResultBody } },
    async (req, reply) => {
      try {
        const c = dm.commands.finish(req.params.mac, req.params.id, req.body.exit_code);
        // the line `kaboot exec` waits for: the command's output is in the log before it
        deps.logs.append(c.mac, [formatLogLine({ step: `exec:${c.id}`, stream: 'status', line: `exit=${c.exit_code}` })]);
        return { id: c.id, state: c.state, exit_code: c.exit_code };
      } catch (e) {
        return sendError(reply, e);
      }
    },
  );

  app.get<{ Params: Static<typeof CommandParams> }>(
    '/nodes/:mac/commands/:id',
    { preHandler: api, schema: { params: CommandParams } },
    async (req, reply) => {
      const c = dm.commands.get(req.params.mac, req.params.id);
      if (!c) return reply.code(404).send({ error: 'not found', message: `no command ${req.params.id} for ${req.params.mac}` });
      return { id: c.id, argv: c.argv, state: c.state, exit_code: c.exit_code, ...(c.timeout_s !== undefined ? { timeout_s: c.timeout_s } : {}) };
    },
  );
};
