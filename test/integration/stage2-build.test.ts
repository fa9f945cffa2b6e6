// `kaboot stage2 build` twice: the same bytes. Then the image is used as a node uses it: loop
// mounted read-only, /dev /proc /sys bound, tmpfs on /tmp and /run, a scratch directory bound on
// /target, and the tools run through chroot: versions, every ELF's libraries, then partitioning,
// mkfs of each file system type, GRUB images for BIOS and UEFI, extlinux on a mounted ext4, and
// the receive step's `zstd -dc | tar -x --xattrs --acls` into that file system.
// The .deb files are cached in ~/.cache/kaboot/debs, so only the first run on a machine fetches them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, openSync, readSync, closeSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { buildStage2, stage2Tools, type Stage2Manifest } from '../../src/stage2/build.js';
import { defaultCacheDir, repoRoot } from '../../src/agent/build/inputs.js';
import { defaultKernelRelease, fetchKernel } from '../../src/agent/build/kernel.js';

test('stage2: two builds give the same bytes; the tools run in its chroot and do real work', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'kaboot-stage2-'));
  const mnt = join(base, 'mnt');
  const scratch = join(base, 'scratch');
  mkdirSync(mnt);
  mkdirSync(scratch);
  let mounted = false;
  try {
    const cacheDir = defaultCacheDir();
    const a = await buildStage2({ outDir: join(base, 'a'), cacheDir });
    const b = await buildStage2({ outDir: join(base, 'b'), cacheDir });

    await t.test('same inputs, same bytes; the manifest tells the truth', () => {
      for (const f of ['stage2.sqfs', 'stage2.manifest.json', 'local-boot-x64.efi']) {
        assert.ok(readFileSync(join(base, 'a', f)).equals(readFileSync(join(base, 'b', f))), `${f} differs between two builds`);
      }
      const m = JSON.parse(readFileSync(a.manifestFile, 'utf8')) as Stage2Manifest;
      const bytes = readFileSync(a.image);
      assert.equal(m.squashfs.sha256, createHash('sha256').update(bytes).digest('hex'));
      assert.equal(m.squashfs.size, bytes.length);
      assert.equal(bytes.subarray(0, 4).toString('latin1'), 'hsqs');
      assert.equal(bytes.readUInt16LE(20), 6, 'compression id 6 is zstd');
      const names = m.packages.map((p) => p.name);
      assert.deepEqual([...names].sort(), names);
      for (const want of ['util-linux', 'fdisk', 'e2fsprogs', 'xfsprogs', 'btrfs-progs', 'dosfstools', 'grub-pc-bin', 'grub-efi-amd64-bin', 'extlinux', 'libc6', 'libsystemd0']) {
        assert.ok(names.includes(want), `${want} in the closure`);
      }
      // One provider per virtual package or or-group; pruned packages are not pulled in.
      for (const not of ['libelogind0', 'cdebconf', 'debconf', 'python3', 'perl', 'dpkg', 'libicu72', 'gawk']) assert.ok(!names.includes(not), `${not} not in stage2`);
      assert.ok(names.includes('mawk'), 'awk is provided by mawk (priority required), as apt would pick');
      for (const p of m.packages) assert.match(p.deb_sha256, /^[0-9a-f]{64}$/);
      assert.deepEqual(m.tools.map((x) => x.name), stage2Tools);
      // the UEFI local-boot GRUB beside it: a PE image for x86-64 whose memdisk holds the search config
      const efi = readFileSync(join(base, 'a', m.local_boot_efi.file));
      assert.equal(m.local_boot_efi.sha256, createHash('sha256').update(efi).digest('hex'));
      assert.equal(efi.subarray(0, 2).toString('latin1'), 'MZ');
      const pe = efi.readUInt32LE(0x3c);
      assert.equal(efi.subarray(pe, pe + 4).toString('latin1'), 'PE\0\0');
      assert.equal(efi.readUInt16LE(pe + 4), 0x8664, 'machine x86-64');
      assert.ok(efi.includes('search --no-floppy --file --set=esp'), 'the memdisk config is inside');
    });

    await t.test("the node's kernel can mount it: squashfs with zstd, and the initrd loads squashfs and loop", async () => {
      const kernel = await fetchKernel(cacheDir, await defaultKernelRelease('generic'));
      const config = readFileSync(join(kernel.dir, 'boot', `config-${kernel.release}`), 'utf8');
      assert.match(config, /^CONFIG_SQUASHFS=[ym]$/m);
      assert.match(config, /^CONFIG_SQUASHFS_ZSTD=y$/m);
      const modules = readFileSync(join(repoRoot(), 'initrd/modules.list'), 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim());
      for (const m of ['squashfs', 'loop']) assert.ok(modules.includes(m), `${m} in initrd/modules.list`);
    });

    // Mounted as the agent mounts it on a node.
    await execa('mount', ['-t', 'squashfs', '-o', 'ro,loop', a.image, mnt]);
    mounted = true;
    await execa('mount', ['--make-private', mnt]);
    for (const d of ['dev', 'proc', 'sys']) await execa('mount', ['--bind', `/${d}`, join(mnt, d)]);
    for (const d of ['tmp', 'run']) await execa('mount', ['-t', 'tmpfs', 'tmpfs', join(mnt, d)]);
    await execa('mount', ['--bind', scratch, join(mnt, 'target')]);
    const inRoot = (...argv: string[]) => execa('chroot', [mnt, ...argv], { reject: false, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' }, extendEnv: false });
    const ok = async (...argv: string[]) => {
      const r = await inRoot(...argv);
      assert.equal(r.exitCode, 0, `chroot ${argv.join(' ')}: exit ${r.exitCode}\n${r.stdout}\n${r.stderr}`);
      return r;
    };

    await t.test('the tools run from the image', async () => {
      const versions: [string[], RegExp][] = [
        [['sfdisk', '--version'], /util-linux/],
        [['mkfs.ext4', '-V'], /mke2fs/],
        [['mkfs.xfs', '-V'], /mkfs\.xfs version/],
        [['mkfs.btrfs', '--version'], /btrfs-progs/],
        [['mkfs.vfat', '--help'], /Usage: mkfs\.vfat/],
        [['tar', '--version'], /GNU tar/],
        [['zstd', '--version'], /Zstandard/],
        [['grub-install', '--version'], /grub-install \(GRUB\)/],
        [['extlinux', '--version'], /extlinux/],
        [['blkid', '-V'], /blkid from util-linux/],
        [['efibootmgr', '--version'], /version/],
        [['sh', '-c', 'echo "$0"', 'dash-ok'], /dash-ok/],
      ];
      for (const [argv, want] of versions) {
        const r = await ok(...argv);
        assert.match(r.stdout + r.stderr, want, argv.join(' '));
      }
    });

    await t.test('every program in /usr/bin and /usr/sbin finds its libraries in the image', async () => {
      let elves = 0;
      for (const dir of ['usr/bin', 'usr/sbin']) {
        for (const name of readdirSync(join(mnt, dir)).sort()) {
          const host = join(mnt, dir, name);
          if (!lstatSync(host).isFile() || !isElf(host)) continue;
          elves++;
          const r = await ok('/lib64/ld-linux-x86-64.so.2', '--list', `/${dir}/${name}`);
          assert.doesNotMatch(r.stdout, /not found/, `/${dir}/${name}`);
        }
      }
      assert.ok(elves > 100, `${elves} programs`);
    });

    await t.test('every script in /usr/bin and /usr/sbin has its interpreter in the image', async () => {
      const missing: string[] = [];
      for (const dir of ['usr/bin', 'usr/sbin']) {
        for (const name of readdirSync(join(mnt, dir)).sort()) {
          const host = join(mnt, dir, name);
          if (!lstatSync(host).isFile()) continue;
          const head = readHead(host, 128).toString('latin1');
          if (!head.startsWith('#!')) continue;
          const interpreter = head.slice(2).split('\n')[0]!.trim().split(/\s+/)[0]!;
          const r = await inRoot('test', '-x', interpreter);
          if (r.exitCode !== 0) missing.push(`/${dir}/${name}: ${interpreter}`);
        }
      }
      assert.deepEqual(missing, []);
    });

    await t.test('partition, format, make GRUB images', async () => {
      // A DOS label with a bootable partition, syslinux's MBR code in front, on a plain file.
      await execa('truncate', ['-s', '64M', join(scratch, 'disk.img')]);
      await ok('sh', '-c', 'printf "label: dos\\n,32M,L,*\\n,,S\\n" | sfdisk -q /target/disk.img');
      await ok('dd', 'if=/usr/lib/syslinux/mbr/mbr.bin', 'of=/target/disk.img', 'bs=440', 'count=1', 'conv=notrunc', 'status=none');
      const dump = await ok('sfdisk', '--json', '/target/disk.img');
      const table = JSON.parse(dump.stdout) as { partitiontable: { label: string; partitions: { type: string; bootable?: boolean }[] } };
      assert.equal(table.partitiontable.label, 'dos');
      assert.deepEqual(table.partitiontable.partitions.map((p) => [p.type, p.bootable ?? false]), [['83', true], ['82', false]]);

      const filesystems: [string, string, string[]][] = [
        ['ext4.img', '64M', ['mkfs.ext4', '-q', '-L', 'root']],
        ['xfs.img', '320M', ['mkfs.xfs', '-q', '-L', 'data']],
        ['btrfs.img', '160M', ['mkfs.btrfs', '-q', '-L', 'pool']],
        ['vfat.img', '64M', ['mkfs.vfat', '-n', 'ESP']],
        ['swap.img', '16M', ['mkswap', '-L', 'swap']],
      ];
      for (const [file, size, mkfs] of filesystems) {
        await execa('truncate', ['-s', size, join(scratch, file)]);
        await ok(...mkfs, `/target/${file}`);
      }
      for (const [file, type, label] of [['ext4.img', 'ext4', 'root'], ['xfs.img', 'xfs', 'data'], ['btrfs.img', 'btrfs', 'pool'], ['vfat.img', 'vfat', 'ESP'], ['swap.img', 'swap', 'swap']]) {
        const r = await ok('blkid', '-o', 'export', `/target/${file}`);
        assert.match(r.stdout, new RegExp(`^TYPE=${type}$`, 'm'), file);
        assert.match(r.stdout, new RegExp(`^LABEL=${label}$`, 'm'), file);
      }

      await ok('grub-mkimage', '-O', 'i386-pc', '-p', '(hd0,msdos1)/boot/grub', '-o', '/target/core.img', 'biosdisk', 'part_msdos', 'ext2', 'search_fs_uuid', 'normal');
      await ok('grub-mkimage', '-O', 'x86_64-efi', '-p', '/EFI/debian', '-o', '/target/grubx64.efi', 'part_gpt', 'fat', 'ext2', 'search_fs_uuid', 'normal');
      assert.ok(statSync(join(scratch, 'core.img')).size > 10_000);
      assert.equal(readFileSync(join(scratch, 'grubx64.efi')).subarray(0, 2).toString('latin1'), 'MZ');
    });

    await t.test('receive: zstd -dc | tar -x --xattrs --acls --sparse in the chroot, into a loop-mounted ext4; extlinux on it', async () => {
      // The stream as an image capture makes it: owners, modes, an xattr, an ACL, a sparse file, a symlink.
      const src = join(base, 'src');
      mkdirSync(join(src, 'etc'), { recursive: true });
      writeFileSync(join(src, 'etc/hostname'), 'golden\n');
      writeFileSync(join(src, 'tagged'), 'xattr here\n');
      writeFileSync(join(src, 'shared'), 'acl here\n');
      writeFileSync(join(src, 'suid'), '#!/bin/sh\n');
      await execa('chmod', ['4755', join(src, 'suid')]);
      await execa('chown', ['1234:5678', join(src, 'etc/hostname')]);
      await execa('setfattr', ['-n', 'user.kaboot', '-v', 'hello', join(src, 'tagged')]);
      await execa('setfacl', ['-m', 'u:4321:rw', join(src, 'shared')]);
      await execa('truncate', ['-s', '200M', join(src, 'sparse')]);
      await execa('sh', ['-c', `printf end | dd of=${join(src, 'sparse')} bs=1 seek=100M conv=notrunc status=none`]);
      await execa('ln', ['-s', 'etc/hostname', join(src, 'link')]);
      await execa('sh', ['-c', `tar --create --xattrs --xattrs-include='user.*' --acls --numeric-owner --sparse -C ${src} . | zstd -q -c > ${join(scratch, 'root.tar.zst')}`]);

      // The target file system, mounted where the node mounts it: under /stage2/target.
      mkdirSync(join(scratch, 'root'));
      await execa('mount', ['-o', 'loop', join(scratch, 'ext4.img'), join(mnt, 'target/root')]);
      try {
        await ok('sh', '-c', "zstd -dc /target/root.tar.zst | tar -x --xattrs --xattrs-include='user.*' --acls --numeric-owner --sparse -C /target/root");
        const dst = join(mnt, 'target/root');
        assert.equal(readFileSync(join(dst, 'etc/hostname'), 'utf8'), 'golden\n');
        const st = statSync(join(dst, 'etc/hostname'));
        assert.deepEqual([st.uid, st.gid], [1234, 5678]);
        assert.equal(statSync(join(dst, 'suid')).mode & 0o7777, 0o4755);
        // attr (getfattr) is not in stage2: read the xattr from the host.
        const attr = await execa('getfattr', ['-n', 'user.kaboot', '--only-values', join(dst, 'tagged')]);
        assert.equal(attr.stdout, 'hello');
        const acl = await ok('getfacl', '-n', '-p', '/target/root/shared');
        assert.match(acl.stdout, /^user:4321:rw-$/m);
        const sparse = statSync(join(dst, 'sparse'));
        assert.equal(sparse.size, 200 * 1024 * 1024);
        assert.ok(sparse.blocks * 512 < 1024 * 1024, `sparse file takes ${sparse.blocks * 512} bytes on disk`);
        assert.equal(lstatSync(join(dst, 'link')).isSymbolicLink(), true);

        mkdirSync(join(dst, 'boot/extlinux'), { recursive: true });
        await ok('extlinux', '--install', '/target/root/boot/extlinux');
        assert.ok(statSync(join(dst, 'boot/extlinux/ldlinux.sys')).size > 0);
      } finally {
        await execa('umount', [join(mnt, 'target/root')]);
      }
      const fsck = await execa('e2fsck', ['-fn', join(scratch, 'ext4.img')], { reject: false });
      assert.equal(fsck.exitCode, 0, fsck.stdout + fsck.stderr);
    });
  } finally {
    if (mounted) await execa('umount', ['-R', mnt], { reject: false });
    // Never rm -r through a bind of the host's /dev or /sys: remove only when nothing under base is mounted.
    const left = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((p) => p.startsWith(base));
    if (left.length) throw new Error(`still mounted, ${base} left in place: ${left.join(', ')}`);
    rmSync(base, { recursive: true, force: true });
  }
});

function readHead(file: string, n: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(n);
    return b.subarray(0, readSync(fd, b, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}

function isElf(file: string): boolean {
  return readHead(file, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
}
