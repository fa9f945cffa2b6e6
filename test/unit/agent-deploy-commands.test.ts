// The command lines the deploy steps run, checked by running them where that is harmless:
// mkfs on image files (blkid reads back the UUID and label asked for), the receive consumer
// unpacking a real capture stream (tarArgs | zstd) into a temp folder, with excludes and a
// broken stream; the rest (mount order, stage2 mounts, GRUB and extlinux lines) as values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, existsSync, statSync, symlinkSync, chmodSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { mkfsArgs, newFsId, mountOrder } from '../../src/agent/deploy/format.js';
import { receiveScript, rawScript, mbrScript, excludePatterns, usedBytes } from '../../src/agent/deploy/receive.js';
import { stage2Mounts, stage2Consumer } from '../../src/agent/deploy/stage2.js';
import { grubInstallCommands, grubConfigCommand, appendToGrubDefault, extlinuxCommands, grubDiskProblem } from '../../src/agent/deploy/bootloader.js';
import { parseDesc } from '../../src/images/desc.js';
import { shq, shJoin, targetDir } from '../../src/agent/deploy/shell.js';
import { tarArgs } from '../../src/images/capture.js';
import { defaultPaths } from '../../src/agent/deploy/types.js';
import { tailFile, splitLines } from '../../src/agent/deploy/tail.js';
import { appendFileSync } from 'node:fs';

const tmp = (tag: string) => mkdtempSync(join(tmpdir(), `agent-${tag}-`));

test('shq quotes what sh would split or expand, and leaves plain words alone', async () => {
  assert.equal(shq('/dev/vda1'), '/dev/vda1');
  assert.equal(shq('--xattrs-include=*'), `'--xattrs-include=*'`);
  assert.equal(shq("it's"), `'it'\\''s'`);
  const words = ['a b', '$HOME', "it's", '*', 'x;y', ''];
  const r = await execa('sh', ['-c', `printf '%s\\n' ${shJoin(words)}`]);
  assert.deepEqual(r.stdout.split('\n'), words);
  assert.equal(targetDir('/stage2', '/'), '/stage2/target');
  assert.equal(targetDir('/stage2', '/boot/efi'), '/stage2/target/boot/efi');
});

test('newFsId: a UUID, or a FAT volume id as blkid shows it', () => {
  assert.match(newFsId('ext4'), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(newFsId('vfat', () => Buffer.from([0xab, 0xcd, 0x01, 0x23])), 'ABCD-0123');
});

for (const [fstype, esp, label, size] of [
  ['ext4', false, 'root', 64], ['ext3', false, 'old', 64], ['ext2', false, undefined, 64], ['xfs', false, 'data', 320], ['btrfs', false, 'pool', 128],
  ['vfat', true, 'efi', 64], ['vfat', false, 'stick', 32], ['swap', false, 'swap0', 32],
] as const) {
  test(`mkfs ${fstype}${esp ? ' (ESP)' : ''}${label ? ` label ${label}` : ''}: blkid reads the type, UUID and label asked for`, async () => {
    const dir = tmp('mkfs');
    try {
      const img = join(dir, 'part.img');
      await execa('truncate', ['-s', `${size}M`, img]);
      const id = newFsId(fstype);
      const args = mkfsArgs({ fstype, label, esp, device: img }, id);
      await execa(args[0]!, args.slice(1));
      const kv = Object.fromEntries((await execa('blkid', ['-p', '-o', 'export', img])).stdout.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      assert.equal(kv.TYPE, fstype);
      assert.equal(kv.UUID?.toUpperCase(), id.toUpperCase());
      if (label) assert.equal(kv.LABEL, fstype === 'vfat' ? label.toUpperCase() : label);
      if (fstype === 'vfat') assert.equal(kv.VERSION, esp ? 'FAT32' : kv.VERSION);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('mountOrder: / first, then by depth; swap and unmounted ones left out', () => {
  const t = [{ mount: '/boot/efi', fstype: 'vfat' }, { fstype: 'swap' }, { mount: '/var', fstype: 'ext4' }, { mount: '/', fstype: 'xfs' }, { mount: '/boot', fstype: 'ext4' }, { mount: '/var/lib/x', fstype: 'btrfs' }];
  assert.deepEqual(mountOrder(t).map((x) => x.mount), ['/', '/boot', '/var', '/boot/efi', '/var/lib/x']);
});

test('stage2: the squashfs loop-mounted read-only, /dev /proc /sys bound, tmpfs on tmp and run; the getstage2 consumer', () => {
  const m = stage2Mounts(defaultPaths, '/run/kaboot/stage2.sqfs');
  assert.deepEqual(m.map((x) => x.args.join(' ')), [
    'mount -t squashfs -o ro,loop /run/kaboot/stage2.sqfs /stage2',
    'mount -o bind /dev /stage2/dev',
    'mount -o bind /proc /stage2/proc',
    'mount -o bind /sys /stage2/sys',
    'mount -t tmpfs -o mode=1777 tmpfs /stage2/tmp',
    'mount -t tmpfs -o mode=0755 tmpfs /stage2/run',
  ]);
  assert.equal(stage2Consumer('/bin/busybox', '/run/kaboot/stage2.sqfs'), '/bin/busybox cat > /run/kaboot/stage2.sqfs 2> /run/kaboot/stage2.sqfs.err');
});

/** A small golden tree with what a clone must keep: modes, a symlink, a hard link, a sparse file, an xattr. */
function goldenTree(root: string): void {
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(root, 'var/cache/apt'), { recursive: true });
  mkdirSync(join(root, 'tmp'), { recursive: true });
  writeFileSync(join(root, 'etc/fstab'), 'UUID=1 / ext4 defaults 0 1\n');
  writeFileSync(join(root, 'etc/secret'), 'x');
  chmodSync(join(root, 'etc/secret'), 0o600);
  chmodSync(join(root, 'tmp'), 0o1777);
  writeFileSync(join(root, 'var/cache/apt/pkgcache.bin'), 'cache');
  symlinkSync('../etc/fstab', join(root, 'var/link'));
  writeFileSync(join(root, 'var/hard'), 'same inode');
}

async function captureStream(root: string, dir: string): Promise<string> {
  const out = join(dir, 'stream.tar.zst');
  await execa('sh', ['-c', `tar ${shJoin(tarArgs(root))} | zstd -q -c > ${shq(out)}`]);
  return out;
}

test('the receive consumer unpacks a capture stream with modes, links, sparse files and xattrs, and leaves excludes out', async () => {
  const dir = tmp('receive');
  try {
    const golden = join(dir, 'golden');
    goldenTree(golden);
    await execa('ln', [join(golden, 'var/hard'), join(golden, 'etc/hard2')]);
    await execa('truncate', ['-s', '64M', join(golden, 'var/sparse')]);
    writeFileSync(join(golden, 'var/sparse'), 'head', { flag: 'r+' });
    await execa('setfattr', ['-n', 'user.kaboot', '-v', 'kept', join(golden, 'etc/fstab')]);
    const stream = await captureStream(golden, dir);
    const clone = join(dir, 'clone');
    mkdirSync(clone);
    const script = receiveScript(clone, ['var/cache'], join(dir, 'zstd.rc'));
    const r = await execa('sh', ['-c', `${script}`], { inputFile: stream, reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(readFileSync(join(clone, 'etc/fstab'), 'utf8'), 'UUID=1 / ext4 defaults 0 1\n');
    assert.equal(statSync(join(clone, 'etc/secret')).mode & 0o7777, 0o600);
    assert.equal(statSync(join(clone, 'tmp')).mode & 0o7777, 0o1777);
    assert.equal(statSync(join(clone, 'etc/hard2')).ino, statSync(join(clone, 'var/hard')).ino);
    assert.equal(readFileSync(join(clone, 'var/link'), 'utf8'), 'UUID=1 / ext4 defaults 0 1\n');
    const sp = statSync(join(clone, 'var/sparse'));
    assert.equal(sp.size, 64 * 1024 * 1024);
    assert.ok(sp.blocks * 512 < 1024 * 1024, `sparse file kept sparse (${sp.blocks} blocks)`);
    assert.ok(existsSync(join(clone, 'var/cache')), 'an excluded directory itself stays');
    assert.deepEqual(readdirSync(join(clone, 'var/cache')), [], 'its contents are left out');
    const g = await execa('getfattr', ['-n', 'user.kaboot', '--only-values', join(clone, 'etc/fstab')]);
    assert.equal(g.stdout, 'kept');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the receive consumer fails on a truncated stream and on a stream that is not zstd, saying why', async () => {
  const dir = tmp('receive-bad');
  try {
    const golden = join(dir, 'golden');
    goldenTree(golden);
    for (let i = 0; i < 50; i++) writeFileSync(join(golden, `etc/f${i}`), Buffer.alloc(20000, i));
    const stream = await captureStream(golden, dir);
    const whole = readFileSync(stream);
    writeFileSync(join(dir, 'cut.zst'), whole.subarray(0, Math.floor(whole.length / 2)));
    writeFileSync(join(dir, 'plain.bin'), Buffer.alloc(4096, 7));
    for (const bad of ['cut.zst', 'plain.bin']) {
      const clone = join(dir, `clone-${bad}`);
      mkdirSync(clone);
      const r = await execa('sh', ['-c', receiveScript(clone, [], join(dir, `${bad}.rc`))], { inputFile: join(dir, bad), reject: false });
      assert.notEqual(r.exitCode, 0, `${bad}: must fail`);
      assert.match(r.stderr, /zstd/, `${bad}: stderr says zstd: ${r.stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('excludePatterns: contents of each excluded path, with and without "./"; nothing for "" or ".."', () => {
  assert.deepEqual(excludePatterns(['/var/cache/', 'tmp', '', '../etc']), ['--exclude=./var/cache/*', '--exclude=var/cache/*', '--exclude=./tmp/*', '--exclude=tmp/*']);
});

test('raw partition and MBR consumers write a device file: the raw one through zstd, the MBR 446 bytes as they are, table kept', async () => {
  const dir = tmp('raw');
  try {
    const part = join(dir, 'part.img');
    writeFileSync(part, Buffer.alloc(1 << 20));
    const payload = Buffer.alloc(300_000, 0x5a);
    writeFileSync(join(dir, 'payload.zst'), (await execa('zstd', ['-q', '-c'], { input: payload, encoding: 'buffer' })).stdout);
    let r = await execa('sh', ['-c', rawScript(part, join(dir, 'rc'))], { inputFile: join(dir, 'payload.zst'), reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.ok(readFileSync(part).subarray(0, payload.length).equals(payload));
    const disk = join(dir, 'disk.img');
    const table = Buffer.alloc(512, 0);
    table.fill(0xee, 446, 510);
    table[510] = 0x55;
    table[511] = 0xaa;
    writeFileSync(disk, table);
    const code = Buffer.alloc(446, 0x33);
    r = await execa('sh', ['-c', mbrScript(disk)], { input: code, reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
    const after = readFileSync(disk);
    assert.ok(after.subarray(0, 446).equals(code));
    assert.ok(after.subarray(446).equals(table.subarray(446)), 'the partition table and signature stay');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('GRUB: BIOS with the clone\'s grub-pc in its chroot, else stage2\'s with the clone\'s boot folder; UEFI removable without NVRAM', () => {
  const clone = new Set(['usr/sbin/grub-install', 'usr/lib/grub/i386-pc/modinfo.sh', 'usr/sbin/update-grub']);
  assert.deepEqual(grubInstallCommands('bios', '/dev/vda', (p) => clone.has(p)), [{ where: 'clone', argv: ['grub-install', '--target=i386-pc', '--recheck', '/dev/vda'] }]);
  assert.deepEqual(grubInstallCommands('bios', '/dev/vda', () => false), [{ where: 'stage2', argv: ['grub-install', '--target=i386-pc', '--boot-directory=/target/boot', '--directory=/usr/lib/grub/i386-pc', '--recheck', '/dev/vda'] }]);
  assert.deepEqual(grubInstallCommands('uefi', '/dev/vda', (p) => clone.has(p)), [{ where: 'stage2', argv: ['grub-install', '--target=x86_64-efi', '--efi-directory=/target/boot/efi', '--boot-directory=/target/boot', '--removable', '--no-nvram', '--recheck'] }]);
  assert.deepEqual(grubConfigCommand((p) => clone.has(p)), ['update-grub']);
  assert.deepEqual(grubConfigCommand((p) => p === 'usr/bin/grub-mkconfig'), ['grub-mkconfig', '-o', '/boot/grub/grub.cfg']);
  assert.deepEqual(grubConfigCommand((p) => p === 'usr/sbin/grub2-mkconfig'), ['grub2-mkconfig', '-o', '/boot/grub2/grub.cfg']);
  assert.equal(grubConfigCommand(() => false), undefined);
});

test('appendToGrubDefault adds words to GRUB_CMDLINE_LINUX once, or the line when there is none', () => {
  assert.equal(appendToGrubDefault('GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX="quiet"\n', 'console=ttyS0 quiet'), 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX="quiet console=ttyS0"\n');
  assert.equal(appendToGrubDefault('GRUB_CMDLINE_LINUX=""\n', 'a'), 'GRUB_CMDLINE_LINUX="a"\n');
  assert.equal(appendToGrubDefault('GRUB_DEFAULT=0', 'a b'), 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX="a b"\n');
  assert.equal(appendToGrubDefault('x\n', '  '), 'x\n');
});

test('extlinux: installed into the clone\'s boot folder, syslinux\'s MBR for the label', () => {
  assert.deepEqual(extlinuxCommands('/dev/sda', 'dos', () => false).map((c) => c.argv.join(' ')), [
    'extlinux --install /target/boot/extlinux',
    'dd if=/usr/lib/syslinux/mbr/mbr.bin of=/dev/sda bs=440 count=1 conv=notrunc,fsync',
  ]);
  assert.deepEqual(extlinuxCommands('/dev/sda', 'gpt', (p) => p === 'boot/syslinux/syslinux.cfg').map((c) => c.argv.join(' ')), [
    'extlinux --install /target/boot/syslinux',
    'dd if=/usr/lib/syslinux/mbr/gptmbr.bin of=/dev/sda bs=440 count=1 conv=notrunc,fsync',
  ]);
});

test('grubDiskProblem: BIOS on GPT needs a BIOS boot partition; DOS and UEFI do not', () => {
  assert.match(grubDiskProblem('bios', parseDesc('label gpt\nesp 512\nlinux fill ext4 /\n')) ?? '', /BIOS boot partition/);
  assert.equal(grubDiskProblem('bios', parseDesc('label gpt\ntype21686148-6449-6E6F-744E-656564454649 1\nlinux fill ext4 /\n')), undefined);
  assert.equal(grubDiskProblem('uefi', parseDesc('label gpt\nesp 512\nlinux fill ext4 /\n')), undefined);
  assert.equal(grubDiskProblem('bios', parseDesc('linux fill ext4 /\n')), undefined);
});

test('tailFile says a consumer\'s error lines while it runs, and the unfinished last one at the end', async () => {
  const dir = tmp('tail');
  try {
    const f = join(dir, 'x.err');
    const said: string[] = [];
    const t = tailFile(f, (l) => said.push(l), 20);
    await new Promise((r) => setTimeout(r, 60));
    appendFileSync(f, 'tar: one\ntar: tw');
    while (said.length < 1) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(said, ['tar: one']);
    appendFileSync(f, 'o\n\nlast without newline');
    t.stop();
    assert.deepEqual(said, ['tar: one', 'tar: two', 'last without newline']);
    assert.deepEqual(splitLines('a\n\nb\nc'), { lines: ['a', 'b'], rest: 'c' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('usedBytes: a mounted file system\'s used space, nothing for a missing folder', () => {
  const u = usedBytes(tmpdir());
  assert.ok(u !== undefined && u > 0);
  assert.equal(usedBytes('/nonexistent/folder'), undefined);
});
