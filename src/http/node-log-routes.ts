// Node logs and status over HTTP (the seed's send_status.pl / status_node.pl, authenticated):
//   POST /nodes/:mac/log     text/plain lines, or application/x-ndjson {step, stream, line, ts} lines
//   GET  /nodes/:mac/log     the whole current log;  ?follow=1 keeps the response open, like tail -f
//   POST /nodes/:mac/status  {state, step, message}: changes the registry and logs the change
// Register with { prefix: '/api' }. Every route needs a token (logs can hold secrets): the
// API token, or the token of the deployment that holds that node.
import { PassThrough } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { normalizeMac, type NodeRegistry } from '../nodes/registry.js';
import { NodeLogs, formatLogLine, type NodeLogOptions } from '../nodes/node-logs.js';
import { requireToken, requireNodeToken } from './auth.js';
import type { NodeRecord, NodeState } from '../nodes/registry.js';

export interface NodeLogRouteDeps {
  stateDir: string;
  nodes: NodeRegistry;
  token: string;
  logOptions?: NodeLogOptions;
  /** shared with other users of the logs (a CLI, a deployment); one is made from stateDir when absent */
  logs?: NodeLogs;
  /** the deployment token a node's endpoints accept besides the API token */
  tokenForNode?: (mac: string) => string | undefined;
  /** a status report goes to the deployments (which flip a deployed node to local boot) */
  onStatus?: (mac: string, state: NodeState, step: string | undefined, message: string | undefined, ip: string) => NodeRecord;
}

export const LogLineSchema = Type.Object(
  {
    step: Type.Optional(Type.String({ maxLength: 64 })),
    stream: Type.Optional(Type.Union([Type.Literal('stdout'), Type.Literal('stderr'), Type.Literal('status'), Type.Literal('agent')])),
    line: Type.String({ maxLength: 64 * 1024 }),
    ts: Type.Optional(Type.String({ maxLength: 40 })),
  },
  { additionalProperties: false },
);

export const StatusSchema = Type.Object(
  {
    state: Type.Union([Type.Literal('booting'), Type.Literal('deploying'), Type.Literal('deployed'), Type.Literal('failed')]),
    step: Type.Optional(Type.String({ maxLength: 64 })),
    message: Type.Optional(Type.String({ maxLength: 4096 })),
  },
  { additionalProperties: false },
);

const MacParam = Type.Object({ mac: Type.String({ pattern: '^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$' }) });
const FollowQuery = Type.Object({ follow: Type.Optional(Type.Union([Type.Literal('1'), Type.Literal('0'), Type.Literal('true'), Type.Literal('false')])) }, { additionalProperties: false });

type LogBodyParse = { ok: true; lines: string[] } | { ok: false; message: string };

/** All or nothing: one bad line refuses the whole body, so the node can resend it unchanged. */
export function parseLogBody(body: string, contentType: string, now = new Date()): LogBodyParse {
  const raw = body.split('\n');
  if (raw.length > 0 && raw[raw.length - 1] === '') raw.pop();
  if (contentType.startsWith('text/plain')) return { ok: true, lines: raw.map((line) => formatLogLine({ line }, now)) };
  const lines: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const text = raw[i]!;
    if (text.trim() === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      return { ok: false, message: `line ${i + 1}: not JSON` };
    }
    if (!Value.Check(LogLineSchema, v)) {
      const err = [...Value.Errors(LogLineSchema, v)][0];
      return { ok: false, message: `line ${i + 1}: ${err ? `${err.path || '/'} ${err.message}` : 'not a log line'}` };
    }
    lines.push(formatLogLine(v, now));
  }
  return { ok: true, lines };
}

export const nodeLogRoutes: FastifyPluginAsync<NodeLogRouteDeps> = async (app, deps) => {
  const tokenForNode = deps.tokenForNode;
  const auth = tokenForNode ? requireNodeToken(deps.token, tokenForNode) : requireToken(deps.token);
  const logs = deps.logs ?? new NodeLogs(deps.stateDir, deps.logOptions);

  app.addContentTypeParser('application/x-ndjson', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.post<{ Params: Static<typeof MacParam> }>(
    '/nodes/:mac/log',
    { preHandler: auth, schema: { params: MacParam }, bodyLimit: 1024 * 1024 },
    async (req, reply) => {
      const contentType = String(req.headers['content-type'] ?? '');
      if (typeof req.body !== 'string' || !(contentType.startsWith('text/plain') || contentType.startsWith('application/x-ndjson'))) {
        return reply.code(415).send({ error: 'unsupported media type', message: 'send text/plain lines or application/x-ndjson {step, stream, line, ts} lines' });
      }
      const parsed = parseLogBody(req.body, contentType);
      if (!parsed.ok) return reply.code(400).send({ error: 'bad request', message: parsed.message });
      const mac = normalizeMac(req.params.mac)!;
      logs.append(mac, parsed.lines);
      return { appended: parsed.lines.length };
    },
  );

  app.get<{ Params: Static<typeof MacParam>; Querystring: Static<typeof FollowQuery> }>(
    '/nodes/:mac/log',
    { preHandler: auth, schema: { params: MacParam, querystring: FollowQuery } },
    async (req, reply) => {
      const mac = normalizeMac(req.params.mac)!;
      reply.header('content-type', 'text/plain; charset=utf-8').header('cache-control', 'no-store');
      const follow = req.query.follow === '1' || req.query.follow === 'true';
      if (!follow) return reply.send(logs.read(mac));
      // append() writes and notifies synchronously, so subscribing and reading in one tick
      // neither loses nor repeats a line.
      const out = new PassThrough();
      const stop = logs.follow(mac, (text) => out.write(text));
      out.write(logs.read(mac));
      const end = () => {
        stop();
        out.end();
      };
      req.raw.once('close', end);
      reply.raw.once('close', end);
      return reply.send(out);
    },
  );

  app.post<{ Params: Static<typeof MacParam>; Body: Static<typeof StatusSchema> }>(
    '/nodes/:mac/status',
    { preHandler: auth, schema: { params: MacParam, body: StatusSchema } },
    async (req) => {
      const mac = normalizeMac(req.params.mac)!;
      const { state, step, message } = req.body;
      logs.append(mac, [formatLogLine({ step: step ?? '-', stream: 'status', line: `state=${state}${message ? ` ${message}` : ''}` })]);
      if (deps.onStatus) return deps.onStatus(mac, state, step, message, req.ip);
      return deps.nodes.upsert(mac, { state, ip: req.ip, ...(state === 'deployed' ? { next_boot: 'local' as const } : {}) });
    },
  );
};
