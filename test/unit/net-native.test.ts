// The addon's argument checks and error shapes. Nothing here sends a packet: the only
// sockets made are refused before bind (a device that does not exist).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNative, loadAddonFrom, packageRoot, NativeAddonMissingError } from '../../src/net/native.js';

const native = loadNative();
const missingIf = 'kbnosuchif0';

test('the addon exports udpSocketOnDevice and closeFd', () => {
  assert.equal(typeof native.udpSocketOnDevice, 'function');
  assert.equal(typeof native.closeFd, 'function');
});

test('bad ifname, port and options are refused with typed errors', () => {
  const call = (...args: unknown[]) => () => (native.udpSocketOnDevice as (...a: unknown[]) => number)(...args);
  assert.throws(call(42, 67), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: /ifname must be a string/ });
  assert.throws(call('eth0'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(call('', 67), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: /1 to 15 bytes/ });
  assert.throws(call('a-very-long-ifname', 67), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
  for (const port of [-1, 65536, 1.5, Number.NaN]) {
    assert.throws(call('eth0', port), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: /port must be an integer/ }, String(port));
  }
  assert.throws(call('eth0', '67'), { name: 'TypeError', message: /port must be a number/ });
  assert.throws(call('eth0', 67, 'broadcast'), { name: 'TypeError', message: /opts must be an object/ });
  assert.throws(call('eth0', 67, { broadcast: 'yes' }), { name: 'TypeError', message: /option broadcast must be a boolean/ });
  assert.throws(call('eth0', 67, { reuseAddr: 1 }), { name: 'TypeError', message: /option reuseAddr must be a boolean/ });
  assert.throws(call('eth0', 67, { address: '10.0.0' }), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(call('eth0', 67, { address: 10 }), { name: 'TypeError', message: /address must be a string/ });
});

test('a missing device gives a system error shaped like Node\'s (ENODEV, errno, syscall)', () => {
  assert.throws(() => native.udpSocketOnDevice(missingIf, 0, { broadcast: true, reuseAddr: true }), (e: unknown) => {
    const err = e as Error & { code: string; errno: number; syscall: string };
    assert.equal(err.code, 'ENODEV');
    assert.equal(err.errno, -19);
    assert.equal(err.syscall, 'setsockopt');
    assert.match(err.message, new RegExp(`SO_BINDTODEVICE ${missingIf}: No such device`));
    return true;
  });
});

test('a refused socket leaks no descriptor', () => {
  const before = readdirSync('/proc/self/fd').length;
  for (let i = 0; i < 200; i++) assert.throws(() => native.udpSocketOnDevice(missingIf, 0, {}));
  assert.equal(readdirSync('/proc/self/fd').length, before);
});

test('closeFd refuses a non-descriptor and reports EBADF', () => {
  assert.throws(() => native.closeFd(-1), { name: 'TypeError' });
  assert.throws(() => native.closeFd(1_000_000), { code: 'EBADF', syscall: 'close' });
});

test('an absent or broken addon file gives NativeAddonMissingError telling how to build it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kaboot-native-'));
  try {
    assert.throws(() => loadAddonFrom(join(dir, 'kaboot_native.node')), (e: unknown) => {
      assert.ok(e instanceof NativeAddonMissingError);
      assert.equal(e.code, 'KABOOT_NATIVE_MISSING');
      assert.match(e.message, /^native addon not built: run npm install \(needs python3, make, g\+\+\)/);
      return true;
    });
    const broken = join(dir, 'broken.node');
    writeFileSync(broken, 'not an ELF object');
    assert.throws(() => loadAddonFrom(broken), (e: unknown) => e instanceof NativeAddonMissingError && e.cause instanceof Error);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('packageRoot finds kaboot\'s package.json, and fails clearly outside it', () => {
  assert.match(packageRoot(), /\S/);
  assert.throws(() => packageRoot(tmpdir()), /kaboot's package.json not found above/);
});
