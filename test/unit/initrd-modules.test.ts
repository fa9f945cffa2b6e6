import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAliases, parseModulesDep, parseSoftdeps, selectModules, moduleName } from '../../src/agent/build/kernel.js';

const dep = parseModulesDep([
  'kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz',
  'kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz',
  'kernel/net/core/failover.ko.xz:',
  'kernel/fs/xfs/xfs.ko: kernel/lib/libcrc32c.ko',
  'kernel/lib/libcrc32c.ko:',
  'kernel/arch/x86/crypto/crc32c-intel.ko:',
  'kernel/drivers/scsi/sd_mod.ko: kernel/drivers/scsi/scsi_common.ko',
  'kernel/drivers/scsi/scsi_common.ko:',
].join('\n'));

test('module names: - and _ are one, compression suffixes dropped', () => {
  assert.equal(moduleName('kernel/arch/x86/crypto/crc32c-intel.ko.zst'), 'crc32c_intel');
  assert.equal(dep.get('virtio_net')?.deps.length, 2);
});

test('selection: dependencies, soft dependencies through aliases, built-ins, missing ones', () => {
  const softdeps = parseSoftdeps('softdep libcrc32c pre: crc32c\nsoftdep xfs pre: nothing-here\nsoftdep libcrc32c post: crypto-foo\n');
  assert.deepEqual(softdeps.get('libcrc32c'), ['crc32c', 'crypto-foo']);
  const aliases = parseAliases('alias crc32c crc32c_intel\nalias pci:v*d* virtio_net\nalias crypto-crc32c crc32c-intel\n');
  assert.deepEqual(aliases.get('crc32c'), ['crc32c_intel']);
  assert.equal(aliases.has('pci:v*d*'), false);
  const sel = selectModules(['virtio_net', 'xfs', 'sd-mod', 'ext4', 'e1000'], dep, 'kernel/fs/ext4/ext4.ko\n', softdeps, aliases);
  assert.deepEqual(sel.files, [
    'kernel/arch/x86/crypto/crc32c-intel.ko',
    'kernel/drivers/net/net_failover.ko.xz',
    'kernel/drivers/net/virtio_net.ko.xz',
    'kernel/drivers/scsi/scsi_common.ko',
    'kernel/drivers/scsi/sd_mod.ko',
    'kernel/fs/xfs/xfs.ko',
    'kernel/lib/libcrc32c.ko',
    'kernel/net/core/failover.ko.xz',
  ]);
  assert.deepEqual(sel.builtin, ['ext4']);
  // a wanted module that is absent is reported; an absent soft dependency is not
  assert.deepEqual(sel.missing, ['e1000']);
});
