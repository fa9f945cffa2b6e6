import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaults } from '../../src/config/schema.js';
import { pxelinuxConfig, macFromPxelinuxName, kernelAppend } from '../../src/boot/pxelinux-config.js';
import { ipxeScript } from '../../src/boot/ipxe-script.js';
import { loaderPath } from '../../src/boot/loaders.js';

const at = { server: '10.0.0.1', httpPort: 8080 };

test('pxelinux.cfg has the seed labels and the node default', () => {
  const cfg = pxelinuxConfig(defaults.boot, 'kamethod', at);
  assert.match(cfg, /^DEFAULT kamethod$/m);
  assert.match(cfg, /^LABEL local\n  LOCALBOOT 0$/m);
  assert.match(cfg, /^  KERNEL vmlinuz$/m);
  assert.match(cfg, /^  APPEND initrd=all\.rdz .*kamethod kaboot\.server=10\.0\.0\.1:8080$/m);
  assert.match(cfg, /^PROMPT 1\nTIMEOUT 50$/m);
  assert.match(pxelinuxConfig(defaults.boot, 'local', at), /^DEFAULT local$/m);
  const noPrompt = pxelinuxConfig({ ...defaults.boot, pxelinux: { reboot_time: 30, prompt_timeout: 0 } }, 'local', at);
  assert.match(noPrompt, /^PROMPT 0$/m);
  assert.doesNotMatch(noPrompt, /TIMEOUT/);
});

test('pxelinux per-MAC names', () => {
  assert.equal(macFromPxelinuxName('01-52-54-00-AB-cd-EF'), '52:54:00:ab:cd:ef');
  assert.equal(macFromPxelinuxName('default'), undefined);
  assert.equal(macFromPxelinuxName('C0A80A'), undefined);
  assert.equal(macFromPxelinuxName('01-52-54-00-ab-cd'), undefined);
});

test('kernel line carries the appliance address', () => {
  assert.equal(kernelAppend({ ...defaults.boot, append: 'quiet' }, at), 'quiet kaboot.server=10.0.0.1:8080');
});

test('iPXE script: kamethod loads kernel and initrd over HTTP with initrd= for UEFI', () => {
  const s = ipxeScript(defaults.boot, 'kamethod', at, '52:54:00:12:34:56');
  assert.match(s, /^#!ipxe\n/);
  assert.match(s, /^kernel http:\/\/10\.0\.0\.1:8080\/vmlinuz initrd=all\.rdz .* BOOTIF=01-52-54-00-12-34-56 ip=\$\{ip\}:\$\{next-server\}:\$\{gateway\}:\$\{netmask\}$/m);
  assert.match(s, /^initrd http:\/\/10\.0\.0\.1:8080\/all\.rdz$/m);
  assert.match(s, /^boot$/m);
  assert.doesNotMatch(s, /chain|ipxe\.efi|undionly/, 'never chainloads iPXE again');
  const p80 = ipxeScript(defaults.boot, 'kamethod', { server: '10.0.0.1', httpPort: 80 }, '52:54:00:12:34:56');
  assert.match(p80, /kernel http:\/\/10\.0\.0\.1\/vmlinuz/);
});

test('iPXE script: local leaves iPXE for the disk (BIOS sanboot, UEFI exit when there is no local-boot image)', () => {
  const s = ipxeScript(defaults.boot, 'local', at, '52:54:00:12:34:56');
  const lines = s.split('\n');
  assert.equal(lines[0], '#!ipxe');
  // BIOS goes to the first disk; UEFI jumps past it
  assert.ok(lines.indexOf('iseq ${platform} efi && goto efi ||') < lines.indexOf('sanboot --no-describe --drive 0x80 ||'));
  assert.ok(lines.indexOf('sanboot --no-describe --drive 0x80 ||') < lines.indexOf(':efi'));
  assert.doesNotMatch(s, /^chain/m);
  assert.equal(lines.filter(Boolean).at(-1), 'exit 1');
  assert.doesNotMatch(s, /^kernel/m);
});

test('iPXE script: local on UEFI chainloads the local-boot EFI image when there is one, then exits', () => {
  const url = 'http://10.0.0.1:8080/local-boot-x64.efi';
  const s = ipxeScript(defaults.boot, 'local', at, '52:54:00:12:34:56', { uefiLocalUrl: url });
  const lines = s.split('\n');
  const chain = lines.findIndex((l) => l.startsWith(`chain ${url} ||`));
  assert.ok(chain > lines.indexOf(':efi'), s);
  assert.equal(lines.filter(Boolean).at(-1), 'exit 1');
  assert.ok(lines.indexOf('sanboot --no-describe --drive 0x80 ||') < lines.indexOf(':efi'), 'BIOS still sanboots');
});

test('Debian loaders by bare name only', () => {
  assert.equal(loaderPath('pxelinux.0'), '/usr/lib/PXELINUX/pxelinux.0');
  assert.equal(loaderPath('ldlinux.c32'), '/usr/lib/syslinux/modules/bios/ldlinux.c32');
  assert.equal(loaderPath('ldlinux.e64'), '/usr/lib/syslinux/modules/efi64/ldlinux.e64');
  assert.equal(loaderPath('ipxe.efi'), '/usr/lib/ipxe/ipxe.efi');
  assert.equal(loaderPath('x/pxelinux.0'), undefined);
  assert.equal(loaderPath('../etc.c32'), undefined);
  assert.equal(loaderPath('passwd'), undefined);
});
