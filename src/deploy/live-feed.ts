// The source of one kainstall session of a live deployment: a stream handed to the KA
// coordinator when the session is made, filled later by the golden's upload of that file
// system (tar | zstd, chunked, with an x-kaboot-sha256 trailer). The upload is read only
// as fast as the session takes it: the coordinator pauses this stream, the pipe stops
// reading the request, TCP tells the golden to wait. The coordinator writes what it reads
// to its spool, so late joiners and repairs never need the golden again.
//
// An upload that breaks off (the golden killed, the link gone) or whose digest is not the
// golden's fails the stream, and with it the session, with a message saying so.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { PassThrough, Transform, type Writable } from 'node:stream';

export type FeedState = 'idle' | 'wanted' | 'feeding' | 'done' | 'failed';

export const SHA256_TRAILER = 'x-kaboot-sha256';
/** the SHA-256 of the tar stream before zstd, as push's commit carries it: checked when the upload is kept as an image */
export const TAR_SHA256_TRAILER = 'x-kaboot-tar-sha256';

export class LiveFeedError extends Error {
  override name = 'LiveFeedError';
  constructor(readonly code: 'conflict' | 'failed', message: string) {
    super(message);
  }
}

export interface FeedStatus {
  session: string;
  mount: string;
  state: FeedState;
  bytes: number;
  sha256?: string;
  error?: string;
}

export class LiveFeed {
  /** what the coordinator reads */
  readonly stream = new PassThrough({ highWaterMark: 1 << 20 });
  state: FeedState = 'idle';
  bytes = 0;
  sha256?: string;
  tarSha256?: string;
  /** why the copy of the upload (--keep) was given up */
  copyError?: string;
  error?: string;
  /** ms epoch: when the session started and wanted its source */
  wantedAt?: number;
  private failWith?: (msg: string) => void;
  private readonly failedCbs: ((msg: string) => void)[] = [];

  constructor(readonly session: string, readonly mount: string) {
    // the coordinator listens only once its session starts; a failure before is ours to report
    this.stream.on('error', () => undefined);
  }

  status(): FeedStatus {
    return { session: this.session, mount: this.mount, state: this.state, bytes: this.bytes, ...(this.sha256 ? { sha256: this.sha256 } : {}), ...(this.error ? { error: this.error } : {}) };
  }

  /** The session started: its source is wanted now. */
  want(now = Date.now()): void {
    if (this.state !== 'idle') return;
    this.state = 'wanted';
    this.wantedAt = now;
  }

  /** Called once if the feed fails (to close the session with the message). */
  onFailed(cb: (msg: string) => void): void {
    this.failedCbs.push(cb);
  }

  /**
   * Feeds an upload into the session. Resolves with its size and digest once every byte is
   * handed to the coordinator; rejects (and fails the stream) on a broken or wrong upload.
   */
  feed(body: IncomingMessage, copy?: Writable): Promise<{ bytes: number; sha256: string; tarSha256?: string }> {
    if (this.state === 'feeding') return Promise.reject(new LiveFeedError('conflict', `${this.session} (${this.mount}) is being fed by another upload`));
    if (this.state === 'done') return Promise.reject(new LiveFeedError('conflict', `${this.session} (${this.mount}) has had its stream`));
    if (this.state === 'failed') return Promise.reject(new LiveFeedError('conflict', `${this.session} (${this.mount}) failed: ${this.error}`));
    this.state = 'feeding';
    const hash = createHash('sha256');
    return new Promise((resolve, reject) => {
      let settled = false;
      const tap = new Transform({
        highWaterMark: 1 << 20,
        transform: (chunk: Buffer, _e, done) => {
          hash.update(chunk);
          this.bytes += chunk.length;
          // a copy (--keep) is written at its own pace: the session waits for it too
          if (kept && !kept.write(chunk)) {
            waitingDrain = () => done(null, chunk);
            kept.once('drain', () => {
              const w = waitingDrain;
              waitingDrain = undefined;
              w?.();
            });
          } else done(null, chunk);
        },
        flush: (done) => {
          if (kept) kept.end(() => check(done));
          else check(done);
        },
      });
      // a copy that cannot be written is given up, not the deployment
      let kept = copy;
      let waitingDrain: (() => void) | undefined;
      copy?.on('error', (e: Error) => {
        this.copyError = e.message;
        kept = undefined;
        const w = waitingDrain;
        waitingDrain = undefined;
        w?.();
      });
      const check = (done: (e?: Error | null) => void) => {
        if (copy && !kept && !this.copyError) this.copyError = 'the copy was not complete';
        const digest = hash.digest('hex');
        const said = body.trailers[SHA256_TRAILER];
        if (!said) done(new Error(`the golden's upload of ${this.mount} ended without its ${SHA256_TRAILER} trailer (${this.bytes} bytes): not a kaboot deploy --live upload, or cut short`));
        else if (said !== digest) done(new Error(`the golden sent ${this.mount} with sha256 ${said}, the appliance received ${this.bytes} bytes with sha256 ${digest}`));
        else {
          this.sha256 = digest;
          const tar = body.trailers[TAR_SHA256_TRAILER];
          if (tar && /^[0-9a-f]{64}$/.test(tar)) this.tarSha256 = tar;
          done();
        }
      };
      const fail = (msg: string) => {
        if (settled) return;
        settled = true;
        this.state = 'failed';
        this.error = msg;
        body.unpipe(tap);
        tap.unpipe(this.stream);
        tap.destroy();
        copy?.destroy();
        this.stream.destroy(new Error(msg));
        for (const cb of this.failedCbs.splice(0)) cb(msg);
        reject(new LiveFeedError('failed', msg));
      };
      this.failWith = fail;
      const broken = (why: string) => fail(`the golden's upload of ${this.mount} broke off after ${this.bytes} bytes (${why}): the golden stopped or its link went down`);
      body.once('error', (e: Error) => broken(e.message));
      body.once('close', () => {
        if (!body.complete) broken('connection closed');
      });
      tap.once('error', (e: Error) => fail(e.message));
      this.stream.once('finish', () => {
        if (settled) return;
        settled = true;
        this.state = 'done';
        resolve({ bytes: this.bytes, sha256: this.sha256!, ...(this.tarSha256 ? { tarSha256: this.tarSha256 } : {}) });
      });
      body.pipe(tap).pipe(this.stream);
    });
  }

  /** The session ended without this feed: stop an upload in progress, fail a feed never done. */
  abort(reason: string): void {
    if (this.state === 'done' || this.state === 'failed') return;
    if (this.state === 'feeding' && this.failWith) {
      // the upload's handler answers with the reason and closes the connection
      this.failWith(reason);
      return;
    }
    this.state = 'failed';
    this.error = reason;
    this.stream.destroy(new Error(reason));
  }
}
