// kaboot image: the image store of this appliance (list, show, rm, capture) and the
// golden side of a network capture (push).
import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { UsageError } from './main.js';
import { goldenReadOptions, bootloaderOption } from './golden-options.js';
import { loadConfig } from '../config/load.js';
import { ImageStore, ImageStoreError } from '../images/store.js';
import { captureLocal } from '../images/capture.js';
import { pushImage } from '../images/push.js';
import { CaptureError } from '../images/squashfs.js';
import { ManifestError } from '../images/manifest.js';
import { DescError } from '../images/desc.js';
import { DiskReadError } from '../images/desc-from-disk.js';
import { readGoldenDisk } from '../images/golden.js';
import { BootCodeError } from '../images/boot-code.js';

const usage = `usage:
  kaboot image list                          [--config FILE | --images DIR]
  kaboot image show NAME                     [--config FILE | --images DIR]
  kaboot image rm NAME                       [--config FILE | --images DIR]
  kaboot image capture NAME --from DIR ...   [--config FILE | --images DIR]
  kaboot image push NAME --to URL --token T --from / ...

  --from DIR        the golden's root (with the file systems mounted below it)
  --from MOUNT=DIR  one tree and its mount point on the golden (--from /boot/efi=/mnt/esp)
  --exclude PATH    leave PATH (relative to the root) out, as ka-d.sh -x did
  --desc FILE       partition scheme to record; default for --from /: the disk holding /
  --desc-from DEV   record the desc of DEV (kaboot desc from-disk DEV)
                    (with a desc read from a disk, that disk's MBR boot code is recorded too)
  --mbr-from DEV    record the MBR boot code (first 446 bytes) of DEV, for kaboot deploy -m
  --mbr FILE        record FILE (446 bytes, or a 512-byte MBR sector) as the MBR boot code
  --no-mbr          record no MBR boot code
  --bootloader B    grub-pc | grub-efi | extlinux (default: guessed from the files)
  --token-file F    read the token from F (state_dir/api-token on the appliance)`;


async function imagesDirOf(values: { config?: string; images?: string }): Promise<string> {
  if (values.images) return values.images;
  return loadConfig(values.config).config.images_dir;
}

const human = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`);

export async function imageCommand(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      images: { type: 'string' },
      ...goldenReadOptions,
      exclude: { type: 'string', multiple: true },
      to: { type: 'string' },
      token: { type: 'string' },
      'token-file': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const [sub, name] = positionals;
  const say = (m: string) => process.stderr.write(`kaboot: ${m}\n`);
  const bootloader = bootloaderOption(values.bootloader);
  try {
    switch (sub) {
      case 'list': {
        const store = await ImageStore.open(await imagesDirOf(values));
        const images = await store.list();
        if (values.json) process.stdout.write(JSON.stringify(images, null, 2) + '\n');
        else if (!images.length) process.stdout.write(`no images in ${store.root}\n`);
        else for (const i of images) {
          process.stdout.write(i.error ? `${i.name}\tBROKEN: ${i.error}\n` : `${i.name}\t${i.created}\t${human(i.bytes ?? 0)}\t${(i.filesystems ?? []).map((f) => `${f.mount}(${f.fstype}, ${human(f.bytes_used)} used)`).join(' ')}\n`);
        }
        return 0;
      }
      case 'show': {
        if (!name) throw new UsageError(usage);
        const m = await (await ImageStore.open(await imagesDirOf(values))).get(name);
        if (!m) { say(`no image ${name}`); return 1; }
        process.stdout.write(JSON.stringify(m, null, 2) + '\n');
        return 0;
      }
      case 'rm': {
        if (!name) throw new UsageError(usage);
        const ok = await (await ImageStore.open(await imagesDirOf(values))).remove(name);
        if (!ok) { say(`no image ${name}`); return 1; }
        say(`removed image ${name}`);
        return 0;
      }
      case 'capture': {
        if (!name || !values.from?.length) throw new UsageError(usage);
        const store = await ImageStore.open(await imagesDirOf(values));
        const ac = new AbortController();
        const stop = () => ac.abort();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        try {
          const disk = await readGoldenDisk(values, values.from);
          disk.notes.forEach(say);
          const m = await captureLocal(store, name, { from: values.from, exclude: values.exclude, desc: disk.desc, bootCode: disk.bootCode, bootloader, signal: ac.signal, onProgress: say });
          say(`image ${m.name} stored: ${m.filesystems.map((f) => `${f.mount} ${human(f.squashfs_bytes)}`).join(', ')}; bootloader ${m.bootloader}; kernels ${m.kernels.join(' ') || 'none'}; MBR boot code ${m.boot_code?.map((b) => `of ${b.drive} (${b.source})`).join(', ') || 'none'}`);
          if (values.json) process.stdout.write(JSON.stringify(m, null, 2) + '\n');
          return 0;
        } finally {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        }
      }
      case 'push': {
        if (!name || !values.from?.length || !values.to) throw new UsageError(usage);
        const token = values.token ?? (values['token-file'] ? (await readFile(values['token-file'], 'utf8')).trim() : process.env.KABOOT_TOKEN);
        if (!token) throw new UsageError('push needs --token T, --token-file F or KABOOT_TOKEN');
        const disk = await readGoldenDisk(values, values.from);
        disk.notes.forEach(say);
        const r = await pushImage({ url: values.to, token, name, from: values.from, exclude: values.exclude, desc: disk.desc, bootCode: disk.bootCode, bootloader, onProgress: say });
        const wire = Object.values(r.wireBytes).reduce((a, b) => a + b, 0);
        const used = r.manifest.filesystems.reduce((a, f) => a + f.bytes_used, 0);
        say(`image ${name} stored on ${values.to}: ${human(wire)} on the wire for ${human(used)} of file data`);
        if (values.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        return 0;
      }
      default:
        throw new UsageError(usage);
    }
  } catch (e) {
    if (e instanceof ImageStoreError || e instanceof CaptureError || e instanceof ManifestError || e instanceof DiskReadError || e instanceof BootCodeError) {
      say(e.message);
      return e instanceof ImageStoreError && e.code === 'bad-name' ? 2 : 1;
    }
    if (e instanceof DescError) {
      say(`desc: ${e.message}`);
      return 65;
    }
    throw e;
  }
}
