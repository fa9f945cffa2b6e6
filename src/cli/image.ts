// kaboot image: the image store of this appliance (list, show, rm, capture) and the
// golden side of a network capture (push).
import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { UsageError } from './main.js';
import { loadConfig } from '../config/load.js';
import { ImageStore, ImageStoreError } from '../images/store.js';
import { captureLocal } from '../images/capture.js';
import { pushImage } from '../images/push.js';
import { CaptureError } from '../images/squashfs.js';
import { ManifestError, type BootloaderName } from '../images/manifest.js';
import { parseDesc, DescError } from '../images/desc.js';
import { descFromDisk, DiskReadError } from '../images/desc-from-disk.js';

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
  --bootloader B    grub-pc | grub-efi | extlinux (default: guessed from the files)
  --token-file F    read the token from F (state_dir/api-token on the appliance)`;

const BOOTLOADERS = ['grub-pc', 'grub-efi', 'extlinux'];

async function imagesDirOf(values: { config?: string; images?: string }): Promise<string> {
  if (values.images) return values.images;
  return loadConfig(values.config).config.images_dir;
}

const human = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`);

/** The disk that holds / on this machine, when it is a partition of a disk. */
async function rootDisk(): Promise<string | undefined> {
  const src = await execa('findmnt', ['-n', '-o', 'SOURCE', '/'], { reject: false });
  const dev = src.stdout.trim();
  if (!dev.startsWith('/dev/')) return undefined;
  const pk = await execa('lsblk', ['-n', '-o', 'PKNAME', dev], { reject: false });
  const name = pk.stdout.trim().split('\n')[0];
  return name ? `/dev/${name}` : undefined;
}

async function descOption(values: { desc?: string; 'desc-from'?: string }, from: string[], say: (m: string) => void): Promise<string | undefined> {
  if (values.desc) {
    const text = await readFile(values.desc, 'utf8');
    parseDesc(text);
    return text;
  }
  if (values['desc-from']) return descFromDisk(values['desc-from']);
  if (from.includes('/')) {
    const disk = await rootDisk();
    if (!disk) {
      say('no desc recorded: / is not on a partitioned disk (give --desc FILE)');
      return undefined;
    }
    try {
      return await descFromDisk(disk);
    } catch (e) {
      say(`no desc recorded: ${(e as Error).message}`);
    }
  }
  return undefined;
}

export async function imageCommand(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      images: { type: 'string' },
      from: { type: 'string', multiple: true },
      exclude: { type: 'string', multiple: true },
      desc: { type: 'string' },
      'desc-from': { type: 'string' },
      bootloader: { type: 'string' },
      to: { type: 'string' },
      token: { type: 'string' },
      'token-file': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const [sub, name] = positionals;
  const say = (m: string) => process.stderr.write(`kaboot: ${m}\n`);
  if (values.bootloader !== undefined && !BOOTLOADERS.includes(values.bootloader)) throw new UsageError(`--bootloader must be one of ${BOOTLOADERS.join(', ')}`);
  const bootloader = values.bootloader as BootloaderName | undefined;
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
          const desc = await descOption(values, values.from, say);
          const m = await captureLocal(store, name, { from: values.from, exclude: values.exclude, desc, bootloader, signal: ac.signal, onProgress: say });
          say(`image ${m.name} stored: ${m.filesystems.map((f) => `${f.mount} ${human(f.squashfs_bytes)}`).join(', ')}; bootloader ${m.bootloader}; kernels ${m.kernels.join(' ') || 'none'}`);
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
        const desc = await descOption(values, values.from, say);
        const r = await pushImage({ url: values.to, token, name, from: values.from, exclude: values.exclude, desc, bootloader, onProgress: say });
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
    if (e instanceof ImageStoreError || e instanceof CaptureError || e instanceof ManifestError || e instanceof DiskReadError) {
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
