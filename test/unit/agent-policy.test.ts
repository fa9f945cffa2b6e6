import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseKernelCmdline, parseApplianceAddress } from '../../src/agent/cmdline.js';
import { afterFailedAttempt, defaultRetryPolicy } from '../../src/agent/retry-policy.js';
import { parseLease, udhcpcArgs } from '../../src/agent/dhcp.js';
import { applianceCandidates } from '../../src/agent/appliance.js';
import { clientArchHex } from '../../src/agent/firmware.js';

test('kernel command line: server, token, BOOTIF; bad words named', () => {
  const c = parseKernelCmdline('console=ttyS0 initrd=all.rdz kaboot.server=10.0.0.1:8080 kaboot.token=abc BOOTIF=01-52-54-00-AA-bb-01 quiet\n');
  assert.deepEqual(c, { server: { host: '10.0.0.1', port: 8080 }, token: 'abc', bootif: '52:54:00:aa:bb:01', problems: [] });
  assert.deepEqual(parseKernelCmdline('kaboot.server=10.0.0.1').server, { host: '10.0.0.1', port: 80 });
  const bad = parseKernelCmdline('kaboot.server=10.0.0.300:80 kaboot.server=1.2.3.4:99999 BOOTIF=zz kaboot.token=');
  assert.equal(bad.server, undefined);
  assert.equal(bad.problems.length, 4);
  assert.deepEqual(parseKernelCmdline('ro quiet'), { problems: [] });
  // the boot firmware's lease: pxelinux's IPAPPEND 1 form, as iPXE's script writes it too
  assert.deepEqual(parseKernelCmdline('ip=10.97.0.100:10.97.0.1:10.97.0.1:255.255.255.0').ip, { ip: '10.97.0.100', prefix: 24, server: '10.97.0.1', gateway: '10.97.0.1' });
  assert.deepEqual(parseKernelCmdline('ip=10.0.0.5:::255.255.0.0').ip, { ip: '10.0.0.5', prefix: 16 });
  assert.deepEqual(parseKernelCmdline('ip=10.0.0.5:0.0.0.0:0.0.0.0:255.255.255.128').ip, { ip: '10.0.0.5', prefix: 25 });
  for (const v of ['dhcp', '10.0.0.5', '10.0.0.5:::255.0.255.0', '10.0.0.5:::0.0.0.0', '0.0.0.0:::255.255.255.0', '10.0.0.300:::255.255.255.0', '10.0.0.5:x::255.255.255.0', ':::', '10.0.0.5::::eth0']) {
    const c = parseKernelCmdline(`ip=${v}`);
    assert.equal(c.ip, undefined, v);
    assert.match(c.problems.join(), /DHCP will ask again/, v);
  }
  assert.deepEqual(parseApplianceAddress('[fd00::1]:8080'), { host: 'fd00::1', port: 8080 });
});

test('retry policy: four pauses that grow, then a reboot with the address in the message', () => {
  const tried = ['http://10.0.0.1:8080'];
  const steps = [1, 2, 3, 4, 5].map((n) => afterFailedAttempt(n, tried));
  assert.deepEqual(steps.map((s) => s.kind), ['retry', 'retry', 'retry', 'retry', 'reboot']);
  const delays = steps.flatMap((s) => (s.kind === 'retry' ? [s.delayMs] : []));
  for (let i = 1; i < delays.length; i++) assert.ok(delays[i]! >= delays[i - 1]!);
  assert.ok(delays.every((d) => d <= defaultRetryPolicy.maxDelayMs));
  assert.match(steps[4]!.message, /^can't reach a kaboot appliance at http:\/\/10\.0\.0\.1:8080 \(attempt 5 of 5\); rebooting$/);
  assert.match(afterFailedAttempt(1, []).message, /no kaboot\.server=/);
  assert.equal(afterFailedAttempt(9, tried).kind, 'reboot');
});

test('udhcpc: option 93 by firmware, vendor class kaboot-agent', () => {
  assert.equal(clientArchHex('uefi'), '0007');
  assert.equal(clientArchHex('bios'), '0000');
  const args = udhcpcArgs('eth0', 'uefi', '/run/s');
  assert.deepEqual(args.slice(args.indexOf('-x'), args.indexOf('-x') + 2), ['-x', '0x5d:0007']);
  assert.deepEqual(args.slice(args.indexOf('-V'), args.indexOf('-V') + 2), ['-V', 'kaboot-agent']);
  assert.ok(udhcpcArgs('eth0', 'bios', '/run/s').includes('0x5d:0000'));
});

test('lease files from the udhcpc script', () => {
  assert.deepEqual(parseLease('interface=eth0\nip=10.1.0.50\nmask=\nsubnet=255.255.255.0\nrouter=10.1.0.1 10.1.0.2\nserverid=10.1.0.1\nsiaddr=10.1.0.9\nboot_file=\n'), {
    iface: 'eth0', ip: '10.1.0.50', mask: 24, router: '10.1.0.1', serverid: '10.1.0.1', siaddr: '10.1.0.9', bootFile: undefined,
  });
  assert.equal(parseLease('interface=eth0\nip=10.1.0.50\nmask=16\nsiaddr=0.0.0.0\n')?.siaddr, undefined);
  assert.equal(parseLease('interface=eth0\nip=10.1.0.50\nmask=16\n')?.mask, 16);
  assert.equal(parseLease('interface=eth0\nip=999.1.0.1\n'), undefined);
  assert.equal(parseLease(''), undefined);
});

test('appliance candidates: command line, then next-server, then DHCP server, no repeats', () => {
  const leases = [
    { iface: 'eth0', ip: '10.1.0.50', mask: 24, serverid: '10.1.0.1', siaddr: '10.1.0.9' },
    { iface: 'eth1', ip: '10.2.0.50', mask: 24, serverid: '10.1.0.9' },
  ];
  assert.deepEqual(applianceCandidates({ host: '10.1.0.1', port: 8080 }, leases), ['http://10.1.0.1:8080', 'http://10.1.0.9:80', 'http://10.1.0.1:80']);
  assert.deepEqual(applianceCandidates(undefined, leases, 8080), ['http://10.1.0.9:8080', 'http://10.1.0.1:8080']);
  assert.deepEqual(applianceCandidates(undefined, []), []);
});
