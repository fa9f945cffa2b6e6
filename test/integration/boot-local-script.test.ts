// The iPXE script of a node on local boot, as kaboot serves it over HTTP: a UEFI node is sent
// to the local-boot EFI image (boot.files.uefi_local) only while images_dir holds it, and
// that image is served from images_dir.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { NetLab, type Host } from '../helpers/netns.js';
import { startKaboot, type KabootProcess } from '../helpers/kaboot-process.js';

let lab: NetLab;
let srv: Host;
let cli: Host;
let kb: KabootProcess;
const base = 'http://10.82.0.1:8080';
const efiBytes = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(4094, 7)]);

before(async () => {
  lab = await NetLab.create('bootlocal');
  srv = await lab.host('srv', { cidr: '10.82.0.1/24' });
  cli = await lab.host('cli', { cidr: '10.82.0.2/24' });
  kb = await startKaboot(lab, srv.ns, { dhcp: { mode: 'off' }, tftp: { enabled: false }, http: { port: 8080 } });
});
after(async () => {
  await kb?.stop();
  await lab?.destroy();
});

async function get(path: string): Promise<Buffer> {
  const r = await lab.exec(cli.ns, ['curl', '-sS', '-f', `${base}${path}`], { encoding: 'buffer' });
  return Buffer.from(r.stdout as Uint8Array);
}

test('local boot: without local-boot-x64.efi in images_dir, the script sanboots on BIOS and exits on UEFI', async () => {
  const s = (await get('/ipxe/52-54-00-aa-cc-01.ipxe')).toString();
  assert.match(s, /^sanboot --no-describe --drive 0x80 \|\|$/m);
  assert.doesNotMatch(s, /^chain /m);
  assert.match(s, /^exit 1$/m);
});

test('local boot: with local-boot-x64.efi in images_dir, UEFI chainloads it over HTTP, and it is served byte-exact', async () => {
  writeFileSync(join(kb.imagesDir, 'local-boot-x64.efi'), efiBytes);
  try {
    const s = (await get('/ipxe/52-54-00-aa-cc-02.ipxe')).toString();
    const url = `${base}/local-boot-x64.efi`;
    assert.ok(s.split('\n').some((l) => l.startsWith(`chain ${url} ||`)), s);
    assert.ok(s.indexOf(':efi') < s.indexOf(`chain ${url}`));
    assert.match(s, /^sanboot --no-describe --drive 0x80 \|\|$/m, 'BIOS still sanboots');
    assert.deepEqual(await get('/local-boot-x64.efi'), efiBytes);
  } finally {
    rmSync(join(kb.imagesDir, 'local-boot-x64.efi'));
  }
  // gone again: back to exit
  assert.doesNotMatch((await get('/ipxe/52-54-00-aa-cc-02.ipxe')).toString(), /^chain /m);
});
