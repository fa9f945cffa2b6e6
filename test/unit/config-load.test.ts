import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, loadConfig, ConfigError } from '../../src/config/load.js';
import { defaults } from '../../src/config/schema.js';

function expectError(text: string, key: string, re: RegExp) {
  assert.throws(() => parseConfig(text, '/etc/kaboot.yaml'), (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(e.file, '/etc/kaboot.yaml');
    assert.equal(e.key, key);
    assert.match(e.message, re);
    assert.ok(e.fix.length > 0);
    return true;
  });
}

test('no file gives the safe default: proxy DHCP, never an address', () => {
  const { config, file } = loadConfig(undefined, '/srv');
  assert.equal(file, undefined);
  assert.equal(config.dhcp.mode, 'proxy');
  assert.deepEqual(config.dhcp.subnets, []);
  assert.equal(config.images_dir, '/srv/images');
});

test('an empty file is the default', () => {
  const c = parseConfig('', 'x.yaml');
  assert.deepEqual(c, defaults);
});

test('the example in docs/config.md is valid and does what the seed dhcpd.conf does', () => {
  const md = readFileSync(new URL('../../docs/config.md', import.meta.url), 'utf8');
  const m = /```yaml\n([\s\S]*?)```/.exec(md);
  assert.ok(m, 'docs/config.md has a yaml example');
  const c = parseConfig(m[1]!, 'docs/config.md');
  assert.equal(c.dhcp.mode, 'full');
  const s = c.dhcp.subnets[0]!;
  assert.deepEqual(s.range, ['192.168.10.30', '192.168.10.40']);
  assert.equal(s.lease_time, 288000);
  assert.equal(s.max_lease_time, 864000);
  assert.equal(s.domain_name, 'guibland.com');
  assert.ok(s.routers?.length && s.dns_servers?.length && s.next_server && s.hosts?.length);
  assert.equal(c.boot.pxelinux.reboot_time, 30);
});

test('unknown key names the key, the line and the known keys', () => {
  expectError('dhcp:\n  mode: full\n  subnetz: []\n', 'dhcp.subnetz', /unknown key.*Known keys here: .*subnets/);
  assert.throws(() => parseConfig('dhcp:\n  mode: full\n  subnetz: []\n', 'k.yaml'), /k\.yaml:3: dhcp\.subnetz/);
});

test('wrong enum value lists the right ones', () => {
  expectError('dhcp:\n  mode: fulll\n', 'dhcp.mode', /"proxy", "full", "off"|proxy: PXE answers only/);
});

test('bad address names the list index', () => {
  expectError('dhcp:\n  mode: full\n  subnets:\n    - subnet: 10.0.0.0/24\n      routers: [10.0.0.300]\n', 'dhcp.subnets[0].routers[0]', /10\.0\.0\.300/);
});

test('port out of range says what a right value is', () => {
  expectError('tftp:\n  port: 70000\n', 'tftp.port', /1-65535/);
});

test('full mode without subnets is refused', () => {
  expectError('dhcp:\n  mode: full\n', 'dhcp.subnets', /at least one subnet/);
});

test('range outside its subnet, reversed range, reservation outside, twice reserved MAC, overlapping subnets', () => {
  expectError('dhcp:\n  mode: full\n  subnets:\n    - subnet: 10.0.0.0/24\n      range: [10.0.1.5, 10.0.0.9]\n', 'dhcp.subnets[0].range[0]', /outside 10\.0\.0\.0\/24/);
  expectError('dhcp:\n  mode: full\n  subnets:\n    - subnet: 10.0.0.0/24\n      range: [10.0.0.50, 10.0.0.9]\n', 'dhcp.subnets[0].range', /comes after/);
  expectError('dhcp:\n  mode: full\n  subnets:\n    - subnet: 10.0.0.0/24\n      hosts: [{mac: "52:54:00:00:00:01", address: 10.9.0.1}]\n', 'dhcp.subnets[0].hosts[0].address', /outside/);
  expectError('dhcp:\n  mode: full\n  subnets:\n    - subnet: 10.0.0.0/24\n      hosts: [{mac: "52:54:00:00:00:01", address: 10.0.0.2}, {mac: "52-54-00-00-00-01", address: 10.0.0.3}]\n', 'dhcp.subnets[0].hosts[1].mac', /already reserved/);
  expectError('dhcp:\n  mode: full\n  subnets:\n    - subnet: 10.0.0.0/16\n    - subnet: 10.0.5.0/24\n', 'dhcp.subnets[1].subnet', /overlaps/);
});

test('YAML syntax errors name the line', () => {
  assert.throws(() => parseConfig('dhcp:\n  mode: [full\n', 'y.yaml'), (e: unknown) => e instanceof ConfigError && /y\.yaml(:\d+)?: \(top level\): YAML syntax error/.test(e.message));
});

test('duplicate keys are an error', () => {
  assert.throws(() => parseConfig('log:\n  level: info\n  level: debug\n', 'd.yaml'), ConfigError);
});

test('a missing file is a ConfigError naming it', () => {
  assert.throws(() => loadConfig('/nonexistent/kaboot.yaml'), (e: unknown) => e instanceof ConfigError && e.file === '/nonexistent/kaboot.yaml');
});

test('relative dirs are taken from the config file folder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kbcfg-'));
  writeFileSync(join(dir, 'k.yaml'), 'images_dir: img\nstate_dir: /var/lib/kaboot\n');
  const { config } = loadConfig(join(dir, 'k.yaml'));
  assert.equal(config.images_dir, join(dir, 'img'));
  assert.equal(config.state_dir, '/var/lib/kaboot');
});

test('fuzzed config texts never escape as anything but ConfigError', () => {
  const pieces = ['dhcp:', '  mode: full', '  subnets:', '    - subnet: 10.0.0.0/24', '      range: [10.0.0.2, 10.0.0.9]', 'tftp: {port: 69}', 'http: 7', '- a', '{', '"', 'boot:\n  files: null', '&a [*a]', 'log: {level: loud}', '\t', ':', 'api: {token: short}'];
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let i = 0; i < 3000; i++) {
    const n = Math.floor(rnd() * 6);
    const text = Array.from({ length: n }, () => pieces[Math.floor(rnd() * pieces.length)]).join('\n');
    try {
      parseConfig(text, 'f.yaml');
    } catch (e) {
      assert.ok(e instanceof ConfigError, `${JSON.stringify(text)} threw ${String(e)}`);
    }
  }
});
