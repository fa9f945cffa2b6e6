// The deployment plan policy: ESP for UEFI nodes, -x per file system, -p/-X drives,
// -D/-M/-m, -r, host names; every plan it builds passes parsePlan.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDesc } from '../../src/images/desc.js';
import type { ImageManifest, FilesystemRecord } from '../../src/images/manifest.js';
import { parsePlan } from '../../src/deploy/plan.js';
import type { DeploymentRequest } from '../../src/deploy/deployment.js';
import {
  buildPlan, bootCodeFor, bootloaderFor, deploymentLayout, descForFirmware, excludesPerFilesystem, hostnameFor, PolicyError, type PlanSessions,
} from '../../src/deploy/policy.js';

const H = 'a'.repeat(64);
function fs(i: number, mount: string, over: Partial<FilesystemRecord> = {}): FilesystemRecord {
  return {
    mount, fstype: 'ext4', files: 10 + i, bytes_used: 1_000_000 * (i + 1),
    squashfs: `fs/${i + 1}.sqfs`, squashfs_bytes: 1, squashfs_sha256: H, tar_bytes: 1, tar_sha256: H,
    stream: `fs/${i + 1}.tar.zst`, stream_bytes: 500 + i, stream_sha256: H, acl_entries: 0, ...over,
  };
}
function image(over: Partial<ImageManifest> = {}): ImageManifest {
  return {
    format: 1, name: 'gold', created: '2026-01-01T00:00:00Z', source: { kind: 'local', paths: ['/'] },
    filesystems: [fs(0, '/'), fs(1, '/home', { label: 'home' })],
    desc: 'linux 2000 ext4 /\nextended fill\nlogical swap 500\nlogical linux fill ext4 /home\n',
    bootloader: 'grub-pc', kernels: ['6.1.0'], warnings: [], ...over,
  };
}
const ref = (name: string, port = 4000) => ({ name, port, secret: 'b'.repeat(64), bytes: 1, sha256: H });
function sessions(sent: number[], extra: Partial<PlanSessions> = {}): PlanSessions {
  return { stage2: ref('getstage2', 3999), filesystems: new Map(sent.map((i, k) => [i, ref(`kainstall${k + 1}`, 4001 + k)])), raw: new Map(), ...extra };
}
const req = (over: Partial<DeploymentRequest> = {}): DeploymentRequest => ({ image: 'gold', macs: ['52:54:00:00:00:01'], ...over });
const plan = (r: DeploymentRequest, firmware: 'bios' | 'uefi', img = image(), s?: PlanSessions) => {
  const layout = deploymentLayout(img, r);
  return buildPlan({ deployment: 'd-20260101000000-abcd', image: img, request: r, mac: '52:54:00:00:00:01', firmware, sessions: s ?? sessions(layout.sent) });
};

test('a BIOS node keeps the image desc; a UEFI node gets a GPT with a 512 MB ESP first', () => {
  const text = image().desc!;
  const bios = descForFirmware(parseDesc(text), text, 'bios');
  assert.equal(bios.desc, text);
  const uefi = descForFirmware(parseDesc(text), text, 'uefi');
  const p = parseDesc(uefi.desc);
  assert.equal(p.label, 'gpt');
  assert.deepEqual(p.partitions.map((q) => [q.number, q.kind, q.size, q.fs, q.mount]), [
    [1, 'esp', 512, 'vfat', '/boot/efi'],
    [2, 'linux', 2000, 'ext4', '/'],
    [3, 'swap', 500, 'swap', undefined],
    [4, 'linux', 'fill', 'ext4', '/home'],
  ]);
  assert.deepEqual([...uefi.renumber], [[1, 2], [5, 3], [6, 4]]);
  assert.match(uefi.changed!, /DOS label made GPT/);
});

test('a desc with an ESP is kept for UEFI; a GPT without one gets it first', () => {
  const withEsp = 'label gpt\nesp 256\nlinux fill ext4 /\n';
  assert.equal(descForFirmware(parseDesc(withEsp), withEsp, 'uefi').desc, withEsp);
  const gpt = 'label gpt\nlinux 1000 ext4 / label=root\nswap fill\n';
  const out = parseDesc(descForFirmware(parseDesc(gpt), gpt, 'uefi').desc);
  assert.deepEqual(out.partitions.map((q) => [q.number, q.kind, q.fsLabel]), [[1, 'esp', undefined], [2, 'linux', 'root'], [3, 'swap', undefined]]);
});

test('a BIOS node with GRUB on a GPT gets a 1 MB BIOS boot partition first; not with extlinux, nor when it has one', () => {
  const gpt = 'label gpt\nesp 512\nlinux fill ext4 /\n';
  const out = descForFirmware(parseDesc(gpt), gpt, 'bios', { grub: true });
  const p = parseDesc(out.desc);
  assert.deepEqual(p.partitions.map((q) => [q.number, q.typeCode, q.size, q.mount]), [
    [1, '21686148-6449-6E6F-744E-656564454649', 1, undefined],
    [2, 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', 512, '/boot/efi'],
    [3, '0FC63DAF-8483-4772-8E79-3D69D8477DE4', 'fill', '/'],
  ]);
  assert.deepEqual([...out.renumber], [[1, 2], [2, 3]]);
  assert.equal(descForFirmware(parseDesc(gpt), gpt, 'bios', { grub: false }).desc, gpt);
  assert.equal(descForFirmware(parseDesc(out.desc), out.desc, 'bios', { grub: true }).desc, out.desc);
  const dos = 'linux fill ext4 /\n';
  assert.equal(descForFirmware(parseDesc(dos), dos, 'bios', { grub: true }).desc, dos);
  // through a whole plan: the image of a UEFI golden deployed to a BIOS node
  const img = image({ filesystems: [fs(0, '/'), fs(1, '/boot/efi', { fstype: 'vfat' })], desc: gpt, bootloader: 'grub-efi' });
  const { plan: bios, notes } = plan(req(), 'bios', img);
  parsePlan(bios);
  assert.match(notes.join(), /BIOS boot partition/);
  assert.deepEqual(bios.disks[0]!.filesystems.map((f) => [f.partition, f.mount, f.session?.name]), [[2, '/boot/efi', 'kainstall2'], [3, '/', 'kainstall1']]);
});

test('a DOS type without a GPT equivalent cannot become GPT: a PolicyError that says so', () => {
  const text = 'type7 1000\nlinux fill ext4 /\n';
  assert.throws(() => descForFirmware(parseDesc(text), text, 'uefi'), (e: Error) => e instanceof PolicyError && /UEFI node needs a GPT/.test(e.message));
});

test('-x is split per file system: paths below the deepest mount, or a whole file system', () => {
  const { whole, below } = excludesPerFilesystem(['/', '/var', '/var/log'], ['/tmp/x', '/var/cache/', '/var/log/old', '/var/log']);
  assert.deepEqual([...whole], ['/var/log']);
  assert.deepEqual(below.get('/'), ['tmp/x']);
  assert.deepEqual(below.get('/var'), ['cache']);
  assert.deepEqual(below.get('/var/log'), ['old']);
  assert.throws(() => excludesPerFilesystem(['/'], ['/']), /nothing to copy/);
  assert.throws(() => excludesPerFilesystem(['/boot'], ['/etc']), /not inside any file system/);
  assert.throws(() => excludesPerFilesystem(['/'], ['/a/../etc']), /"\.\."/);
});

test('a BIOS plan: partitions as in the desc, a session per file system, excludes, swap made empty, grub', () => {
  const { plan: p, notes } = plan(req({ exclude: ['/var/cache', '/home/big'], hostname_pattern: 'node{n}' }), 'bios');
  parsePlan(p);
  assert.deepEqual(notes, []);
  const disk = p.disks[0]!;
  assert.equal(disk.device, 'first');
  assert.deepEqual(disk.filesystems.map((f) => [f.partition, f.fstype, f.mount ?? null, f.session?.name ?? null, f.exclude]), [
    [1, 'ext4', '/', 'kainstall1', ['var/cache']],
    [5, 'swap', null, null, []],
    [6, 'ext4', '/home', 'kainstall2', ['big']],
  ]);
  assert.equal(disk.filesystems[2]!.label, 'home', "the golden's label when the desc gives none");
  assert.equal(disk.filesystems[0]!.files, 10);
  assert.deepEqual(p.bootloader, { kind: 'grub', device: 'first', initramfs: true, initramfs_modules: [] });
  assert.equal(p.reboot, true);
});

test('a UEFI plan adds the ESP as a file system to make and mount, and renumbers the rest', () => {
  const { plan: p, notes } = plan(req(), 'uefi');
  parsePlan(p);
  assert.match(notes.join('\n'), /512 MB ESP/);
  assert.deepEqual(p.disks[0]!.filesystems.map((f) => [f.partition, f.fstype, f.mount ?? null, f.session?.name ?? null]), [
    [1, 'vfat', '/boot/efi', null],
    [2, 'ext4', '/', 'kainstall1'],
    [3, 'swap', null, null],
    [4, 'ext4', '/home', 'kainstall2'],
  ]);
});

test('-x of a mount point sends no session for it: formatted empty', () => {
  const r = req({ exclude: ['/home'] });
  const layout = deploymentLayout(image(), r);
  assert.deepEqual(layout.sent, [0]);
  assert.match(layout.notes.join(), /\/home excluded whole/);
  const { plan: p } = plan(r, 'bios');
  const home = p.disks[0]!.filesystems.find((f) => f.mount === '/home')!;
  assert.equal(home.session, undefined);
  assert.equal(home.files, undefined);
});

test('-p gives each drive its desc; -X drops a drive and the image file systems on it; the plan says which drives to leave alone', () => {
  const r = req({
    descs: [{ drive: 'sda', desc: 'linux 3000 ext4 /\nswap 500\n' }, { drive: 'sdb', desc: 'linux fill ext4 /home\n' }],
    exclude_drives: ['sdb'],
  });
  const layout = deploymentLayout(image(), r);
  assert.deepEqual(layout.skipped, ['/home']);
  assert.deepEqual(layout.sent, [0]);
  const { plan: p } = plan(r, 'bios');
  assert.deepEqual(p.disks.map((d) => d.device), ['sda']);
  assert.deepEqual(p.exclude_drives, ['sdb']);
  assert.equal(p.bootloader.device, 'sda');
  // without -X both drives are deployed, /home on sdb
  const both = plan(req({ descs: r.descs }), 'bios').plan;
  assert.deepEqual(both.disks.map((d) => [d.device, d.filesystems.map((f) => f.mount ?? 'swap')]), [['sda', ['/', 'swap']], ['sdb', ['/home']]]);
});

test('requests the image cannot meet are refused with what to do', () => {
  assert.throws(() => deploymentLayout(image(), req({ descs: [{ drive: 'sda', desc: 'linux fill ext4 /\n' }] })), /\/home \(ext4\) has no partition .* add a line/);
  assert.throws(() => deploymentLayout(image(), req({ descs: [{ drive: 'sda', desc: 'linux 10 ext4 /\nlinux fill ext4 /home\n' }] })), /too small for \//);
  assert.throws(() => deploymentLayout(image({ desc: undefined }), req()), /holds no partition scheme: give one with -p/);
  assert.throws(() => deploymentLayout(image(), req({ exclude_drives: ['first'] })), /leaves no drive/);
  assert.throws(() => deploymentLayout(image(), req({ copy_mbr: true })), /-m: image gold holds no MBR boot code\. Capture the golden again .*--mbr-from DEV.* -M FILE/);
  assert.throws(() => deploymentLayout(image(), req({ mbr: { base64: Buffer.alloc(512).toString('base64') } })), /446 bytes long, this one has 512/);
  assert.throws(() => deploymentLayout(image(), req({ descs: [{ drive: 'sda', desc: 'linux 3000 ext4 /\nlinux fill ext4 /home\n' }, { drive: 'sda', desc: 'linux fill\n' }] })), /twice/);
  assert.throws(() => deploymentLayout(image(), req({ descs: [{ drive: 'sda', desc: 'linux 3000 ext4 /\nbogus fill\n' }] })), /desc for sda: line 2, column 1/);
  assert.throws(() => deploymentLayout(image(), req({ raw: [{ partition: 1, file: '/srv/p1.img' }] })), /mounts at \/ .* overwrite/);
});

test('-D: a raw partition on a UEFI node follows its renumbering; -M is for BIOS nodes', () => {
  const img = image({ desc: 'linux 2000 ext4 /\nlinux 100\nlinux fill ext4 /home\n' });
  const r = req({ raw: [{ partition: 2, file: '/srv/p2.img' }], mbr: { base64: Buffer.alloc(446, 1).toString('base64') } });
  const layout = deploymentLayout(img, r);
  const s = sessions(layout.sent, { raw: new Map([['first:2', ref('karaw-first-2', 4100)]]), mbr: ref('kambr', 4101) });
  const bios = plan(r, 'bios', img, s).plan;
  parsePlan(bios);
  assert.deepEqual(bios.disks[0]!.raw.map((x) => [x.partition, x.session.name]), [[2, 'karaw-first-2']]);
  assert.equal(bios.disks[0]!.mbr?.name, 'kambr');
  const uefi = plan(r, 'uefi', img, s);
  parsePlan(uefi.plan);
  assert.deepEqual(uefi.plan.disks[0]!.raw.map((x) => x.partition), [3]);
  assert.equal(uefi.plan.disks[0]!.mbr, undefined, 'a UEFI node runs no MBR boot code');
  assert.match(uefi.notes.join('\n'), /-M not written/);
});

test('-r: the bootloader kind and the initramfs options', () => {
  const img = image();
  assert.deepEqual(bootloaderFor(img, req({ bootloader: { kind: 'grub', options: '--with=ata_piix --with=piix' } }), 'sda'), { kind: 'grub', device: 'sda', initramfs: true, initramfs_modules: ['ata_piix', 'piix'] });
  assert.deepEqual(bootloaderFor(img, req({ bootloader: { kind: 'extlinux', options: 'virtio_blk --no-initramfs' } }), 'vda'), { kind: 'extlinux', device: 'vda', initramfs: false, initramfs_modules: ['virtio_blk'] });
  assert.equal(bootloaderFor(image({ bootloader: 'unknown' }), req(), 'sda').kind, 'none');
  assert.equal(bootloaderFor(image({ bootloader: 'extlinux' }), req(), 'sda').kind, 'extlinux');
  // the image's record of its initramfs goes to the node, unless the plan does not look at the initramfs
  const recorded = image({ initramfs: [{ path: '/boot/initrd.img-6.1.0-x', bytes: 10, modules: ['virtio_blk'], texts: {} }] });
  assert.deepEqual(bootloaderFor(recorded, req(), 'sda').initramfs_contents, recorded.initramfs);
  assert.equal(bootloaderFor(recorded, req({ bootloader: { kind: 'grub', options: '--no-initramfs' } }), 'sda').initramfs_contents, undefined);
  assert.throws(() => bootloaderFor(img, req({ bootloader: { kind: 'grub', options: '--with=a;rm' } }), 'sda'), /not a module name/);
  assert.throws(() => bootloaderFor(img, req({ bootloader: { kind: 'grub', options: '$(reboot)' } }), 'sda'), /expected "--with=MODULE"/);
});

test('host names from a pattern', () => {
  assert.equal(hostnameFor('node{n}', 7, '52:54:00:00:00:01'), 'node7');
  assert.equal(hostnameFor('n-{mac}', 1, '52:54:00:00:00:01'), 'n-52-54-00-00-00-01');
  assert.equal(hostnameFor(undefined, 1, '52:54:00:00:00:01'), undefined);
  assert.throws(() => hostnameFor('-{n}', 1, '52:54:00:00:00:01'), /not a host name/);
});

test('-m [DRIVE]: the image\'s boot code of that golden drive, to the deployment drive of that name or the first', () => {
  const rec = (drive: string) => ({ drive, source: `/dev/${drive}`, file: `mbr/${drive}.bin`, sha256: H });
  const one = image({ boot_code: [rec('sda')] });
  const first = [{ device: 'first' }];
  assert.deepEqual(bootCodeFor(one, req({ copy_mbr: true }), first), { record: rec('sda'), drive: 'first' });
  assert.deepEqual(bootCodeFor(one, req({ copy_mbr: 'sda' }), first), { record: rec('sda'), drive: 'first' }, 'the only record, to the first drive');
  assert.deepEqual(bootCodeFor(one, req({ copy_mbr: 'sda' }), [{ device: 'sdb' }, { device: 'sda' }]), { record: rec('sda'), drive: 'sda' }, 'to the drive of the same name');
  const two = image({ boot_code: [rec('sda'), rec('sdb')] });
  assert.deepEqual(bootCodeFor(two, req({ copy_mbr: 'sdb' }), first).record, rec('sdb'));
  assert.throws(() => bootCodeFor(two, req({ copy_mbr: true }), first), /holds the boot code of sda, sdb: name one \(-m DRIVE\)/);
  assert.throws(() => bootCodeFor(two, req({ copy_mbr: 'sdc' }), first), /-m sdc: .* sda, sdb/);
  assert.throws(() => bootCodeFor(one, req({ copy_mbr: true, mbr: { base64: Buffer.alloc(446).toString('base64') } }), first), /-m and -M both/);
  assert.throws(() => deploymentLayout(one, req({ copy_mbr: true, mbr: { base64: Buffer.alloc(446).toString('base64') } })), /-m and -M both/);
  // with the image's record the layout is accepted (the manager turns -m into the kambr session of -M)
  assert.doesNotThrow(() => deploymentLayout(one, req({ copy_mbr: true })));
});
