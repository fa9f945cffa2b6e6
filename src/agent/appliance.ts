// Where the appliance is: the kernel command line first (kaboot writes it), else every
// lease's next-server, then its DHCP server. A candidate counts once it answers /api/health.
import type { ApplianceAddress } from './cmdline.js';
import { applianceUrl } from './cmdline.js';
import { httpRequest } from './http.js';
import type { Lease } from './dhcp.js';

export const defaultHttpPort = 80;

export function applianceCandidates(fromCmdline: ApplianceAddress | undefined, leases: Lease[], port = defaultHttpPort): string[] {
  const out: string[] = [];
  const add = (u: string) => {
    if (!out.includes(u)) out.push(u);
  };
  if (fromCmdline) add(applianceUrl(fromCmdline));
  for (const l of leases) if (l.siaddr) add(applianceUrl({ host: l.siaddr, port }));
  for (const l of leases) if (l.serverid) add(applianceUrl({ host: l.serverid, port }));
  return out;
}

/** true when a kaboot appliance answers at base */
export async function probeAppliance(base: string, timeoutMs = 3000): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    const r = await httpRequest(`${base}/api/health`, { signal: AbortSignal.timeout(timeoutMs), maxBytes: 64 * 1024 });
    if (!r.ok) return { ok: false, reason: `HTTP ${r.status}` };
    const body = JSON.parse(r.text()) as { status?: unknown };
    return body?.status === 'ok' ? { ok: true } : { ok: false, reason: 'not a kaboot health answer' };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { ok: false, reason: err.code ?? err.name ?? String(e) };
  }
}
