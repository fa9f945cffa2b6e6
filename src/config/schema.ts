// The one schema for kaboot.yaml: validation, the TypeScript types and docs/config.md
// all follow from it. Every object is closed (additionalProperties: false) so that a
// misspelt key is an error, never a silently ignored setting.
import { Type, type Static, type TSchema, type ObjectOptions, type TProperties } from '@sinclair/typebox';

const closed = <T extends TProperties>(props: T, opts: ObjectOptions = {}) =>
  Type.Object(props, { additionalProperties: false, ...opts });

export const Ipv4 = Type.String({ format: 'ipv4', description: 'an IPv4 address, e.g. 192.168.10.1' });
export const Cidr = Type.String({ format: 'ipv4-cidr', description: 'an IPv4 subnet, e.g. 192.168.10.0/24' });
export const Mac = Type.String({
  pattern: '^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$',
  description: 'a MAC address, e.g. 52:54:00:12:34:56',
});
const Port = Type.Integer({ minimum: 1, maximum: 65535, description: 'a UDP or TCP port, 1-65535' });
const Seconds = (description: string, minimum = 1) => Type.Integer({ minimum, description });
/** A string pxelinux takes from a DHCP option: one option's worth of printable bytes. */
const PxelinuxText = (description: string) =>
  Type.String({ minLength: 1, maxLength: 255, pattern: '^[\\x20-\\x7e]+$', description: `${description} (1-255 printable ASCII characters)` });

export const HostReservation = closed({
  mac: Mac,
  address: Ipv4,
  hostname: Type.Optional(Type.String({ minLength: 1, maxLength: 63, description: 'host name sent as option 12' })),
});

export const Subnet = closed({
  subnet: Cidr,
  interface: Type.Optional(Type.String({ minLength: 1, description: 'interface that serves this subnet; default: the one whose address is inside it' })),
  range: Type.Optional(Type.Tuple([Ipv4, Ipv4], { description: 'first and last address of the pool, e.g. [192.168.10.30, 192.168.10.40]' })),
  routers: Type.Optional(Type.Array(Ipv4, { description: 'option 3' })),
  dns_servers: Type.Optional(Type.Array(Ipv4, { description: 'option 6' })),
  domain_name: Type.Optional(Type.String({ minLength: 1, description: 'option 15' })),
  lease_time: Type.Optional(Seconds('default lease time in seconds (dhcpd default-lease-time)', 60)),
  max_lease_time: Type.Optional(Seconds('longest lease granted when a client asks (dhcpd max-lease-time)', 60)),
  next_server: Type.Optional(Ipv4),
  hosts: Type.Optional(Type.Array(HostReservation, { description: 'fixed addresses by MAC' })),
});

export const BootFiles = closed({
  bios_pxe: Type.String({ description: 'boot file for a BIOS PXE ROM (arch 0)' }),
  bios_ipxe: Type.String({ description: 'boot file for iPXE running on BIOS (an iPXE ROM, undionly.kpxe); "script" sends the iPXE script, which loads kernel and initrd over HTTP' }),
  uefi_pxe: Type.String({ description: 'boot file for a UEFI x64 PXE ROM (arch 6/7/9)' }),
  uefi_ipxe: Type.String({ description: 'boot file for iPXE running on UEFI; "script" sends the iPXE script' }),
  arm64_pxe: Type.String({ description: 'boot file for a UEFI ARM64 PXE ROM (arch 11)' }),
  http_boot: Type.String({ description: 'path, relative to the HTTP root, for UEFI HTTP boot clients (arch 16/19)' }),
  uefi_local: Type.String({
    description: 'EFI image, relative to images_dir, that the iPXE script of a UEFI node sent to local boot chainloads over HTTP to find and start the boot loader on the node\'s own disk (kaboot stage2 build writes it); "" or a missing file: the script exits and the firmware tries its next boot option',
  }),
});

export const Boot = closed({
  default: Type.Union([Type.Literal('local'), Type.Literal('kamethod')], {
    description: 'what a node the registry does not know boots: local (its own disk) or kamethod',
  }),
  kernel: Type.String({ minLength: 1, description: 'kernel, relative to images_dir' }),
  initrd: Type.String({ minLength: 1, description: 'initrd, relative to images_dir' }),
  append: Type.String({ description: 'kernel command line of the kamethod label' }),
  files: BootFiles,
  pxelinux: closed({
    reboot_time: Type.Integer({ minimum: 0, description: 'option 211: seconds pxelinux waits before rebooting on failure' }),
    prompt_timeout: Type.Integer({ minimum: 0, description: 'TIMEOUT of the generated pxelinux.cfg, tenths of a second' }),
    config_file: Type.Optional(PxelinuxText(
      'option 209: the one config file pxelinux loads instead of searching pxelinux.cfg/ (01-<mac>, …, default), e.g. pxelinux.cfg/default; unset: pxelinux searches, so each node gets the file the registry generates for it',
    )),
    path_prefix: Type.Optional(PxelinuxText(
      'option 210: prefix pxelinux puts before every relative file name it fetches, config files included; it must end in /, e.g. boot/ or http://192.168.10.5/boot/; unset: the folder pxelinux.0 came from',
    )),
  }),
});

export const Dhcp = closed({
  mode: Type.Union([Type.Literal('proxy'), Type.Literal('full'), Type.Literal('off')], {
    description: 'proxy: PXE answers only, no addresses (safe default); full: addresses for the listed subnets; off',
  }),
  port: Port,
  proxy_port: Port,
  authoritative: Type.Boolean({ description: 'send NAK to requests for addresses that are not ours on our subnets' }),
  subnets: Type.Array(Subnet),
  decline_quarantine: Seconds('seconds a declined address stays out of the pool'),
  offer_hold: Seconds('seconds an offered address is held for the client'),
  lease_sync: Type.Union([Type.Literal('write'), Type.Literal('fsync')], {
    description: 'write: a lease is in the file (survives kill -9) before its ACK; fsync: on disk (survives power loss)',
  }),
});

export const Tftp = closed({
  enabled: Type.Boolean(),
  port: Port,
  max_blksize: Type.Integer({ minimum: 512, maximum: 65464 }),
  max_windowsize: Type.Integer({ minimum: 1, maximum: 65535 }),
  timeout: Seconds('retransmission timeout in seconds, before any client request'),
  retries: Type.Integer({ minimum: 1, maximum: 50, description: 'retransmissions before a transfer is abandoned' }),
  max_transfers: Type.Integer({
    minimum: 1, maximum: 20000,
    description: 'transfers at once, 1-20000; past it a request gets ERROR 0 "server busy" (each transfer holds a socket and an ephemeral port)',
  }),
  cache_mib: Type.Integer({
    minimum: 0, maximum: 65536,
    description: 'MiB of memory for files shared between transfers, 0-65536; 0: every transfer reads its file from disk',
  }),
  cache_file_max_mib: Type.Optional(Type.Integer({
    minimum: 1, maximum: 4095,
    description: 'largest file kept in the cache, in MiB, 1-4095, at most cache_mib; larger files are streamed from disk; default: half of cache_mib',
  })),
});

export const Http = closed({
  enabled: Type.Boolean(),
  port: Port,
  address: Type.String({ description: 'address to listen on; 0.0.0.0 for all' }),
});

export const Api = closed({
  token: Type.Optional(Type.String({ minLength: 16, description: 'bearer token for write endpoints; default: generated into state_dir/api-token' })),
});

export const Log = closed({
  level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace'].map((l) => Type.Literal(l))),
  pretty: Type.Union([Type.Boolean(), Type.Literal('auto')], { description: 'human-readable lines; auto: when stdout is a terminal' }),
});

export const Config = closed({
  interfaces: Type.Optional(Type.Array(Type.String({ minLength: 1 }), {
    description: 'interfaces to serve; default: every interface that has an IPv4 address (loopback excepted)',
  })),
  images_dir: Type.String({ minLength: 1, description: 'root of TFTP and HTTP, relative to the config file' }),
  state_dir: Type.String({ minLength: 1, description: 'leases, node registry, tokens' }),
  dhcp: Dhcp,
  tftp: Tftp,
  http: Http,
  boot: Boot,
  api: Api,
  log: Log,
  ipv6_ra: Type.Union([Type.Literal('off'), Type.Literal('quiet')], {
    description: 'off: kaboot sends no IPv6 router advertisement; quiet: on each served interface it answers router solicitations with one that configures nothing (router lifetime 0, M=0 O=0, no prefix), so iPXE and UEFI firmware stop waiting for IPv6 (about 15 s per iPXE start); only on links without an IPv6 router',
  }),
});

export type KabootConfig = Static<typeof Config>;
export type SubnetConfig = Static<typeof Subnet>;
export type BootConfig = Static<typeof Boot>;
export type BootFilesConfig = Static<typeof BootFiles>;
export type DhcpConfig = Static<typeof Dhcp>;
export type TftpConfig = Static<typeof Tftp>;
export type HttpConfig = Static<typeof Http>;

export const defaults: KabootConfig = {
  images_dir: './images',
  state_dir: './state',
  dhcp: {
    mode: 'proxy',
    port: 67,
    proxy_port: 4011,
    authoritative: true,
    subnets: [],
    decline_quarantine: 600,
    offer_hold: 30,
    lease_sync: 'write',
  },
  tftp: { enabled: true, port: 69, max_blksize: 65464, max_windowsize: 64, timeout: 1, retries: 6, max_transfers: 2000, cache_mib: 1024 },
  http: { enabled: true, port: 80, address: '0.0.0.0' },
  boot: {
    default: 'local',
    kernel: 'vmlinuz',
    initrd: 'all.rdz',
    append: 'console=tty0 console=ttyS0,115200 kamethod',
    files: {
      bios_pxe: 'pxelinux.0',
      bios_ipxe: 'script',
      uefi_pxe: 'ipxe.efi',
      uefi_ipxe: 'script',
      arm64_pxe: 'ipxe-arm64.efi',
      http_boot: 'ipxe.efi',
      uefi_local: 'local-boot-x64.efi',
    },
    pxelinux: { reboot_time: 30, prompt_timeout: 50 },
  },
  api: {},
  log: { level: 'info', pretty: 'auto' },
  ipv6_ra: 'off',
};

export type { TSchema };
