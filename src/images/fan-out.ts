// One stream into several writers with backpressure (the slowest sets the pace): the tar
// stream of a capture goes both into the squashfs builder and into the stored deploy
// stream. Any failure, or a source that closes before its end, stops the writers;
// the source is drained, its producer is stopped by whoever started it.
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

export function fanOut(src: Readable, dests: Writable[]): Promise<void> {
  return new Promise((resolve, reject) => {
    let failed = false;
    let left = dests.length;
    const fail = (e: unknown) => {
      if (failed) return;
      failed = true;
      for (const d of dests) src.unpipe(d);
      // drain rather than destroy: destroying an HTTP request body would reset the
      // connection before the appliance could answer why it refused the stream
      src.resume();
      for (const d of dests) d.destroy(e instanceof Error ? e : new Error(String(e)));
      reject(e);
    };
    src.once('error', fail);
    src.once('close', () => {
      if (!src.readableEnded) fail(new Error('the stream closed before its end'));
    });
    for (const d of dests) {
      finished(d).then(() => {
        if (--left === 0 && !failed) resolve();
      }, fail);
      src.pipe(d);
    }
  });
}
