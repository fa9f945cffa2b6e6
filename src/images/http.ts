// /api/images: the store over HTTP, and the receiving side of `kaboot image push`.
// Register under the API prefix: app.register(imageRoutes, { prefix: '/api', imagesDir, token }).
// A push is three steps, so that a multi-file-system image appears whole or not at all:
//   POST /images/:name/captures                    → { capture }       (staging folder)
//   POST /images/:name/fs/<mount>?capture=ID       body: zstd of a tar stream (application/zstd)
//                                                  or the tar itself (application/x-tar)
//   POST /images/:name/commit?capture=ID           body: { source, desc, bootloader, expect: {mount: tar sha256} }
// and DELETE /images/:name/captures/:capture to give up.
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { Readable } from 'node:stream';
import { requireToken } from '../http/auth.js';
import { ImageStore, ImageStoreError, type Staging } from './store.js';
import { CaptureError } from './squashfs.js';
import { Bootloader, FS_UUID_RE, IMAGE_NAME_RE, MOUNT_RE, ManifestError } from './manifest.js';
import { sha256Hex } from './boot-code.js';

export interface ImageRoutesOptions {
  imagesDir: string;
  token: string;
  /** a capture with no request for this long is dropped (ms) */
  idleCaptureMs?: number;
}

const NameParam = Type.Object({ name: Type.String({ pattern: IMAGE_NAME_RE.source }) });
const CaptureQuery = Type.Object({
  capture: Type.String({ pattern: '^[0-9a-f]{12}$' }),
  fstype: Type.Optional(Type.String({ pattern: '^[a-z0-9_.]{1,32}$' })),
  label: Type.Optional(Type.String({ maxLength: 255 })),
  uuid: Type.Optional(Type.String({ pattern: FS_UUID_RE.source })),
}, { additionalProperties: false });
const CommitBody = Type.Object({
  source: Type.Object({ host: Type.Optional(Type.String({ maxLength: 255 })), paths: Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 64 }) }, { additionalProperties: false }),
  desc: Type.Optional(Type.String({ maxLength: 64 * 1024 })),
  bootloader: Type.Optional(Bootloader),
  expect: Type.Record(Type.String(), Type.String({ pattern: '^[0-9a-f]{64}$' })),
  warnings: Type.Optional(Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 100 })),
  /** MBR boot code per golden drive: 446 bytes in base64, and their sha256 as the golden read them */
  boot_code: Type.Optional(Type.Array(Type.Object({
    drive: Type.String({ pattern: '^[a-z][a-z0-9]{0,31}$' }),
    source: Type.String({ maxLength: 4096 }),
    base64: Type.String({ maxLength: 1024 }),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  }, { additionalProperties: false }), { maxItems: 32 })),
}, { additionalProperties: false });

interface OpenCapture { staging: Staging; touched: number }

function sendError(reply: FastifyReply, e: unknown): FastifyReply {
  if (e instanceof ImageStoreError) {
    const status = { 'bad-name': 400, exists: 409, 'not-found': 404, 'bad-request': 400, busy: 409 }[e.code];
    return reply.code(status).send({ error: e.code, message: e.message });
  }
  if (e instanceof CaptureError) return reply.code(422).send({ error: 'capture failed', message: e.message });
  if (e instanceof ManifestError) return reply.code(500).send({ error: 'bad manifest', message: e.message });
  throw e;
}

export const imageRoutes: FastifyPluginAsync<ImageRoutesOptions> = async (app, opts) => {
  const store = await ImageStore.open(opts.imagesDir);
  const auth = requireToken(opts.token);
  const captures = new Map<string, OpenCapture>(); // by capture id
  const idleMs = opts.idleCaptureMs ?? 60 * 60 * 1000;

  const dropIdle = async () => {
    for (const [id, c] of captures) {
      if (!c.staging.receiving && Date.now() - c.touched > idleMs) {
        captures.delete(id);
        await c.staging.abort();
        app.log.warn({ image: c.staging.name, capture: id }, 'image capture dropped: idle');
      }
    }
  };
  const captureFor = (name: string, id: string): OpenCapture => {
    const c = captures.get(id);
    if (!c || c.staging.name !== name) throw new ImageStoreError('not-found', `no capture ${id} of image ${name} in progress (the appliance restarted, or it was committed or dropped)`);
    c.touched = Date.now();
    return c;
  };
  app.addHook('onClose', async () => {
    for (const c of captures.values()) await c.staging.abort();
    captures.clear();
  });

  // Upload bodies stay streams: no size limit, never buffered.
  app.addContentTypeParser(['application/zstd', 'application/x-tar'], (_req, payload, done) => done(null, payload));

  app.get('/images', async (_req, reply) => {
    try {
      return { images: await store.list() };
    } catch (e) {
      return sendError(reply, e);
    }
  });

  app.get<{ Params: Static<typeof NameParam> }>('/images/:name', { schema: { params: NameParam } }, async (req, reply) => {
    try {
      const m = await store.get(req.params.name);
      return m ?? reply.code(404).send({ error: 'not found', message: `no image ${req.params.name}` });
    } catch (e) {
      return sendError(reply, e);
    }
  });

  app.delete<{ Params: Static<typeof NameParam> }>('/images/:name', { preHandler: auth, schema: { params: NameParam } }, async (req, reply) => {
    try {
      return (await store.remove(req.params.name)) ? reply.code(204).send() : reply.code(404).send({ error: 'not found', message: `no image ${req.params.name}` });
    } catch (e) {
      return sendError(reply, e);
    }
  });

  app.post<{ Params: Static<typeof NameParam> }>('/images/:name/captures', { preHandler: auth, schema: { params: NameParam } }, async (req, reply) => {
    try {
      await dropIdle();
      if ([...captures.values()].some((c) => c.staging.name === req.params.name)) throw new ImageStoreError('busy', `image ${req.params.name} is being captured already`);
      const staging = await store.begin(req.params.name);
      captures.set(staging.id, { staging, touched: Date.now() });
      req.log.info({ image: req.params.name, capture: staging.id, client: req.ip }, 'image capture started');
      return reply.code(201).send({ name: req.params.name, capture: staging.id });
    } catch (e) {
      return sendError(reply, e);
    }
  });

  app.delete<{ Params: Static<typeof NameParam> & { capture: string } }>('/images/:name/captures/:capture', { preHandler: auth }, async (req, reply) => {
    try {
      const c = captureFor(req.params.name, req.params.capture);
      captures.delete(req.params.capture);
      await c.staging.abort();
      return reply.code(204).send();
    } catch (e) {
      return sendError(reply, e);
    }
  });

  app.post<{ Params: Static<typeof NameParam> & { '*': string }; Querystring: Static<typeof CaptureQuery> }>(
    '/images/:name/fs/*',
    { preHandler: auth, schema: { querystring: CaptureQuery } },
    async (req, reply) => {
      const name = req.params.name;
      const mount = '/' + (req.params['*'] ?? '').replace(/\/+$/, '');
      try {
        if (!IMAGE_NAME_RE.test(name)) throw new ImageStoreError('bad-name', `image name ${JSON.stringify(name)} is not valid`);
        if (!MOUNT_RE.test(mount) || mount.split('/').some((c) => c === '..' || c === '.')) throw new ImageStoreError('bad-request', `mount point ${JSON.stringify(mount)} is not valid`);
        const type = req.headers['content-type'];
        if (type !== 'application/zstd' && type !== 'application/x-tar') throw new ImageStoreError('bad-request', 'send the tar stream as application/zstd (or application/x-tar)');
        const c = captureFor(name, req.query.capture);
        const body = req.body as Readable;
        const aborted = new AbortController();
        req.raw.once('close', () => {
          if (!req.raw.complete) aborted.abort(new Error('the client went away'));
        });
        const rec = await c.staging.addFilesystem(type === 'application/zstd' ? { zstd: body } : { tar: body }, { mount, fstype: req.query.fstype, label: req.query.label, uuid: req.query.uuid }, aborted.signal);
        c.touched = Date.now();
        req.log.info({ image: name, mount, tar_bytes: rec.tar_bytes, squashfs_bytes: rec.squashfs_bytes, files: rec.files }, 'image file system received');
        return rec;
      } catch (e) {
        req.log.warn({ image: name, mount, err: (e as Error).message }, 'image file system upload failed');
        return sendError(reply, e);
      }
    },
  );

  app.post<{ Params: Static<typeof NameParam>; Querystring: { capture: string }; Body: Static<typeof CommitBody> }>(
    '/images/:name/commit',
    { preHandler: auth, schema: { params: NameParam, querystring: Type.Object({ capture: Type.String({ pattern: '^[0-9a-f]{12}$' }) }), body: CommitBody } },
    async (req, reply) => {
      try {
        const c = captureFor(req.params.name, req.query.capture);
        const expected = Object.keys(req.body.expect).sort();
        const got = [...c.staging.mounts].sort();
        if (expected.join('\n') !== got.join('\n')) throw new ImageStoreError('bad-request', `the sender sent ${expected.join(', ') || 'nothing'}, the appliance received ${got.join(', ') || 'nothing'}`);
        const bootCode = (req.body.boot_code ?? []).map((b) => {
          const bytes = Buffer.from(b.base64, 'base64');
          if (sha256Hex(bytes) !== b.sha256) throw new ImageStoreError('bad-request', `boot code of ${b.drive}: the golden read sha256 ${b.sha256}, the appliance received ${sha256Hex(bytes)}`);
          return { drive: b.drive, source: b.source, bytes };
        });
        const manifest = await c.staging.commit({
          source: { kind: 'push', host: req.body.source.host ?? req.ip, paths: req.body.source.paths },
          desc: req.body.desc, bootloader: req.body.bootloader, expect: req.body.expect, warnings: req.body.warnings,
          ...(bootCode.length ? { bootCode } : {}),
        });
        captures.delete(req.query.capture);
        req.log.info({ image: manifest.name, filesystems: manifest.filesystems.length }, 'image captured');
        return reply.code(201).send(manifest);
      } catch (e) {
        return sendError(reply, e);
      }
    },
  );
};
