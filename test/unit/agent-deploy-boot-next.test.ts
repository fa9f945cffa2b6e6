// The first boot after a UEFI deploy: efibootmgr's listing read (old and new forms, kaboot's
// earlier entries found), the entry made without BootOrder, and any text read without a throw.
// The lab's UEFI deploy runs it against OVMF's real NVRAM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { BOOT_ENTRY_LABEL, createEntryArgs, parseBootEntries, staleKabootEntries } from '../../src/agent/deploy/boot-next.js';

const listing18 = [
  'BootCurrent: 0001',
  'Timeout: 0 seconds',
  'BootOrder: 0001,0000,0002',
  'Boot0000* UiApp\tFvVol(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(462caa21-7614-4503-836e-8ab6f4662331)',
  'Boot0001* UEFI PXEv4 (MAC:525400970001)\tPciRoot(0x0)/Pci(0x3,0x0)/MAC(525400970001,1)/IPv4(0.0.0.0,0,DHCP,0.0.0.0,0.0.0.0,0.0.0.0)',
  `Boot000a  ${BOOT_ENTRY_LABEL}\tHD(1,GPT,8f6e7d8a-0000-4000-8000-000000000001,0x800,0x100000)/File(\\EFI\\BOOT\\BOOTX64.EFI)`,
].join('\n');

const listing17 = ['BootCurrent: 0002', 'BootOrder: 0002,0001', 'Boot0001* UEFI Misc Device', 'Boot0002* UEFI PXEv4 (MAC:525400970001)', `Boot0007* ${BOOT_ENTRY_LABEL}`].join('\n');

test('efibootmgr 18 listing: numbers, active flags, labels without the device path', () => {
  assert.deepEqual(parseBootEntries(listing18), [
    { num: '0000', active: true, label: 'UiApp' },
    { num: '0001', active: true, label: 'UEFI PXEv4 (MAC:525400970001)' },
    { num: '000A', active: false, label: BOOT_ENTRY_LABEL },
  ]);
  assert.deepEqual(staleKabootEntries(parseBootEntries(listing18)), ['000A']);
});

test('efibootmgr 17 listing (labels only) and every earlier kaboot entry found', () => {
  const twice = `${listing17}\nBoot0008* ${BOOT_ENTRY_LABEL}`;
  assert.deepEqual(staleKabootEntries(parseBootEntries(twice)), ['0007', '0008']);
  assert.deepEqual(staleKabootEntries(parseBootEntries('BootCurrent: 0001\nBoot0001* debian')), []);
});

test('the entry is made outside BootOrder, for the removable-path loader', () => {
  const argv = createEntryArgs('/dev/nvme0n1', 1);
  assert.equal(argv[0], 'efibootmgr');
  assert.ok(argv.includes('--create-only'));
  assert.ok(!argv.includes('--create'));
  assert.deepEqual(argv.slice(argv.indexOf('--disk'), argv.indexOf('--disk') + 4), ['--disk', '/dev/nvme0n1', '--part', '1']);
  assert.equal(argv[argv.indexOf('--loader') + 1], '\\EFI\\BOOT\\BOOTX64.EFI');
});

test('any text: entries or none, never a throw', () => {
  for (let i = 0; i < 3000; i++) {
    const junk = i % 2 ? randomBytes(i % 300).toString('latin1') : listing18.slice(0, i % listing18.length) + randomBytes(8).toString('hex');
    for (const e of parseBootEntries(junk)) assert.match(e.num, /^[0-9A-F]{4}$/);
  }
});
