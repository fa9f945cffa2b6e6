// bootloader: GRUB for the firmware the node booted with (BIOS: i386-pc boot code on the disk,
// the clone's own grub-install when it has grub-pc, else stage2's; UEFI: stage2's x86_64-efi
// into the ESP at the removable path, and BootNext to it for the first boot, boot-next.ts), then the menu: the image's own
// with the new UUIDs when it fits the node (grub-menu.ts), else the clone's update-grub in its
// chroot; or extlinux (BIOS only). The seed's make_initrd_grub.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Firmware } from '../firmware.js';
import type { DescPlan } from '../../images/desc.js';
import { GPT } from '../../images/part-types.js';
import type { Step } from '../steps.js';
import { bootNextToDisk } from './boot-next.js';
import { grubMenuFor } from './grub-menu.js';
import { bindIntoTarget, isPlainFile } from './prepare.js';
import { targetDir } from './shell.js';
import { chrootEnv, planOf, type DeployState } from './types.js';

export interface ChrootCommand {
  /** 'clone': chroot /stage2/target; 'stage2': chroot /stage2 (the clone is at /target) */
  where: 'clone' | 'stage2';
  argv: string[];
}

const has = (exists: (rel: string) => boolean, tool: string) => ['usr/sbin', 'usr/bin', 'sbin', 'bin'].some((d) => exists(`${d}/${tool}`));

/** grub-install for the firmware. `cloneExists` answers for paths in the clone (relative). */
export function grubInstallCommands(firmware: Firmware, disk: string, cloneExists: (rel: string) => boolean): ChrootCommand[] {
  if (firmware === 'uefi') {
    return [{ where: 'stage2', argv: ['grub-install', '--target=x86_64-efi', '--efi-directory=/target/boot/efi', '--boot-directory=/target/boot', '--removable', '--no-nvram', '--recheck'] }];
  }
  if (has(cloneExists, 'grub-install') && cloneExists('usr/lib/grub/i386-pc/modinfo.sh')) {
    return [{ where: 'clone', argv: ['grub-install', '--target=i386-pc', '--recheck', disk] }];
  }
  return [{ where: 'stage2', argv: ['grub-install', '--target=i386-pc', '--boot-directory=/target/boot', '--directory=/usr/lib/grub/i386-pc', '--recheck', disk] }];
}

/** The clone's way to write its grub.cfg (Debian's update-grub, else grub-mkconfig, else grub2-mkconfig). */
export function grubConfigCommand(cloneExists: (rel: string) => boolean): string[] | undefined {
  if (has(cloneExists, 'update-grub')) return ['update-grub'];
  if (has(cloneExists, 'grub-mkconfig')) return ['grub-mkconfig', '-o', '/boot/grub/grub.cfg'];
  if (has(cloneExists, 'grub2-mkconfig')) return ['grub2-mkconfig', '-o', '/boot/grub2/grub.cfg'];
  return undefined;
}

/** Why GRUB cannot go on this disk for this firmware, or nothing: on BIOS a GPT needs a BIOS boot partition to embed core.img. */
export function grubDiskProblem(firmware: Firmware, desc: DescPlan): string | undefined {
  if (firmware !== 'bios' || desc.label !== 'gpt') return undefined;
  if (desc.partitions.some((p) => p.typeCode.toUpperCase() === GPT.biosBoot)) return undefined;
  return `GRUB for BIOS on a GPT disk needs a BIOS boot partition: add "type${GPT.biosBoot} 1" to the desc (or give this drive a DOS label with -p)`;
}

/** /etc/default/grub with words added to GRUB_CMDLINE_LINUX (each once). */
export function appendToGrubDefault(text: string, words: string): string {
  const add = words.trim().split(/\s+/).filter(Boolean);
  if (add.length === 0) return text;
  const re = /^GRUB_CMDLINE_LINUX=(["']?)(.*?)\1[ \t]*$/m;
  const m = re.exec(text);
  if (!m) return `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}GRUB_CMDLINE_LINUX="${add.join(' ')}"\n`;
  const have = m[2]!.split(/\s+/).filter(Boolean);
  const merged = [...have, ...add.filter((w) => !have.includes(w))].join(' ');
  return text.replace(re, `GRUB_CMDLINE_LINUX="${merged}"`);
}

/** extlinux into the clone's /boot/extlinux (or syslinux) and syslinux's MBR boot code for the label. */
export function extlinuxCommands(disk: string, label: 'dos' | 'gpt', cloneExists: (rel: string) => boolean): ChrootCommand[] {
  const dir = cloneExists('boot/syslinux/syslinux.cfg') && !cloneExists('boot/extlinux/extlinux.conf') ? '/target/boot/syslinux' : '/target/boot/extlinux';
  const mbr = label === 'gpt' ? 'gptmbr.bin' : 'mbr.bin';
  return [
    { where: 'stage2', argv: ['extlinux', '--install', dir] },
    { where: 'stage2', argv: ['dd', `if=/usr/lib/syslinux/mbr/${mbr}`, `of=${disk}`, 'bs=440', 'count=1', 'conv=notrunc,fsync'] },
  ];
}

export const bootloaderStep: Step<DeployState> = {
  name: 'bootloader',
  async run(ctx) {
    const s = ctx.state;
    const plan = planOf(s);
    const b = plan.bootloader;
    if (b.kind === 'none') {
      ctx.say('bootloader: none (the plan says so)');
      return;
    }
    const root = targetDir(s.paths.stage2, '/');
    const cloneExists = (rel: string) => existsSync(join(root, rel));
    const wanted = b.device.replace(/^\/dev\//, '');
    const disk = s.disks.find((d) => d.name === wanted || plan.disks[d.index]?.device === b.device) ?? s.disks[0];
    if (!disk) throw new Error('no disk to put the boot code on');
    const run = async (c: ChrootCommand) => {
      await ctx.exec(s.busybox, ['chroot', c.where === 'clone' ? root : s.paths.stage2, ...c.argv], { env: chrootEnv });
    };
    await bindIntoTarget(ctx);
    if (b.kind === 'extlinux') {
      if (s.firmware === 'uefi') throw new Error('extlinux boots BIOS nodes only; this node booted UEFI: deploy with -r grub');
      for (const c of extlinuxCommands(disk.device, disk.desc.label, cloneExists)) await run(c);
      ctx.say(`extlinux installed on ${disk.device} (its configuration is the image's, with the new UUIDs)`);
      return;
    }
    if (s.firmware === 'uefi' && !s.targets.some((t) => t.mount === '/boot/efi' && t.fstype === 'vfat')) {
      throw new Error('a UEFI node needs an EFI system partition mounted at /boot/efi (esp in the desc)');
    }
    const diskProblem = grubDiskProblem(s.firmware, disk.desc);
    if (diskProblem) throw new Error(diskProblem);
    if (b.append) {
      const p = join(root, 'etc/default/grub');
      const before = existsSync(p) ? readFileSync(p, 'utf8') : '';
      writeFileSync(p, appendToGrubDefault(before, b.append));
      ctx.say(`etc/default/grub: GRUB_CMDLINE_LINUX gets ${b.append}`);
    }
    for (const c of grubInstallCommands(s.firmware, disk.device, cloneExists)) await run(c);
    const menuPath = join(root, 'boot/grub/grub.cfg');
    const menu = s.renamedIds
      ? grubMenuFor(isPlainFile(menuPath) ? readFileSync(menuPath, 'utf8') : undefined, {
        renamed: s.renamedIds, label: disk.desc.label, exists: cloneExists, ...(b.append ? { append: b.append } : {}),
        targets: s.targets.flatMap((t) => (t.uuid ? [{ ...t, uuid: t.uuid }] : [])),
      })
      : { kind: 'regenerate' as const, reason: 'prepare did not say which file system names changed' };
    if (menu.kind === 'rewrite') {
      writeFileSync(menuPath, menu.text); // in place, as prepare writes the other files: its mode stays
      ctx.say(`GRUB menu: the image's boot/grub/grub.cfg, ${menu.count} name(s) moved to this node's (file system UUIDs, partition map)`);
    } else {
      const cfg = grubConfigCommand(cloneExists);
      if (!cfg) throw new Error(`the image's GRUB menu cannot be kept (${menu.reason}) and the image has no update-grub nor grub-mkconfig to write one (install grub in the golden, or deploy with -r extlinux)`);
      ctx.say(`GRUB menu: ${cfg[0]}, as ${menu.reason}`);
      await run({ where: 'clone', argv: cfg });
    }
    ctx.say(`GRUB installed for ${s.firmware} on ${disk.device}`);
    const esp = s.targets.find((t) => t.mount === '/boot/efi' && t.disk === disk.index);
    if (s.firmware === 'uefi' && esp) await bootNextToDisk(ctx, disk.device, esp.partition);
  },
};
