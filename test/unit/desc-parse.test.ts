import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDesc, formatDesc, DescError } from '../../src/images/desc.js';
import { renderSfdiskScript } from '../../src/images/sfdisk-script.js';
import { GPT } from '../../src/images/part-types.js';

const seed = `linux 3500
extended fill
logical swap 500
logical linux fill
`;

function fails(text: string, line: number, column: number, re: RegExp, diskMiB?: number) {
  assert.throws(() => parseDesc(text, { diskMiB }), (e: unknown) => {
    assert.ok(e instanceof DescError, `not a DescError: ${String(e)}`);
    assert.equal(e.line, line, e.message);
    assert.equal(e.column, column, e.message);
    assert.match(e.message, re);
    assert.match(e.message, new RegExp(`^line ${line}, column ${column}: `));
    return true;
  });
}

test('the seed example parses into primaries 1-2 and logicals 5-6', () => {
  const plan = parseDesc(seed);
  assert.equal(plan.label, 'dos');
  assert.deepEqual(plan.partitions.map((p) => [p.number, p.logical, p.kind, p.typeCode, p.size, p.fs ?? null]), [
    [1, false, 'linux', '83', 3500, null],
    [2, false, 'extended', '5', 'fill', null],
    [5, true, 'swap', '82', 500, 'swap'],
    [6, true, 'linux', '83', 'fill', null],
  ]);
});

test('typeXX codes, comments, blank lines and CRLF', () => {
  const plan = parseDesc('# golden node\r\n\r\ntype83 100   # root\r\ntypeB 200\r\n  type0f fill\r\nlogical type82 fill\r\n');
  assert.deepEqual(plan.partitions.map((p) => [p.line, p.kind, p.typeCode, p.typeName]), [
    [3, 'linux', '83', 'type83'],
    [4, 'other', 'b', 'typeB'],
    [5, 'extended', 'f', 'type0f'],
    [6, 'swap', '82', 'type82'],
  ]);
});

test('gpt with an ESP, file systems and mount points', () => {
  const plan = parseDesc('label gpt\nesp 512\nlinux 3500 ext4 / label=root\nswap 500\nlinux fill xfs /home\n');
  assert.equal(plan.label, 'gpt');
  assert.deepEqual(plan.partitions.map((p) => [p.number, p.typeCode, p.fs, p.mount ?? null, p.fsLabel ?? null]), [
    [1, GPT.esp, 'vfat', '/boot/efi', null],
    [2, GPT.linux, 'ext4', '/', 'root'],
    [3, GPT.swap, 'swap', null, null],
    [4, GPT.linux, 'xfs', '/home', null],
  ]);
  assert.equal(parseDesc('gpt\ntype83 10\n').partitions[0]!.typeCode, GPT.linux);
  assert.equal(parseDesc('gpt\ntype21686148-6449-6e6f-744e-656564454649 1\n').partitions[0]!.typeCode, GPT.biosBoot);
});

test('errors name the line and the column and say what was expected', () => {
  fails('linux 3500\nlinux abc\n', 2, 7, /expected a size in MB .* or "fill", got "abc"/);
  fails('linux\n', 1, 6, /expected a size in MB or "fill"/);
  fails('linix 10\n', 1, 1, /expected a partition type .* got "linix"/);
  fails('  typezz 10\n', 1, 7, /expected a hex type code/);
  fails('linux 0\n', 1, 7, /at least 1 MB/);
  fails('linux 10 ext5\n', 1, 10, /expected a file system .* got "ext5"/);
  fails('linux 10 ext4 var\n', 1, 15, /got "var"/);
  fails('linux 10 ext4 /a/../b\n', 1, 15, /absolute mount point without/);
  fails('logical linux 10\n', 1, 1, /must follow an extended partition/);
  fails('linux 1\nlinux 1\nlinux 1\nlinux 1\nlinux 1\n', 5, 1, /at most 4 primary/);
  fails('linux fill\nswap 100\n', 2, 1, /line 1 already fills the disk/);
  fails('extended fill\nlogical linux fill\nlogical swap 10\n', 3, 1, /line 2 already fills the extended/);
  fails('extended fill\n', 1, 1, /without logical partitions/);
  fails('extended 10\nextended 10\nlogical linux 1\n', 2, 1, /second extended/);
  fails('gpt\nextended fill\n', 2, 1, /GPT has no extended/);
  fails('gpt\nlogical linux 1\n', 2, 1, /GPT has no logical/);
  fails('linux 10\nlabel gpt\n', 2, 1, /before the first partition/);
  fails('label gpt\nlabel dos\n', 2, 1, /second label line/);
  fails('label sun\n', 1, 7, /expected "dos" or "gpt", got "sun"/);
  fails('swap 10 ext4\n', 1, 9, /swap partition holds swap/);
  fails('linux 10 swap /x\n', 1, 15, /has no mount point/);
  fails('linux 10 ext4 /\nlinux 10 xfs /\n', 2, 1, /already used on line 1/);
  fails('type5a-1 10\n', 1, 5, /expected a hex type code/);
  fails('type0FC63DAF-8483-4772-8E79-3D69D8477DE4 10\n', 1, 5, /needs a GPT/);
  fails('gpt\ntype07 10\n', 2, 5, /no GPT equivalent/);
  fails('linux 10 label=no/slash\n', 1, 16, /file system label/);
  fails('extended 100\nlogical linux 60\nlogical linux 50\n', 1, 1, /need 112 MB .* extended partition has 100 MB/);
});

test('the plan must fit a disk of known size', () => {
  assert.doesNotThrow(() => parseDesc(seed, { diskMiB: 4004 }));
  fails(seed, 4, 1, /need 4004 MB but the disk has 4003 MB/, 4003);
  assert.doesNotThrow(() => parseDesc('gpt\nesp 512\nlinux 1534\n', { diskMiB: 2048 }));
  fails('gpt\nesp 512\nlinux 1535\n', 3, 1, /need 2049 MB/, 2048);
});

test('formatDesc gives text that parses to the same plan', () => {
  for (const text of [seed, 'label gpt\nesp 512\nlinux 3500 ext4 / label=root bootable\nswap 500\nlinux fill xfs /home\n', 'type7 100 bootable\ntypeb 100 vfat /win\nextended fill\nlogical linux 10 ext2 /boot\nlogical type82 fill\n', 'gpt\nesp 100 /efi\n']) {
    const plan = parseDesc(text);
    const again = parseDesc(formatDesc(plan));
    const strip = (p: typeof plan) => p.partitions.map(({ line: _l, ...rest }) => rest);
    assert.deepEqual(strip(again), strip(plan));
    assert.equal(again.label, plan.label);
  }
});

test('sfdisk script: numbered lines, fill as size=+, types per label', () => {
  assert.equal(renderSfdiskScript(parseDesc(seed + '')), [
    'label: dos', 'unit: sectors', '',
    'part1 : size=3500MiB, type=83',
    'part2 : size=+, type=5',
    'part5 : size=500MiB, type=82',
    'part6 : size=+, type=83', '',
  ].join('\n'));
  assert.equal(renderSfdiskScript(parseDesc('gpt\nesp 512\nlinux fill ext4 / label=root bootable\n'), { device: '/dev/nvme0n1' }), [
    'label: gpt', 'unit: sectors', '',
    `/dev/nvme0n1p1 : size=512MiB, type=${GPT.esp}`,
    `/dev/nvme0n1p2 : size=+, type=${GPT.linux}, attrs="LegacyBIOSBootable", name="root"`, '',
  ].join('\n'));
  assert.match(renderSfdiskScript(parseDesc('linux 10 bootable\n'), { device: '/dev/sda' }), /^\/dev\/sda1 : size=10MiB, type=83, bootable$/m);
});
