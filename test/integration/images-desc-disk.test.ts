// desc → sfdisk script → a real partition table (sfdisk on a disk image file) →
// sfdisk --json (+ blkid at each partition's offset) → desc: the same plan comes back.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { parseDesc, type DescPlan } from '../../src/images/desc.js';
import { renderSfdiskScript } from '../../src/images/sfdisk-script.js';
import { descFromDisk, readDiskFacts } from '../../src/images/desc-from-disk.js';
import { repoRoot } from '../helpers/kaboot-process.js';

const work = await mkdtemp(join(tmpdir(), 'kaboot-desc-'));
after(() => rm(work, { recursive: true, force: true }));

const MiB = 1024 * 1024;
let n = 0;

async function partitionFile(desc: string, diskMiB: number): Promise<{ disk: string; plan: DescPlan }> {
  const disk = join(work, `disk${n++}.img`);
  await execa('truncate', ['-s', `${diskMiB}M`, disk]);
  const plan = parseDesc(desc, { diskMiB });
  await execa('sfdisk', ['--quiet', '--wipe', 'always', disk], { input: renderSfdiskScript(plan, { device: disk }) });
  return { disk, plan };
}

const comparable = (plan: DescPlan, opts: { mounts?: boolean } = {}) => ({
  label: plan.label,
  partitions: plan.partitions.map((p) => ({
    number: p.number, logical: p.logical, kind: p.kind, typeCode: p.typeCode, size: p.size, fs: p.fs ?? null,
    mount: opts.mounts === false ? null : p.mount ?? null, fsLabel: p.fsLabel ?? null, bootable: p.bootable,
  })),
});

test('the seed example round-trips through a real DOS table', async () => {
  const { disk, plan } = await partitionFile('linux 3500\nextended fill\nlogical swap 500\nlogical linux fill\n', 5000);
  const facts = await readDiskFacts(disk);
  assert.deepEqual(facts.table.partitions?.map((p) => [p.node.slice(disk.length), p.type]), [['1', '83'], ['2', '5'], ['5', '82'], ['6', '83']]);
  assert.equal(facts.table.partitions?.[0]?.size, 3500 * MiB / 512);
  const text = await descFromDisk(disk);
  assert.match(text, /^# desc of .*: 5000 MB, dos label/);
  assert.equal(text.split('\n').filter((l) => !l.startsWith('#')).join('\n'), 'linux 3500\nextended fill\nlogical swap 500\nlogical linux fill\n');
  assert.deepEqual(comparable(parseDesc(text)), comparable(plan));
});

test('GPT with an ESP, an ext4 root with a label, swap and fill', async () => {
  const desc = 'label gpt\nesp 512\nlinux 1000 ext4 label=root bootable\nswap 200\nlinux fill xfs\n';
  const { disk, plan } = await partitionFile(desc, 2048);
  const facts = await readDiskFacts(disk);
  const root = facts.table.partitions![1]!;
  await execa('mkfs.ext4', ['-q', '-F', '-L', 'root', '-E', `offset=${root.start * 512}`, disk, `${(root.size * 512) / 1024}k`]);
  const text = await descFromDisk(disk);
  const back = parseDesc(text);
  // the file systems that exist come back from blkid; xfs was never made, so the last partition has none
  assert.equal(back.partitions[1]!.fs, 'ext4');
  assert.equal(back.partitions[1]!.fsLabel, 'root');
  assert.equal(back.partitions[3]!.fs, undefined);
  const want = comparable(plan, { mounts: false });
  want.partitions[3]!.fs = null;
  assert.deepEqual(comparable(back, { mounts: false }), want);
});

test('a fixed-size extended partition with a primary after it keeps every partition number', async () => {
  const desc = 'linux 100 bootable\nextended 300\nlogical swap 100\nlogical type83 fill\ntypeb fill\n';
  const { disk, plan } = await partitionFile(desc, 1000);
  const facts = await readDiskFacts(disk);
  assert.deepEqual(facts.table.partitions?.map((p) => [Number(p.node.slice(disk.length)), p.type]), [[1, '83'], [2, '5'], [3, 'b'], [5, '82'], [6, '83']]);
  const text = await descFromDisk(disk);
  assert.equal(text.split('\n').filter((l) => !l.startsWith('#')).join('\n'), 'linux 100 bootable\nextended 300\nlogical swap 100\nlogical linux fill\ntypeb fill\n');
  const back = comparable(parseDesc(text));
  const want = comparable(plan);
  assert.deepEqual(back, want);
});

test('kaboot desc from-disk, check and sfdisk on the command line', async () => {
  const { disk } = await partitionFile('gpt\nesp 100\nlinux fill\n', 500);
  const kaboot = (...args: string[]) => execa('node', ['--import', 'tsx', '-e', "const {main}=await import('./src/cli/main.ts'); process.exitCode=await main(process.argv.slice(1))", '--', ...args], { cwd: repoRoot, reject: false });
  const fromDisk = await kaboot('desc', 'from-disk', disk);
  assert.equal(fromDisk.exitCode, 0, fromDisk.stderr);
  assert.match(fromDisk.stdout, /^label gpt\nesp 100\nlinux fill$/m);
  const file = join(work, 'bad.desc');
  await writeFile(file, 'linux 100\nlogical swap 5\n');
  const bad = await kaboot('desc', 'check', file);
  assert.equal(bad.exitCode, 65);
  assert.match(bad.stderr, /bad\.desc: line 2, column 1: a logical partition must follow an extended partition/);
  await writeFile(file, fromDisk.stdout);
  const script = await kaboot('desc', 'sfdisk', file, '--device', '/dev/vda');
  assert.equal(script.exitCode, 0, script.stderr);
  assert.match(script.stdout, /^\/dev\/vda2 : size=\+, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4$/m);
  const missing = await kaboot('desc', 'from-disk', join(work, 'nope.img'));
  assert.equal(missing.exitCode, 66);
  assert.match(missing.stderr, /cannot read/);
});
