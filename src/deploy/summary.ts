// The end-of-deployment table: per node its state, the failing step, bytes received,
// mean rate and duration. Used by the appliance's log and by `kaboot deploy show`.
import type { DeployNode, Deployment } from './deployment.js';

const MB = 1024 * 1024;

export function nodeDurationS(n: DeployNode): number | undefined {
  if (!n.started) return undefined;
  const end = n.finished ? Date.parse(n.finished) : Date.now();
  return Math.max(0, (end - Date.parse(n.started)) / 1000);
}

export function summaryRows(d: Deployment): { mac: string; n: number; state: string; step: string | null; message: string | null; bytes: number; rate_mbs: number; duration_s: number | null }[] {
  return d.nodes.map((n) => {
    const dur = nodeDurationS(n);
    return {
      mac: n.mac,
      n: n.n,
      state: n.state,
      step: n.step ?? null,
      message: n.message ?? null,
      bytes: n.bytes ?? 0,
      rate_mbs: Number(((n.rate ?? 0) / MB).toFixed(1)),
      duration_s: dur === undefined ? null : Number(dur.toFixed(1)),
    };
  });
}

export function formatDeployment(d: Deployment | Omit<Deployment, 'token'>): string {
  const lines = [
    `deployment ${d.id}: image ${d.image}, ${d.state}${d.message ? ` (${d.message})` : ''}`,
    `created ${d.created}${d.finished ? `, finished ${d.finished}` : ''}; nodes ${d.nodes.length}/${d.want}${d.recruiting ? ' (recruiting: the next unknown nodes that PXE boot join)' : ''}`,
    'n    mac                state      step          bytes          MB/s   seconds  message',
  ];
  for (const r of summaryRows(d as Deployment)) {
    lines.push([
      String(r.n).padEnd(4),
      r.mac.padEnd(18),
      r.state.padEnd(10),
      (r.step ?? '-').slice(0, 13).padEnd(13),
      String(r.bytes).padStart(12),
      r.rate_mbs.toFixed(1).padStart(7),
      (r.duration_s === null ? '-' : r.duration_s.toFixed(1)).padStart(9),
      r.message ? ` ${r.message}` : '',
    ].join(' '));
  }
  return lines.join('\n') + '\n';
}
