// The clone's GRUB menu: kept (with the new UUIDs) when it fits the node, else update-grub and why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grubMenuFor, type MenuNode } from '../../src/agent/deploy/grub-menu.js';

const OLD = '3a6f928b-9fe6-40f4-955b-6ca4984eebd6';
const NEW = '27c1335a-6b9d-41ee-8c7d-e063881c0698';
const OLD_SWAP = '0a0a0a0a-1111-2222-3333-444444444444';
const NEW_SWAP = '0b0b0b0b-1111-2222-3333-444444444444';

// the shape Debian's update-grub writes (trimmed), with the feature_platform_search_hint branch
const debianMenu = (uuid: string, part = 'part_msdos', extra = '') => `### BEGIN /etc/grub.d/10_linux ###
menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-${uuid}' {
\tload_video
\tinsmod gzio
\tinsmod ${part}
\tinsmod ext2
\tif [ x$feature_platform_search_hint = xy ]; then
\t  search --no-floppy --fs-uuid --set=root --hint-bios=hd0,msdos1 --hint-efi=hd0,msdos1 --hint-baremetal=ahci0,msdos1  ${uuid}
\telse
\t  search --no-floppy --fs-uuid --set=root ${uuid}
\tfi
\tlinux\t/boot/vmlinuz-6.1.0-50-cloud-amd64 root=UUID=${uuid} ro ${extra} console=ttyS0,115200
\tinitrd\t/boot/initrd.img-6.1.0-50-cloud-amd64
}
`;

const node = (over: Partial<MenuNode> = {}): MenuNode => ({
  renamed: new Map([[`UUID=${OLD}`, `UUID=${NEW}`], [`UUID=${OLD_SWAP}`, `UUID=${NEW_SWAP}`]]),
  targets: [
    { mount: '/', fstype: 'ext4', uuid: NEW, device: '/dev/vda1', label: 'root' },
    { fstype: 'swap', uuid: NEW_SWAP, device: '/dev/vda2' },
  ],
  label: 'dos',
  exists: (rel) => ['boot/vmlinuz-6.1.0-50-cloud-amd64', 'boot/initrd.img-6.1.0-50-cloud-amd64'].includes(rel),
  ...over,
});

test('grubMenuFor: a menu that fits is kept, every old UUID moved (menu ids stay as they were)', () => {
  const d = grubMenuFor(debianMenu(OLD, 'part_msdos', `resume=UUID=${OLD_SWAP}`), node());
  assert.equal(d.kind, 'rewrite');
  if (d.kind !== 'rewrite') return;
  assert.equal(d.count, 4);
  assert.ok(!d.text.includes(`${OLD} `) && !d.text.includes(`=${OLD}`), d.text);
  assert.match(d.text, new RegExp(`search --no-floppy --fs-uuid --set=root ${NEW}`));
  assert.match(d.text, new RegExp(`root=UUID=${NEW} ro resume=UUID=${NEW_SWAP}`));
  // an id is a name, not a file system: saved_entry in grubenv still finds it
  assert.match(d.text, new RegExp(`gnulinux-simple-${OLD}`));
});

test('grubMenuFor: the root by device is kept only when it is this node\'s root', () => {
  const byDev = debianMenu(OLD).replace(`root=UUID=${OLD}`, 'root=/dev/vda1');
  assert.equal(grubMenuFor(byDev, node()).kind, 'rewrite');
  const other = grubMenuFor(byDev.replace('/dev/vda1', '/dev/sda1'), node());
  assert.deepEqual(other, { kind: 'regenerate', reason: "grub.cfg passes root=/dev/sda1: that is not this node's root file system" });
  assert.match(JSON.stringify(grubMenuFor(debianMenu(OLD).replace(`root=UUID=${OLD}`, 'root=PARTUUID=1234-01'), node())), /cannot tell which file system/);
});

test('grubMenuFor: regenerated, with the reason, when the menu does not fit', () => {
  const reason = (text: string | undefined, over: Partial<MenuNode> = {}) => {
    const d = grubMenuFor(text, node(over));
    assert.equal(d.kind, 'regenerate', JSON.stringify(d));
    return d.kind === 'regenerate' ? d.reason : '';
  };
  assert.match(reason(undefined), /no boot\/grub\/grub.cfg/);
  assert.match(reason(debianMenu(OLD), { append: 'nomodeset' }), /adds "nomodeset"/);
  // a UUID the fstab and the image never named: some file system this node does not have
  assert.match(reason(debianMenu('11111111-2222-3333-4444-555555555555')), /searches for the file system 11111111/);
  assert.match(reason(debianMenu(OLD), { exists: () => false }), /boots \/boot\/vmlinuz-6.1.0-50-cloud-amd64/);
  assert.match(reason(debianMenu(OLD), { exists: (rel) => rel.startsWith('boot/vmlinuz') }), /loads \/boot\/initrd.img/);
  assert.equal(grubMenuFor(debianMenu(OLD, 'part_gpt'), node({ label: 'gpt' })).kind, 'rewrite');
  assert.match(reason(`search --label --set=root golden\nlinux /boot/vmlinuz-6.1.0-50-cloud-amd64 root=LABEL=golden\n`), /label golden/);
  assert.match(reason(`search.fs_uuid ${OLD.toUpperCase()} root\n`, { renamed: new Map() }), /searches for the file system/);
});

test('grubMenuFor: a menu for a DOS disk on a node with a GPT one (a UEFI clone of a BIOS golden) loads part_gpt instead', () => {
  const d = grubMenuFor(debianMenu(OLD), node({ label: 'gpt' }));
  assert.equal(d.kind, 'rewrite');
  if (d.kind !== 'rewrite') return;
  assert.match(d.text, /^\tinsmod part_gpt$/m);
  assert.doesNotMatch(d.text, /part_msdos\n/);
  assert.equal(d.count, 4, 'three UUIDs and one partition map');
  // the hint names the old table; GRUB tries it and then searches every disk
  assert.match(d.text, /--hint-bios=hd0,msdos1/);
});

test('grubMenuFor: labels this node has, file searches and separate /boot paths are fine', () => {
  const text = `search --no-floppy --label --set=root root\nsearch --file --set=x /boot/grub/grub.cfg\nsearch.fs_uuid ${OLD} root\nlinux /vmlinuz-6.1.0-50-cloud-amd64 root=UUID=${OLD}\ninitrd /initrd.img-6.1.0-50-cloud-amd64\n`;
  const d = grubMenuFor(text, node());
  assert.equal(d.kind, 'rewrite', JSON.stringify(d));
});

test('grubMenuFor: any text at all gives a decision, never an exception', () => {
  const parts = ['search', '--fs-uuid', 'linux', 'initrd', 'root=', 'UUID=', OLD, 'insmod', 'part_gpt', '"', "'", '\n', ' ', '\t', 'search.fs_uuid', '/dev/'];
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let i = 0; i < 5000; i++) {
    let t = '';
    for (let j = 0; j < 1 + rnd() * 30; j++) t += parts[Math.floor(rnd() * parts.length)];
    const d = grubMenuFor(t, node());
    assert.ok(d.kind === 'rewrite' || d.kind === 'regenerate');
  }
});
