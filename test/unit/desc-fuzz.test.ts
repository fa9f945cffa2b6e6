// 20,000 seeded mutations of valid descs: parseDesc returns a plan or throws a DescError
// whose line and column point inside the input; every accepted plan renders to an sfdisk
// script and survives formatDesc → parseDesc unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDesc, formatDesc, DescError } from '../../src/images/desc.js';
import { renderSfdiskScript } from '../../src/images/sfdisk-script.js';

const corpus = [
  'linux 3500\nextended fill\nlogical swap 500\nlogical linux fill\n',
  'label gpt\nesp 512\nlinux 3500 ext4 / label=root\nswap 500\nlinux fill xfs /home\n',
  '# c\ntype83 100 bootable\ntypeb 20 vfat /win\nextended 300\nlogical type82 100\nlogical linux fill btrfs /srv\n',
  'gpt\ntype21686148-6449-6E6F-744E-656564454649 1\nlinux fill ext4 /\n',
];
const words = ['linux', 'swap', 'extended', 'logical', 'esp', 'fill', 'gpt', 'label', 'dos', 'type83', 'type5', 'typeef', 'typeZ', 'type', '0', '1', '-1', '99999999999999999999', '1e3', '0x10', 'ext4', 'xfs', 'none', 'swap', '/', '/var', '/a/../b', '//', 'bootable', 'label=', 'label=x', '#', '\t', '\r', '\n', '\u0000', 'é', '\u2028', '__proto__', 'constructor', 'toString'];

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 0x100000000;
  };
}

function mutate(text: string, r: () => number): string {
  let t = text;
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * (t.length + 1));
    const op = Math.floor(r() * 6);
    const w = words[Math.floor(r() * words.length)]!;
    if (op === 0) t = t.slice(0, at) + t.slice(at + 1 + Math.floor(r() * 8));
    else if (op === 1) t = t.slice(0, at) + w + t.slice(at);
    else if (op === 2) t = t.slice(0, at) + ' ' + w + ' ' + t.slice(at);
    else if (op === 3) t = t.slice(0, at) + String.fromCharCode(Math.floor(r() * 0x10000)) + t.slice(at);
    else if (op === 4) {
      const lines = t.split('\n');
      const a = Math.floor(r() * lines.length);
      const b = Math.floor(r() * lines.length);
      [lines[a], lines[b]] = [lines[b]!, lines[a]!];
      t = lines.join('\n');
    } else t = t + '\n' + w + ' ' + Math.floor(r() * 5000);
  }
  return t;
}

test('20,000 mutated descs: a plan or a DescError, nothing else', () => {
  const r = rng(0x6b61);
  let accepted = 0;
  let rejected = 0;
  for (let i = 0; i < 20000; i++) {
    const text = mutate(corpus[i % corpus.length]!, r);
    const diskMiB = r() < 0.3 ? 1 + Math.floor(r() * 10000) : undefined;
    try {
      const plan = parseDesc(text, { diskMiB });
      accepted++;
      assert.match(renderSfdiskScript(plan), /^label: (dos|gpt)\n/);
      const again = parseDesc(formatDesc(plan));
      assert.deepEqual(again.partitions.map(({ line: _l, ...p }) => p), plan.partitions.map(({ line: _l, ...p }) => p), `round trip of ${JSON.stringify(text)}`);
    } catch (e) {
      if (!(e instanceof DescError)) throw new Error(`input ${JSON.stringify(text)} threw ${String(e)}`);
      const lines = text.split(/\r?\n/);
      assert.ok(e.line >= 1 && e.line <= lines.length, `line ${e.line} outside the input: ${e.message}`);
      assert.ok(e.column >= 1 && e.column <= lines[e.line - 1]!.length + 1, `column ${e.column} outside line ${e.line}: ${e.message} in ${JSON.stringify(text)}`);
      rejected++;
    }
  }
  assert.ok(accepted > 500 && rejected > 5000, `accepted ${accepted}, rejected ${rejected}: the mutations should exercise both paths`);
});
