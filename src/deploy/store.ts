// Deployments on disk: state_dir/deployments/<id>.json, each replaced atomically on every
// change, all read back when the appliance starts.
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../util/atomic-write.js';
import { DEPLOYMENT_ID_RE, type Deployment } from './deployment.js';

export class DeploymentStore {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'deployments');
    mkdirSync(this.dir, { recursive: true });
  }

  save(d: Deployment): void {
    writeFileAtomicSync(join(this.dir, `${d.id}.json`), JSON.stringify(d, null, 2) + '\n');
  }

  /** Every stored deployment, oldest first; files that do not parse are reported, not fatal. */
  loadAll(): { deployments: Deployment[]; problems: string[] } {
    const deployments: Deployment[] = [];
    const problems: string[] = [];
    for (const name of readdirSync(this.dir).sort()) {
      if (!name.endsWith('.json') || !DEPLOYMENT_ID_RE.test(name.slice(0, -5))) continue;
      const file = join(this.dir, name);
      try {
        const d = JSON.parse(readFileSync(file, 'utf8')) as Deployment;
        if (d.format !== 1 || d.id !== name.slice(0, -5) || !Array.isArray(d.nodes)) throw new Error('not a kaboot deployment (format 1)');
        deployments.push(d);
      } catch (e) {
        problems.push(`${file}: ${(e as Error).message}`);
      }
    }
    return { deployments, problems };
  }
}
