// One log file per node on the appliance (the seed's store_log.sh): state_dir/logs/<mac>.log,
// appended line by line, rotated at a size with N old files kept (<mac>.log.1 is the newest old one).
// Followers (GET ...?follow=1) subscribe to the lines appended after they joined.
import { appendFileSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { normalizeMac } from './registry.js';

export interface NodeLogOptions {
  /** rotate when the current file would grow past this many bytes */
  maxBytes?: number;
  /** old files kept after a rotation */
  keep?: number;
}

/** One line a node sent: which step, which stream, the text, when. */
export interface NodeLogLine {
  step?: string;
  stream?: 'stdout' | 'stderr' | 'status' | 'agent';
  line: string;
  /** ISO time; the appliance's time when the node gave none */
  ts?: string;
}

export class NotAMacError extends Error {}

/** The stored form: "<ts> <step> <stream> <line>", one physical line whatever the node sent. */
export function formatLogLine(l: NodeLogLine, now: Date = new Date()): string {
  const ts = l.ts && !Number.isNaN(Date.parse(l.ts)) ? new Date(l.ts).toISOString() : now.toISOString();
  const clean = l.line.replace(/\r?\n|\r/g, ' ').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
  return `${ts} ${l.step || '-'} ${l.stream || 'stdout'} ${clean}`;
}

export class NodeLogs {
  readonly dir: string;
  private readonly maxBytes: number;
  private readonly keep: number;
  private readonly events = new EventEmitter();

  constructor(stateDir: string, opts: NodeLogOptions = {}) {
    this.dir = join(stateDir, 'logs');
    this.maxBytes = opts.maxBytes ?? 8 * 1024 * 1024;
    this.keep = opts.keep ?? 3;
    mkdirSync(this.dir, { recursive: true });
    this.events.setMaxListeners(0);
  }

  file(mac: string): string {
    const m = normalizeMac(mac);
    if (!m) throw new NotAMacError(`not a MAC address: ${JSON.stringify(mac)}`);
    return join(this.dir, `${m.replace(/:/g, '-')}.log`);
  }

  /** Appends the lines (already formatted by formatLogLine) and tells the followers. */
  append(mac: string, lines: string[]): void {
    if (lines.length === 0) return;
    const file = this.file(mac);
    const text = lines.map((l) => l + '\n').join('');
    const size = sizeOf(file);
    if (size > 0 && size + Buffer.byteLength(text) > this.maxBytes) this.rotate(file);
    appendFileSync(file, text);
    this.events.emit(file, text);
  }

  /** The current file (not the rotated ones); empty when the node never logged. */
  read(mac: string): string {
    try {
      return readFileSync(this.file(mac), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw e;
    }
  }

  /** Calls onText with every chunk appended from now on; returns the unsubscribe function. */
  follow(mac: string, onText: (text: string) => void): () => void {
    const file = this.file(mac);
    this.events.on(file, onText);
    return () => this.events.off(file, onText);
  }

  rotated(mac: string): string[] {
    const file = this.file(mac);
    const out: string[] = [];
    for (let i = 1; i <= this.keep; i++) if (exists(`${file}.${i}`)) out.push(`${file}.${i}`);
    return out;
  }

  private rotate(file: string): void {
    if (this.keep <= 0) {
      rmSync(file, { force: true });
      return;
    }
    rmSync(`${file}.${this.keep}`, { force: true });
    for (let i = this.keep - 1; i >= 1; i--) if (exists(`${file}.${i}`)) renameSync(`${file}.${i}`, `${file}.${i + 1}`);
    renameSync(file, `${file}.1`);
  }
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function exists(file: string): boolean {
  try {
    statSync(file);
    return true;
  } catch {
    return false;
  }
}
