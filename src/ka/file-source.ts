// A file as the session's source, read straight into the source relay's ring (no
// buffer per read): reserve a view, read the file's next bytes into it, commit. It
// stops while the relay is paused and goes on when the relay resumes.
import { open, type FileHandle } from 'node:fs/promises';
import type { Relay } from './relay.js';

export class FileSource {
  private paused = false;
  private reading = false;
  private finished = false;
  private closed = false;

  private constructor(private readonly fh: FileHandle, private readonly relay: Relay, private readonly on: { end: () => void; error: (e: Error) => void }) {}

  static async open(path: string, relay: Relay, on: { end: () => void; error: (e: Error) => void }): Promise<FileSource> {
    return new FileSource(await open(path, 'r'), relay, on);
  }

  start(): void {
    void this.loop();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    void this.loop();
  }

  private async loop() {
    if (this.reading || this.finished || this.closed) return;
    this.reading = true;
    let retryLater = false;
    try {
      while (!this.paused && !this.finished && !this.closed) {
        const view = this.relay.reserveIn(this.relay.readMax);
        if (view.length === 0) {
          // no room: a paused relay resumes us; otherwise its pause state has not caught up yet, look again shortly
          if (this.relay.paused) this.paused = true;
          else retryLater = true;
          break;
        }
        const { bytesRead } = await this.fh.read(view, 0, view.length, this.relay.end);
        if (this.closed) break;
        if (bytesRead === 0) {
          this.finished = true;
          this.on.end();
          break;
        }
        if (!this.relay.commitIn(bytesRead)) this.paused = true;
      }
    } catch (e) {
      this.finished = true;
      this.on.error(e instanceof Error ? e : new Error(String(e)));
    } finally {
      this.reading = false;
    }
    if (retryLater) setTimeout(() => void this.loop(), 5);
    // a resume that came while a read was in flight
    else if (!this.paused && !this.finished && !this.closed) void this.loop();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.fh.close().catch(() => {});
  }
}
