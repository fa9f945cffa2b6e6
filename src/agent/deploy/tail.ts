// A consumer's error file read while the consumer runs, so its complaints reach the log as
// they happen and not only at the end (a hung tar says why while it hangs). Whole lines only;
// what is left when it stops is said too.
import { openSync, readSync, closeSync, fstatSync } from 'node:fs';

export interface FileTail {
  /** reads what is left, says it, stops */
  stop(): void;
}

/** Splits text into whole lines and the unfinished rest. Pure. */
export function splitLines(pending: string): { lines: string[]; rest: string } {
  const parts = pending.split('\n');
  const rest = parts.pop() ?? '';
  return { lines: parts.filter((l) => l.trim() !== ''), rest };
}

export function tailFile(path: string, say: (line: string) => void, everyMs = 1000): FileTail {
  let offset = 0;
  let pending = '';
  const buf = Buffer.alloc(64 * 1024);
  const read = () => {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      return; // not made yet
    }
    try {
      if (fstatSync(fd).size < offset) offset = 0; // truncated: a new consumer
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, offset);
        if (n <= 0) break;
        offset += n;
        pending += buf.subarray(0, n).toString('utf8');
      }
    } finally {
      closeSync(fd);
    }
    const { lines, rest } = splitLines(pending);
    pending = rest.length > 60_000 ? '' : rest;
    for (const l of lines) say(l.slice(0, 4000));
  };
  const timer = setInterval(read, everyMs);
  return {
    stop() {
      clearInterval(timer);
      read();
      if (pending.trim()) say(pending.slice(0, 4000));
      pending = '';
    },
  };
}
