// The config keys for TFTP's limits (transfers at once, the file cache) and pxelinux's
// options 209/210: defaults, good values, and every kind of bad value refused with an
// error that names the file, the key and the fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, ConfigError } from '../../src/config/load.js';
import { defaults } from '../../src/config/schema.js';
import { fileCacheOptions } from '../../src/tftp/file-cache.js';

const MiB = 1024 * 1024;

const FILE = '/etc/kaboot/kaboot.yaml';

function refused(text: string, key: string, problem: RegExp, fix: RegExp) {
  assert.throws(() => parseConfig(text, FILE), (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(e.file, FILE);
    assert.equal(e.key, key);
    assert.match(e.problem, problem);
    assert.match(e.fix, fix);
    assert.ok(e.message.startsWith(`${FILE}:`), e.message);
    assert.ok(e.message.includes(key), e.message);
    return true;
  });
}

test('defaults: 2000 transfers at once, a 1024 MiB cache of files up to half of it (512 MiB); no option 209/210', () => {
  const c = parseConfig('', FILE);
  assert.equal(c.tftp.max_transfers, 2000);
  assert.equal(c.tftp.cache_mib, 1024);
  assert.equal(c.tftp.cache_file_max_mib, undefined);
  assert.deepEqual(fileCacheOptions(c.tftp), { maxTotalBytes: 1024 * MiB, maxFileBytes: 512 * MiB });
  // a smaller cache alone is enough: its file limit follows it
  assert.deepEqual(fileCacheOptions(parseConfig('tftp:\n  cache_mib: 64\n', FILE).tftp), { maxTotalBytes: 64 * MiB, maxFileBytes: 32 * MiB });
  assert.equal(c.boot.pxelinux.config_file, undefined);
  assert.equal(c.boot.pxelinux.path_prefix, undefined);
  assert.deepEqual(c.tftp, defaults.tftp);
});

test('good values are taken as written; cache_mib 0 turns the cache off whatever cache_file_max_mib says', () => {
  const c = parseConfig('tftp:\n  max_transfers: 50\n  cache_mib: 256\n  cache_file_max_mib: 256\nboot:\n  pxelinux:\n    config_file: pxelinux.cfg/lab\n    path_prefix: boot/\n', FILE);
  assert.equal(c.tftp.max_transfers, 50);
  assert.equal(c.tftp.cache_mib, 256);
  assert.equal(c.tftp.cache_file_max_mib, 256);
  assert.equal(c.boot.pxelinux.config_file, 'pxelinux.cfg/lab');
  assert.equal(c.boot.pxelinux.path_prefix, 'boot/');
  assert.equal(c.boot.pxelinux.reboot_time, defaults.boot.pxelinux.reboot_time);
  assert.equal(parseConfig('tftp:\n  cache_mib: 0\n', FILE).tftp.cache_mib, 0);
});

test('tftp.max_transfers: 0, negative, too many, fractional, not a number', () => {
  for (const v of ['0', '-5', '20001', '2.5', 'lots', 'null']) {
    refused(`tftp:\n  max_transfers: ${v}\n`, 'tftp.max_transfers', /got/, /whole number|transfers at once, 1-20000/);
  }
});

test('tftp.cache_mib: negative, too large, fractional, not a number', () => {
  for (const v of ['-1', '65537', '0.5', '1GiB']) {
    refused(`tftp:\n  cache_mib: ${v}\n`, 'tftp.cache_mib', /got/, /0-65536/);
  }
});

test('tftp.cache_file_max_mib: 0, 4096 and up (no Buffer that large), not a number', () => {
  for (const v of ['0', '4096', '1.5', 'big']) {
    refused(`tftp:\n  cache_file_max_mib: ${v}\n`, 'tftp.cache_file_max_mib', /got/, /1-4095/);
  }
});

test('tftp.cache_file_max_mib larger than the whole cache is refused, with the line', () => {
  refused('tftp:\n  cache_mib: 100\n  cache_file_max_mib: 200\n', 'tftp.cache_file_max_mib', /200 MiB is more than the whole cache/, /at most 100, or raise cache_mib/);
  assert.throws(() => parseConfig('tftp:\n  cache_mib: 100\n  cache_file_max_mib: 200\n', FILE), new RegExp(`^ConfigError: ${FILE}:3: tftp\\.cache_file_max_mib`));
});

test('boot.pxelinux.path_prefix without a trailing slash is refused, with the fix', () => {
  refused('boot:\n  pxelinux:\n    path_prefix: boot\n', 'boot.pxelinux.path_prefix', /"bootpxelinux\.cfg\/default"/, /End it with a slash, e\.g\. "boot\/"/);
  assert.equal(parseConfig('boot:\n  pxelinux:\n    path_prefix: http://10.0.0.1/boot/\n', FILE).boot.pxelinux.path_prefix, 'http://10.0.0.1/boot/');
});

test('boot.pxelinux.config_file and path_prefix: empty, over 255 characters, control or non-ASCII characters, not a string', () => {
  for (const key of ['config_file', 'path_prefix']) {
    for (const v of ['""', `"${'a'.repeat(255)}/"`, '"pxelinux.cfg/\\tdefault/"', '"böot/"', '[a, b]', '42']) {
      refused(`boot:\n  pxelinux:\n    ${key}: ${v}\n`, `boot.pxelinux.${key}`, /got/, /option 2(09|10).*printable ASCII/);
    }
  }
});
