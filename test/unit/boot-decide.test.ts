import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideBoot, isBoot, scriptUrl, type BootClient, type BootDecision } from '../../src/boot/decide.js';
import { bootClientOf, userClasses } from '../../src/boot/client.js';
import { defaults, type BootConfig } from '../../src/config/schema.js';
import type { NodeRecord } from '../../src/nodes/registry.js';
import { MessageType, Opt } from '../../src/dhcp/packet.js';
import { buildRequest } from '../helpers/dhcp-client.js';

const MAC = '52:54:00:12:34:56';
const SERVER = '10.0.0.1';
const SCRIPT = `http://${SERVER}:80/ipxe/52-54-00-12-34-56.ipxe`;
const boot: BootConfig = structuredClone(defaults.boot);

const node = (next_boot: 'local' | 'kamethod'): NodeRecord => ({ mac: MAC, next_boot, state: 'unknown', updated: '2026-01-01T00:00:00Z' });
const client = (arch: number, firmware: 'pxe' | 'ipxe' | 'http'): BootClient => ({
  mac: MAC,
  arch,
  vendorClass: firmware === 'http' ? 'HTTPClient:Arch:00016:UNDI:003001' : `PXEClient:Arch:${String(arch).padStart(5, '0')}:UNDI:002001`,
  ipxe: firmware === 'ipxe',
});
const decide = (c: BootClient, n?: NodeRecord, b: BootConfig = boot): BootDecision =>
  decideBoot({ client: c, ...(n ? { node: n } : {}), boot: b, serverIp: SERVER, httpPort: 80 });

type Want = { file: string; via: 'tftp' | 'http'; pxelinux?: boolean; vendorClass?: string } | { none: RegExp };

// Every architecture × firmware, with the defaults (bios_pxe pxelinux.0, bios_ipxe script,
// uefi_pxe ipxe.efi, uefi_ipxe script, arm64_pxe ipxe-arm64.efi, http_boot ipxe.efi).
const table: [number, 'pxe' | 'ipxe' | 'http', Want][] = [
  [0, 'pxe', { file: 'pxelinux.0', via: 'tftp', pxelinux: true }],
  [0, 'ipxe', { file: SCRIPT, via: 'http' }],
  [6, 'pxe', { file: 'ipxe.efi', via: 'tftp' }],
  [6, 'ipxe', { file: SCRIPT, via: 'http' }],
  [7, 'pxe', { file: 'ipxe.efi', via: 'tftp' }],
  [7, 'ipxe', { file: SCRIPT, via: 'http' }],
  [9, 'pxe', { file: 'ipxe.efi', via: 'tftp' }],
  [9, 'ipxe', { file: SCRIPT, via: 'http' }],
  [10, 'pxe', { none: /ARM32/ }],
  [10, 'ipxe', { file: SCRIPT, via: 'http' }],
  [11, 'pxe', { file: 'ipxe-arm64.efi', via: 'tftp' }],
  [11, 'ipxe', { file: SCRIPT, via: 'http' }],
  [16, 'http', { file: `http://${SERVER}:80/ipxe.efi`, via: 'http', vendorClass: 'HTTPClient' }],
  [19, 'http', { file: `http://${SERVER}:80/ipxe.efi`, via: 'http', vendorClass: 'HTTPClient' }],
  [16, 'ipxe', { file: SCRIPT, via: 'http' }],
  [3, 'pxe', { none: /arch 3/ }],
];

for (const next of [undefined, 'local', 'kamethod'] as const) {
  for (const [arch, fw, want] of table) {
    test(`boot: arch ${arch} ${fw}, next_boot ${next ?? 'unknown node'}`, () => {
      const d = decide(client(arch, fw), next ? node(next) : undefined);
      assert.equal(d.nextBoot, next ?? 'local');
      assert.equal(d.firmware, fw);
      if ('none' in want) {
        assert.ok(!isBoot(d), JSON.stringify(d));
        assert.match(d.none, want.none);
        return;
      }
      assert.ok(isBoot(d), JSON.stringify(d));
      assert.equal(d.file, want.file);
      assert.equal(d.via, want.via);
      assert.equal(d.pxelinux, want.pxelinux ?? false);
      assert.equal(d.vendorClass, want.vendorClass ?? 'PXEClient');
      assert.ok(d.reason.length > 0);
    });
  }
}

test('boot: an unknown node follows boot.default', () => {
  const b = { ...boot, default: 'kamethod' as const };
  assert.equal(decide(client(0, 'pxe'), undefined, b).nextBoot, 'kamethod');
});

test('boot: iPXE never gets an iPXE binary again (loop breaking)', () => {
  for (const f of ['undionly.kpxe', 'ipxe.efi', 'snponly.efi', 'ipxe.pxe', 'x/ipxe-arm64.efi']) {
    const b: BootConfig = { ...boot, files: { ...boot.files, bios_ipxe: f, uefi_ipxe: f } };
    for (const arch of [0, 7]) {
      const d = decide(client(arch, 'ipxe'), node('kamethod'), b);
      assert.ok(isBoot(d));
      assert.equal(d.file, SCRIPT, `${f} on arch ${arch}`);
      assert.equal(d.via, 'http');
    }
  }
});

test('boot: bios_ipxe "script" gives the script URL; a BIOS PXE ROM gets undionly.kpxe when configured', () => {
  const b: BootConfig = { ...boot, files: { ...boot.files, bios_pxe: 'undionly.kpxe', bios_ipxe: 'script' } };
  const rom = decide(client(0, 'pxe'), node('kamethod'), b);
  assert.ok(isBoot(rom) && rom.file === 'undionly.kpxe' && rom.via === 'tftp' && !rom.pxelinux);
  const ipxe = decide(client(0, 'ipxe'), node('local'), b);
  assert.ok(isBoot(ipxe) && ipxe.file === SCRIPT);
});

test('boot: bios_ipxe pxelinux.0 (the old default) still sends pxelinux over TFTP to iPXE on BIOS', () => {
  const b: BootConfig = { ...boot, files: { ...boot.files, bios_ipxe: 'pxelinux.0' } };
  const d = decide(client(0, 'ipxe'), node('kamethod'), b);
  assert.ok(isBoot(d) && d.file === 'pxelinux.0' && d.via === 'tftp' && d.pxelinux);
});

test('boot: a PXE ROM cannot run "script" or a URL', () => {
  const b: BootConfig = { ...boot, files: { ...boot.files, bios_pxe: 'script', uefi_pxe: 'http://x/ipxe.efi' } };
  assert.match((decide(client(0, 'pxe'), undefined, b) as { none: string }).none, /script/);
  assert.match((decide(client(7, 'pxe'), undefined, b) as { none: string }).none, /URL/);
});

test('boot: script URL has the dashed MAC and the HTTP port', () => {
  assert.equal(scriptUrl('10.1.2.3', 8080, 'AA:BB:CC:00:11:22'), 'http://10.1.2.3:8080/ipxe/aa-bb-cc-00-11-22.ipxe');
});

test('boot client: arch, vendor class and iPXE from a request', () => {
  const plain = bootClientOf(buildRequest(MessageType.Discover, MAC));
  assert.deepEqual(plain, { mac: MAC, arch: 0, ipxe: false });
  const ipxe = bootClientOf(buildRequest(MessageType.Discover, MAC, {
    options: { [Opt.VendorClass]: 'PXEClient:Arch:00007:UNDI:003010', [Opt.ClientArch]: [7] },
    raw: [[Opt.UserClass, Buffer.from('iPXE')]],
  }));
  assert.deepEqual(ipxe, { mac: MAC, arch: 7, vendorClass: 'PXEClient:Arch:00007:UNDI:003010', ipxe: true });
  const by175 = bootClientOf(buildRequest(MessageType.Discover, MAC, { raw: [[Opt.Ipxe, Buffer.from([0x13, 1, 1])]] }));
  assert.equal(by175.ipxe, true);
  assert.deepEqual(userClasses(Buffer.from([4, ...Buffer.from('iPXE'), 3, ...Buffer.from('abc')])), ['iPXE', 'abc']);
});
