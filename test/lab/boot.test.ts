// The lab boots: a BIOS VM (SeaBIOS, iPXE ROM, pxelinux, TFTP) and a UEFI VM (OVMF,
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
  seconds: string;
}

function parseResult(stdout: string): LabResult | undefined {
  const line = stdout.split('\n').find((l) => l.startsWith('LAB-RESULT '));
  if (!line) return undefined;
  const fields = Object.fromEntries(
    line.split(' ').slice(1).map((kv) => kv.split('=', 2) as [string, string]),
  );
  const { mode, ip, mac, seconds } = fields;
  if (!mode || !ip || !mac || !seconds) return undefined;
  return { mode, ip, mac, seconds };
}

for (const mode of ['bios', 'uefi'] as const) {
  test(`lab: a ${mode.toUpperCase()} VM PXE-boots from kaboot to the initrd's marker`, { timeout: (markerTimeoutSeconds + 120) * 1000 }, async (t) => {
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
    assert.match(result.mac, /^52:54:00(:[0-9a-f]{2}){3}$/);
    assert.ok(ipaddr.IPv4.isValidFourPartDecimal(result.ip), `not an IPv4 address: ${result.ip}`);
    assert.ok(ipaddr.IPv4.parse(result.ip).match(labSubnet), `${result.ip} is outside the lab subnet 10.99.0.0/24`);
    const phases = run.stdout.split('\n').find((l) => l.startsWith('LAB-PHASES '));
    t.diagnostic(`${mode}: ${result.ip} for ${result.mac}, marker after ${result.seconds} s${phases ? ` (${phases})` : ''}`);
  });
}
