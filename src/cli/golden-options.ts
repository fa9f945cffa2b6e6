// The options that say how to read a golden (its trees, desc, MBR boot code, bootloader),
// shared by `kaboot image capture|push` and `kaboot deploy --live`, which read it alike.
import { UsageError } from './main.js';
import type { BootloaderName } from '../images/manifest.js';

export const goldenReadOptions = {
  from: { type: 'string', multiple: true },
  desc: { type: 'string' },
  'desc-from': { type: 'string' },
  mbr: { type: 'string' },
  'mbr-from': { type: 'string' },
  'no-mbr': { type: 'boolean' },
  bootloader: { type: 'string' },
} as const;

const BOOTLOADERS: readonly string[] = ['grub-pc', 'grub-efi', 'extlinux'];

/** --bootloader B, checked; undefined when not given (guessed from the files). */
export function bootloaderOption(value: string | undefined): BootloaderName | undefined {
  if (value !== undefined && !BOOTLOADERS.includes(value)) throw new UsageError(`--bootloader must be one of ${BOOTLOADERS.join(', ')}`);
  return value as BootloaderName | undefined;
}
