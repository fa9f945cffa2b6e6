// Runs the real `kaboot serve` (bin/kaboot.js, compiled dist/) inside a test namespace,
// with a config written for the test, and waits until it says it is ready.
import { writeFileSync, readFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { ResultPromise } from 'execa';
import type { NetLab } from './netns.js';
import { tempDirRemovedOnPass } from './temp-dir.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const kabootBin = join(repoRoot, 'bin/kaboot.js');

export interface KabootProcess {
  proc: ResultPromise;
  dir: string;
  configFile: string;
  imagesDir: string;
  stateDir: string;
  /** JSON log lines so far */
  logs(): Record<string, unknown>[];
  token(): string;
  /** SIGTERM and wait */
  stop(): Promise<void>;
  /** SIGKILL and wait */
  kill9(): Promise<void>;
}

export function makeKabootDir(config: Record<string, unknown>, dir = tempDirRemovedOnPass('test')) {
  const imagesDir = join(dir, 'images');
  const stateDir = join(dir, 'state');
  mkdirSync(imagesDir, { recursive: true });
  const configFile = join(dir, 'kaboot.yaml');
  writeFileSync(configFile, stringify({ images_dir: imagesDir, state_dir: stateDir, log: { level: 'debug', pretty: false }, ...config }));
  return { dir, imagesDir, stateDir, configFile };
}

export async function startKaboot(lab: NetLab, ns: string, config: Record<string, unknown>, opts: { dir?: string; readyTimeoutMs?: number } = {}): Promise<KabootProcess> {
  if (!existsSync(join(repoRoot, 'dist/src/cli/main.js'))) throw new Error('dist/ is missing: run npm run build first');
  const paths = makeKabootDir(config, opts.dir);
  const logFile = join(paths.dir, `kaboot-${Date.now()}.log`);
  const proc = lab.spawn(ns, ['node', kabootBin, 'serve', '--config', paths.configFile], { stdout: { file: logFile }, stderr: { file: logFile + '.err' } });
  const logs = () => {
    let text = '';
    try { text = readFileSync(logFile, 'utf8'); } catch { /* not yet */ }
    return text.split('\n').filter(Boolean).flatMap((l) => {
      try { return [JSON.parse(l) as Record<string, unknown>]; } catch { return []; }
    });
  };
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 20000);
  for (;;) {
    if (logs().some((l) => l.msg === 'kaboot ready')) break;
    if (proc.exitCode !== null || Date.now() > deadline) {
      let err = '';
      try { err = readFileSync(logFile + '.err', 'utf8'); } catch { /* none */ }
      throw new Error(`kaboot serve did not become ready (exit ${proc.exitCode}):\n${JSON.stringify(logs().slice(-10), null, 1)}\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    proc,
    ...paths,
    logs,
    token: () => readFileSync(join(paths.stateDir, 'api-token'), 'utf8').trim(),
    async stop() {
      proc.kill('SIGTERM');
      await proc;
    },
    async kill9() {
      proc.kill('SIGKILL');
      await proc;
    },
  };
}
