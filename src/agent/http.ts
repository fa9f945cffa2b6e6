// The agent's HTTP client for the appliance, on node:http. Not fetch: its HTTP parser is
// WebAssembly, compiled at the first response, and under an emulated CPU that compile held up
// the agent's first request by most of a second; node:http parses with the built-in llhttp.
// Bodies are small (JSON, log batches, an ACL file): read whole.
import { request } from 'node:http';

export interface HttpAnswer {
  status: number;
  ok: boolean;
  body: Buffer;
  text(): string;
}

export interface HttpOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  /** the answer may not be bigger (default 64 MiB) */
  maxBytes?: number;
}

export function httpRequest(url: string, o: HttpOptions = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    if (u.protocol !== 'http:') {
      reject(new Error(`${url}: only http:// (the appliance's address on the deploy network)`));
      return;
    }
    const body = o.body === undefined ? undefined : Buffer.from(o.body);
    const req = request(u, {
      method: o.method ?? 'GET',
      headers: { ...o.headers, ...(body ? { 'content-length': String(body.length) } : {}) },
      ...(o.signal ? { signal: o.signal } : {}),
    }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const max = o.maxBytes ?? 64 * 1024 * 1024;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > max) {
          req.destroy(new Error(`${url}: answer larger than ${max} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('error', reject);
      res.on('end', () => {
        const data = Buffer.concat(chunks);
        const status = res.statusCode ?? 0;
        resolve({ status, ok: status >= 200 && status < 300, body: data, text: () => data.toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}
