// The lab boots: a BIOS VM (SeaBIOS, iPXE ROM, iPXE script, HTTP) and a UEFI VM (OVMF,
// iPXE ROM, iPXE script, HTTP) PXE-boot from `kaboot serve` under qemu TCG, inside a
// namespace of their own, and their initrd reports the address kaboot's DHCP gave it.
// All the work is in lab.sh, which can be run by hand; this file runs it and checks
// what the guest printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import ipaddr from 'ipaddr.js';

const labScript = fileURLToPath(new URL('./lab.sh', import.meta.url));
const labSubnet = ipaddr.IPv4.parseCIDR('10.99.0.0/24');
const markerTimeoutSeconds = 240;

interface LabResult {
  mode: string;
  ip: string;
  mac: string;
  via: string;
  seconds: string;
}

function lineStarting(stdout: string, prefix: string): string | undefined {
  return stdout.split('\n').find((l) => l.startsWith(prefix));
}

function parseResult(stdout: string): LabResult | undefined {
  const line = lineStarting(stdout, 'LAB-RESULT ');
  if (!line) return undefined;
  const fields = Object.fromEntries(
    line.split(' ').slice(1).map((kv) => kv.split('=', 2) as [string, string]),
  );
  const { mode, ip, mac, via, seconds } = fields;
  if (!mode || !ip || !mac || !via || !seconds) return undefined;
  return { mode, ip, mac, via, seconds };
}

const paths = [
  { mode: 'bios', via: 'http' },
  { mode: 'uefi', via: 'http' },
] as const;

for (const { mode, via } of paths) {
  test(`lab: a ${mode.toUpperCase()} VM PXE-boots from kaboot (kernel and initrd over ${via.toUpperCase()}) to the initrd's marker`, { timeout: (markerTimeoutSeconds + 120) * 1000 }, async (t) => {
    const run = await execa('bash', [labScript, mode], {
      reject: false,
      all: true,
      env: { LAB_TIMEOUT: String(markerTimeoutSeconds) },
      // lab.sh stops by itself after LAB_TIMEOUT; this only guards a hang in its set-up.
      // SIGTERM lets its trap remove the namespace and end its processes.
      timeout: (markerTimeoutSeconds + 90) * 1000,
      killSignal: 'SIGTERM',
    });
    // On failure lab.sh has already put the serial log's and kaboot's log's tails in its output.
    assert.equal(run.exitCode, 0, `lab.sh ${mode} failed (exit ${run.exitCode}):\n${run.all}`);
    const result = parseResult(run.stdout);
    assert.ok(result, `lab.sh ${mode} printed no LAB-RESULT line:\n${run.all}`);
    assert.equal(result.mode, mode);
    assert.equal(result.via, via);
    assert.match(result.mac, /^52:54:00(:[0-9a-f]{2}){3}$/);
    assert.ok(ipaddr.IPv4.isValidFourPartDecimal(result.ip), `not an IPv4 address: ${result.ip}`);
    assert.ok(ipaddr.IPv4.parse(result.ip).match(labSubnet), `${result.ip} is outside the lab subnet 10.99.0.0/24`);
    const cmdline = lineStarting(run.stdout, 'LAB-CMDLINE ') ?? '';
    // iPXE on UEFI hands the kernel its initrd only when the command line names it.
    assert.match(cmdline, /(^| )initrd=all\.rdz( |$)/, `kernel command line without initrd=all.rdz: ${cmdline}`);
    assert.match(cmdline, / console=ttyS0/, `kernel command line without boot.append: ${cmdline}`);
    t.diagnostic(`${mode}: ${result.ip} for ${result.mac} via ${result.via}, marker after ${result.seconds} s`);
    t.diagnostic(lineStarting(run.stdout, 'LAB-PHASES ') ?? 'no LAB-PHASES line');
    t.diagnostic(cmdline);
  });
}

// A node on local boot, with a small disk (NIC first in the boot order, disk second) whose
// boot loader prints KABOOT-LAB-DISK: BIOS reaches it through the script's sanboot, UEFI
// through local-boot-x64.efi (GRUB searching the ESP), without OVMF's own PXE/HTTP boot.
// A blank disk on UEFI (a new node while boot.default is local): the image finds nothing,
// says so and exits, and the firmware goes on with its next boot option.
const localPaths = [
  { mode: 'bios-local', way: 'sanboot', disk: 'loader', title: 'goes from kaboot\'s iPXE script to its own disk' },
  { mode: 'uefi-local', way: 'local-efi', disk: 'loader', title: 'goes from kaboot\'s iPXE script to its own disk' },
  { mode: 'uefi-local', way: 'local-efi-found-nothing', disk: 'empty', title: 'with a blank disk is handed back to the firmware' },
] as const;

for (const { mode, way, disk, title } of localPaths) {
  test(`lab: a ${mode.split('-')[0]!.toUpperCase()} VM on local boot ${title} (${way})`, { timeout: (markerTimeoutSeconds + 120) * 1000 }, async (t) => {
    const run = await execa('bash', [labScript, mode], {
      reject: false,
      all: true,
      env: { LAB_TIMEOUT: String(markerTimeoutSeconds), LAB_LOCAL_DISK: disk },
      timeout: (markerTimeoutSeconds + 90) * 1000,
      killSignal: 'SIGTERM',
    });
    assert.equal(run.exitCode, 0, `lab.sh ${mode} failed (exit ${run.exitCode}):\n${run.all}`);
    const line = lineStarting(run.stdout, 'LAB-RESULT ');
    assert.ok(line, `lab.sh ${mode} printed no LAB-RESULT line:\n${run.all}`);
    const f = Object.fromEntries(line.split(' ').slice(1).map((kv) => kv.split('=', 2) as [string, string]));
    assert.equal(f.mode, mode);
    assert.equal(f.way, way);
    if (disk === 'empty') assert.notEqual(f.firmware_net_boots, '0', 'the firmware went on with its own boot options');
    else assert.equal(f.firmware_net_boots, '0', 'the firmware never tried its own network boot');
    t.diagnostic(lineStarting(run.stdout, 'LAB-PHASES ') ?? 'no LAB-PHASES line');
  });
}
