// The CLI's side of the API: where the running `kaboot serve` is and its token
// (--server, --token, or state_dir/api-token of --config), and small typed requests.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../config/load.js';

export interface ApiTarget {
  server: string;
  token: string;
}

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface TargetOptions {
  server?: string;
  token?: string;
  config?: string;
}

export function resolveTarget(o: TargetOptions): ApiTarget {
  let token = o.token;
  let server = o.server;
  if (!token || !server) {
    const { config } = loadConfig(o.config);
    server ??= `http://127.0.0.1:${config.http.port}`;
    if (!token) {
      const file = join(config.state_dir, 'api-token');
      try {
        token = readFileSync(file, 'utf8').trim();
      } catch (e) {
        throw new ApiError(0, `no API token: give --token, or --config FILE of the appliance so that ${file} can be read (${(e as NodeJS.ErrnoException).code ?? e})`);
      }
    }
  }
  return { server: server.replace(/\/+$/, ''), token };
}

export async function apiRequest<T>(t: ApiTarget, method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<{ status: number; body: T }> {
  let res: Response;
  try {
    res = await fetch(`${t.server}${path}`, {
      method,
      headers: { authorization: `Bearer ${t.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      ...(signal ? { signal } : {}),
    });
  } catch (e) {
    throw new ApiError(0, `can't reach kaboot serve at ${t.server}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
  }
  const text = await res.text();
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (res.status >= 400) {
    const msg = (parsed as { message?: string } | undefined)?.message ?? text ?? res.statusText;
    throw new ApiError(res.status, `${method} ${path}: ${res.status} ${msg}`);
  }
  return { status: res.status, body: parsed as T };
}

/** GET a text stream (a followed log) and hand each line to onLine until it returns false or the stream ends. */
export async function followLines(t: ApiTarget, path: string, onLine: (line: string) => boolean | void, signal?: AbortSignal): Promise<void> {
  let res: Response;
  try {
    res = await fetch(`${t.server}${path}`, { headers: { authorization: `Bearer ${t.token}` }, ...(signal ? { signal } : {}) });
  } catch (e) {
    if (signal?.aborted) return;
    throw new ApiError(0, `can't reach kaboot serve at ${t.server}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
  }
  if (res.status >= 400 || !res.body) throw new ApiError(res.status, `GET ${path}: ${res.status} ${await res.text()}`);
  const decoder = new TextDecoder();
  let pending = '';
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += decoder.decode(value, { stream: true });
      let i: number;
      while ((i = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, i);
        pending = pending.slice(i + 1);
        if (onLine(line) === false) {
          await reader.cancel().catch(() => undefined);
          return;
        }
      }
    }
  } catch (e) {
    if (signal?.aborted) return;
    throw e;
  }
  if (pending) onLine(pending);
}

/** A stored log line: "<ts> <step> <stream> <text>". */
export function splitLogLine(line: string): { ts: string; step: string; stream: string; text: string } | undefined {
  const m = /^(\S+) (\S+) (\S+) ?(.*)$/.exec(line);
  return m ? { ts: m[1]!, step: m[2]!, stream: m[3]!, text: m[4]! } : undefined;
}

/** NODE as the user names it: a MAC, or a host name or address the registry knows. */
export async function resolveNode(t: ApiTarget, node: string): Promise<string> {
  const mac = node.trim().toLowerCase().replace(/-/g, ':');
  if (/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) return mac;
  const { body } = await apiRequest<{ nodes: { mac: string; hostname?: string; ip?: string }[] }>(t, 'GET', '/api/nodes');
  const hits = body.nodes.filter((n) => n.hostname === node || n.ip === node);
  if (hits.length === 1) return hits[0]!.mac;
  if (hits.length === 0) {
    // a host name a deployment gave (--hostname-pattern), the newest deployment first
    const { body: deps } = await apiRequest<{ deployments: { nodes: { mac: string; hostname?: string }[] }[] }>(t, 'GET', '/api/deployments');
    for (const d of [...deps.deployments].reverse()) {
      const n = d.nodes.find((x) => x.hostname === node);
      if (n) return n.mac;
    }
  }
  throw new ApiError(0, hits.length ? `${node} names ${hits.length} nodes (${hits.map((h) => h.mac).join(', ')}): give the MAC` : `no node ${node}: give a MAC, or a host name or address the registry knows (kaboot deploy show ID lists them)`);
}
