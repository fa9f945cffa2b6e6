// After a UEFI deploy, the next boot (and only it) goes straight to the disk: an NVRAM entry
// for the ESP's removable-path loader, made without touching BootOrder, and BootNext set to
// it. The firmware's network boot stays first for every later boot, so the appliance still
// decides them; the first one skips the NIC's ROM, DHCP and iPXE's hand-over to the disk.
// Best effort: a firmware that refuses the write boots over the network as before.
import { join } from 'node:path';
import type { StepContext } from '../steps.js';
import { mountOnce } from './finish.js';
import { chrootEnv, type DeployState } from './types.js';

/** The label of kaboot's entry; one per node, replaced at each deploy. */
export const BOOT_ENTRY_LABEL = 'kaboot local disk';
/** grub-install --removable puts GRUB here on the ESP (bootloader.ts). */
export const REMOVABLE_LOADER = '\\EFI\\BOOT\\BOOTX64.EFI';

export interface BootEntry {
  /** four hex digits, as efibootmgr prints them */
  num: string;
  active: boolean;
  label: string;
}

/** The Boot#### lines of efibootmgr's listing. */
export function parseBootEntries(text: string): BootEntry[] {
  const out: BootEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^Boot([0-9A-Fa-f]{4})(\*?)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    // efibootmgr prints the device path after the label, separated by a tab (newer versions) or in -v only
    const label = m[3]!.split('\t')[0]!.trim();
    out.push({ num: m[1]!.toUpperCase(), active: m[2] === '*', label });
  }
  return out;
}

/** Entries that are kaboot's from an earlier deploy (they go before the new one is made). */
export function staleKabootEntries(entries: BootEntry[]): string[] {
  return entries.filter((e) => e.label === BOOT_ENTRY_LABEL).map((e) => e.num);
}

/** efibootmgr's argv (in stage2) to make the entry without putting it in BootOrder. */
export function createEntryArgs(disk: string, partition: number): string[] {
  return ['efibootmgr', '--create-only', '--disk', disk, '--part', String(partition), '--label', BOOT_ENTRY_LABEL, '--loader', REMOVABLE_LOADER];
}

/** Makes the entry for the ESP (partition `part` of `disk`, /dev/vda) and sets BootNext; says why when it cannot. */
export async function bootNextToDisk(ctx: StepContext<DeployState>, disk: string, part: number): Promise<void> {
  const s = ctx.state;
  const skip = (why: string) => ctx.say(`first boot: over the network as usual (${why})`);
  const efivars = join(s.paths.stage2, 'sys/firmware/efi/efivars');
  if (!(await mountOnce(ctx, efivars, ['-t', 'efivarfs', 'efivarfs'], { allowFailure: true }))) return skip('efivarfs cannot be mounted');
  const efibootmgr = (args: string[]) => ctx.exec(s.busybox, ['chroot', s.paths.stage2, ...args], { env: chrootEnv, allowFailure: true });
  const list = await efibootmgr(['efibootmgr']);
  if (list.exitCode !== 0) return skip(`efibootmgr exited with ${list.exitCode}`);
  for (const num of staleKabootEntries(parseBootEntries(list.stdout.join('\n')))) {
    await efibootmgr(['efibootmgr', '--quiet', '--bootnum', num, '--delete-bootnum']);
  }
  const made = await efibootmgr(createEntryArgs(disk, part));
  if (made.exitCode !== 0) return skip(`efibootmgr --create-only exited with ${made.exitCode}`);
  const ours = (text: string[]) => parseBootEntries(text.join('\n')).find((e) => e.label === BOOT_ENTRY_LABEL);
  const entry = ours(made.stdout) ?? ours((await efibootmgr(['efibootmgr'])).stdout);
  if (!entry) return skip('the new boot entry is not in efibootmgr\'s listing');
  const next = await efibootmgr(['efibootmgr', '--quiet', '--bootnext', entry.num]);
  if (next.exitCode !== 0) return skip(`efibootmgr --bootnext exited with ${next.exitCode}`);
  ctx.say(`first boot: from ${disk} (NVRAM entry Boot${entry.num} "${BOOT_ENTRY_LABEL}" as BootNext; BootOrder unchanged, later boots ask the appliance)`);
}
