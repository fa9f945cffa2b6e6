// kaboot deploy --live --keep NAME: what the golden streams to the nodes is also stored as
// an image, as if it had been pushed. Each upload is copied as it passes (into the image's
// staging folder, so a crash leaves nothing in the store); once an upload is complete and
// its digest checked, the copy goes through the store's usual path (squashfs, scan, the
// stream kept as is), and when every file system is in, the image is committed, with the
// tar digests the golden sent (as push's commit does), the desc, the bootloader and the
// boot code of the live request. A keep that fails says why and leaves the deployment alone.
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageStore, Staging } from '../images/store.js';
import type { ImageManifest } from '../images/manifest.js';
import type { LiveSource } from './deployment.js';
import { liveBootCode } from './live.js';

export class LiveKeeper {
  private readonly expect: Record<string, string> = {};
  private chain: Promise<void> = Promise.resolve();
  private failed?: string;
  private done = false;

  private constructor(readonly name: string, private readonly staging: Staging, private readonly live: LiveSource, private readonly mounts: string[]) {}

  static async begin(store: ImageStore, name: string, live: LiveSource, mounts: string[]): Promise<LiveKeeper> {
    return new LiveKeeper(name, await store.begin(name), live, mounts);
  }

  /** Where an upload is copied while it passes. */
  copyFor(session: string): WriteStream {
    return createWriteStream(this.copyPath(session), { mode: 0o600 });
  }

  private copyPath(session: string): string {
    return join(this.staging.dir, `live-${session}.tar.zst`);
  }

  /** An upload is complete: store it (one file system at a time); commit after the last. */
  uploaded(session: string, meta: { mount: string; fstype: string; label?: string; uuid?: string }, tarSha256: string | undefined, copyError: string | undefined): Promise<ImageManifest | undefined> {
    const run = this.chain.then(async () => {
      if (this.failed || this.done) return undefined;
      const file = this.copyPath(session);
      try {
        if (copyError) throw new Error(`the copy of ${meta.mount} was not written: ${copyError}`);
        if (!tarSha256) throw new Error(`the golden did not send the tar digest of ${meta.mount}`);
        await this.staging.addFilesystem({ zstd: createReadStream(file) }, { mount: meta.mount, fstype: meta.fstype, ...(meta.label ? { label: meta.label } : {}), ...(meta.uuid ? { uuid: meta.uuid } : {}) });
        this.expect[meta.mount] = tarSha256;
      } catch (e) {
        await this.fail((e as Error).message);
        return undefined;
      } finally {
        await rm(file, { force: true });
      }
      if (!this.mounts.every((m) => m in this.expect)) return undefined;
      try {
        const m = await this.staging.commit({
          source: { kind: 'live', host: this.live.host, paths: this.live.paths },
          ...(this.live.desc ? { desc: this.live.desc } : {}),
          bootloader: this.live.bootloader,
          expect: this.expect,
          bootCode: liveBootCode(this.live),
        });
        this.done = true;
        return m;
      } catch (e) {
        await this.fail((e as Error).message);
        return undefined;
      }
    });
    this.chain = run.then(() => undefined, () => undefined);
    return run;
  }

  get error(): string | undefined {
    return this.failed;
  }

  async fail(reason: string): Promise<void> {
    if (this.done || this.failed) return;
    this.failed = reason;
    await this.staging.abort();
  }

  /** The deployment ended: an image not complete by now never will be. */
  async close(reason: string): Promise<void> {
    await this.chain;
    if (!this.done) await this.fail(reason);
  }
}
