// The agent as one CommonJS file (what a Node single executable runs), with esbuild.
import { join } from 'node:path';
import { createHash } from 'node:crypto';

export async function bundleAgent(root: string, nodeVersion: string): Promise<Buffer> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    throw new Error('esbuild is not installed (it comes with the dev dependencies: npm install in the kaboot checkout)');
  }
  const r = await esbuild.build({
    entryPoints: [join(root, 'src/agent/cli.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: `node${nodeVersion.split('.')[0]}`,
    minify: true,
    legalComments: 'none',
    charset: 'utf8',
    write: false,
    logLevel: 'silent',
    absWorkingDir: root,
  });
  const out = r.outputFiles[0];
  if (!out) throw new Error('esbuild gave no output');
  return Buffer.from(out.contents);
}

export function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}
