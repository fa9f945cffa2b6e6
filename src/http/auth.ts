// The API's write endpoints need a bearer token: from the config, or generated once
// into state_dir/api-token (mode 0600) so that a fresh install is never open.
import { timingSafeEqual } from 'node:crypto';
import { newToken } from '../util/token.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { writeFileAtomicSync } from '../util/atomic-write.js';

export function loadOrCreateToken(stateDir: string, configured: string | undefined): { token: string; file?: string } {
  if (configured) return { token: configured };
  const file = join(stateDir, 'api-token');
  try {
    const t = readFileSync(file, 'utf8').trim();
    if (t.length >= 16) return { token: t, file };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const token = newToken();
  writeFileAtomicSync(file, token + '\n');
  return { token, file };
}

export function requireToken(token: string) {
  const expected = Buffer.from(token);
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const given = Buffer.from(m?.[1] ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized', message: 'this endpoint needs Authorization: Bearer <token> (see state_dir/api-token)' });
    }
  };
}

function bearer(req: FastifyRequest): Buffer {
  const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  return Buffer.from(m?.[1] ?? '');
}

function sameToken(given: Buffer, expected: string | undefined): boolean {
  if (expected === undefined) return false;
  const e = Buffer.from(expected);
  // compare against a buffer of the given length either way, so the time says nothing about the token
  return timingSafeEqual(given.length === e.length ? e : given, given) && given.length === e.length && given.length > 0;
}

/**
 * A node's own endpoints (log, status, plan, commands): the API token, or the token of
 * the deployment that holds the MAC in the route (tokenForNode), so a node's token
 * opens only its own deployment's nodes.
 */
export function requireNodeToken(apiToken: string, tokenForNode: (mac: string) => string | undefined) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const given = bearer(req);
    const mac = (req.params as { mac?: string } | undefined)?.mac;
    const api = sameToken(given, apiToken);
    const node = mac !== undefined && sameToken(given, tokenForNode(mac));
    if (!api && !node) {
      return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized', message: "this endpoint needs Authorization: Bearer <token>: the API token, or the token of the deployment that holds this node" });
    }
  };
}
