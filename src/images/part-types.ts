// Partition type names of the desc format and their codes in a DOS (MBR) table and in
// a GPT. The seed's names (linux, swap, extended, typeXX) are DOS codes; GPT needs GUIDs.

export type PartitionKind = 'linux' | 'swap' | 'extended' | 'esp' | 'other';

export const GPT = {
  linux: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
  swap: '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F',
  esp: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  biosBoot: '21686148-6449-6E6F-744E-656564454649',
  raid: 'A19D880F-05FC-4D3B-A006-743F0F84911E',
  lvm: 'E6D6D379-F507-44C2-A23C-238F2A3DF928',
  linuxRootX86_64: '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709',
} as const;

/** DOS code → GPT GUID, for typeXX lines in a GPT desc. */
const dosToGpt: Record<string, string> = {
  '83': GPT.linux,
  '82': GPT.swap,
  ef: GPT.esp,
  fd: GPT.raid,
  '8e': GPT.lvm,
};

export const DOS_EXTENDED = new Set(['5', 'f', '85']);

/** The DOS code of a named kind. */
export const dosCode: Record<Exclude<PartitionKind, 'other'>, string> = {
  linux: '83',
  swap: '82',
  extended: '5',
  esp: 'ef',
};

export const gptCode: Record<Exclude<PartitionKind, 'other' | 'extended'>, string> = {
  linux: GPT.linux,
  swap: GPT.swap,
  esp: GPT.esp,
};

export const GUID_RE = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/;

/** Lower-case DOS hex without leading zeros, as sfdisk prints it ("83", "5", "ef"). */
export function normalizeDosCode(hex: string): string {
  return parseInt(hex, 16).toString(16);
}

export function gptForDosCode(hex: string): string | undefined {
  return dosToGpt[normalizeDosCode(hex)];
}

/** Kind of a type code read from a disk, so from-disk prints the seed's names where they exist. */
export function kindOfDosCode(code: string): PartitionKind {
  const c = normalizeDosCode(code);
  if (c === '83') return 'linux';
  if (c === '82') return 'swap';
  if (c === 'ef') return 'esp';
  if (DOS_EXTENDED.has(c)) return 'extended';
  return 'other';
}

export function kindOfGptGuid(guid: string): PartitionKind {
  const g = guid.toUpperCase();
  if (g === GPT.linux) return 'linux';
  if (g === GPT.swap) return 'swap';
  if (g === GPT.esp) return 'esp';
  return 'other';
}
