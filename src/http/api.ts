// /api: health, leases, nodes. Reads are open; writes need the token.
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { normalizeMac, type NodeRegistry } from '../nodes/registry.js';
import { requireToken } from './auth.js';
import type { LeaseView } from '../dhcp/leases.js';

export interface ApiDeps {
  nodes: NodeRegistry;
  token: string;
  leases: () => LeaseView[];
  health: () => Record<string, unknown>;
}

const NodeChange = Type.Object(
  {
    next_boot: Type.Optional(Type.Union([Type.Literal('kamethod'), Type.Literal('local')])),
    hostname: Type.Optional(Type.String({ minLength: 1, maxLength: 63, pattern: '^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$' })),
  },
  { additionalProperties: false },
);
const MacParam = Type.Object({ mac: Type.String({ pattern: '^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$' }) });

export const apiRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const auth = requireToken(deps.token);

  app.get('/health', async () => ({ status: 'ok', ...deps.health() }));
  app.get('/leases', async () => ({ leases: deps.leases() }));
  app.get('/nodes', async () => ({ nodes: deps.nodes.list() }));

  app.get<{ Params: Static<typeof MacParam> }>('/nodes/:mac', { schema: { params: MacParam } }, async (req, reply) => {
    const node = deps.nodes.get(req.params.mac);
    return node ?? reply.code(404).send({ error: 'not found', message: `no node ${req.params.mac}` });
  });

  app.put<{ Params: Static<typeof MacParam>; Body: Static<typeof NodeChange> }>(
    '/nodes/:mac',
    { preHandler: auth, schema: { params: MacParam, body: NodeChange } },
    async (req) => deps.nodes.upsert(normalizeMac(req.params.mac)!, req.body),
  );

  app.delete<{ Params: Static<typeof MacParam> }>('/nodes/:mac', { preHandler: auth, schema: { params: MacParam } }, async (req, reply) => {
    return deps.nodes.remove(req.params.mac) ? reply.code(204).send() : reply.code(404).send({ error: 'not found', message: `no node ${req.params.mac}` });
  });
};
