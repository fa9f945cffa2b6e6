// Typed access to DHCP options. The OptionMap holds raw bytes per code (see packet.ts);
// this module's table maps each code kaboot knows to a small codec, in the manner of
// dns-packet: encode(value) -> bytes, decode(bytes) -> typed result. Unknown codes stay
// raw in the map and are passed over. Decoding never throws; encoding kaboot's own
// values throws DhcpEncodeError when a value cannot be represented.
import { Opt, type MessageType, type OptionMap } from './packet.js';
import { DhcpEncodeError, type OptionValueError, type OptionValueErrorCode } from './errors.js';
import { decodePxeOptions, encodePxeOptions, type PxeVendorOptions } from './pxe-options.js';
import { encodeTlvs, isIpv4, joinTlvs, readIpv4, walkTlvs, writeIpv4 } from './wire.js';

export type OptResult<T> = { ok: true; value: T } | { ok: false; error: OptionValueError };

export interface OptionCodec<T> {
  code: number;
  /** name as in dhcp-options(5) / dnsmasq, for logs */
  name: string;
  /** throws DhcpEncodeError when the value cannot be encoded */
  encode(value: T): Buffer;
  /** never throws */
  decode(buf: Buffer): OptResult<T>;
}

/** PXE client NDI (option 94): UNDI interface type and version. */
export interface ClientNdi {
  type: number;
  major: number;
  minor: number;
}

/**
 * Client machine identifier (option 97, RFC 4578 §2.3). On the wire the 16 bytes are in
 * EFI GUID order (first three fields little-endian), as OVMF and iPXE send them; `uuid` is
 * the usual text form, the one qemu -uuid, dmidecode and the SMBIOS tables show.
 */
export interface ClientUuid {
  type: number;
  uuid: string;
}

/** The value type of each option code that has a typed codec. */
export interface OptionTypes {
  [Opt.SubnetMask]: string;
  [Opt.Routers]: string[];
  [Opt.DnsServers]: string[];
  [Opt.HostName]: string;
  [Opt.DomainName]: string;
  [Opt.InterfaceMtu]: number;
  [Opt.BroadcastAddress]: string;
  [Opt.NtpServers]: string[];
  [Opt.VendorSpecific]: PxeVendorOptions;
  [Opt.RequestedIp]: string;
  [Opt.LeaseTime]: number;
  [Opt.Overload]: number;
  [Opt.MessageType]: MessageType;
  [Opt.ServerId]: string;
  [Opt.ParameterRequestList]: number[];
  [Opt.Message]: string;
  [Opt.MaxMessageSize]: number;
  [Opt.RenewalTime]: number;
  [Opt.RebindingTime]: number;
  [Opt.VendorClass]: string;
  [Opt.ClientId]: Buffer;
  [Opt.TftpServerName]: string;
  [Opt.BootfileName]: string;
  [Opt.UserClass]: string[];
  [Opt.RelayAgentInfo]: Map<number, Buffer>;
  [Opt.ClientArch]: number[];
  [Opt.ClientNdi]: ClientNdi;
  [Opt.ClientUuid]: ClientUuid;
  [Opt.Ipxe]: Map<number, Buffer>;
  [Opt.PxelinuxMagic]: true;
  [Opt.PxelinuxConfigFile]: string;
  [Opt.PxelinuxPathPrefix]: string;
  [Opt.PxelinuxRebootTime]: number;
}

export type KnownOpt = keyof OptionTypes;

/** The 4 bytes pxelinux wants in option 208 before it honours 209-211 (RFC 5071). */
export const PXELINUX_MAGIC = Buffer.from([0xf1, 0x00, 0x74, 0x7e]);

// ---- value codecs, independent of the option code ------------------------------------

type Fault = { ok: false; code: OptionValueErrorCode; message: string };
type ValueResult<T> = { ok: true; value: T } | Fault;
interface ValueCodec<T> {
  encode(value: T, what: string): Buffer;
  decode(buf: Buffer): ValueResult<T>;
}

const ok = <T>(value: T): ValueResult<T> => ({ ok: true, value });
const badLength = (message: string): Fault => ({ ok: false, code: 'bad-length', message });
const badValue = (message: string): Fault => ({ ok: false, code: 'bad-value', message });
const encodeFail = (what: string, message: string) => new DhcpEncodeError('bad-option', `option ${what}: ${message}`);

function uint(bytes: 1 | 2 | 4): ValueCodec<number> {
  const max = 2 ** (8 * bytes) - 1;
  return {
    encode(n, what) {
      if (!Number.isInteger(n) || n < 0 || n > max) throw encodeFail(what, `${n} is not an integer 0-${max}`);
      const b = Buffer.alloc(bytes);
      b.writeUIntBE(n, 0, bytes);
      return b;
    },
    decode(b) {
      if (b.length !== bytes) return badLength(`needs ${bytes} bytes, got ${b.length}`);
      return ok(b.readUIntBE(0, bytes));
    },
  };
}

const ipv4: ValueCodec<string> = {
  encode(s, what) {
    if (!isIpv4(s)) throw encodeFail(what, `"${s}" is not an IPv4 address`);
    const b = Buffer.alloc(4);
    writeIpv4(b, 0, s, what);
    return b;
  },
  decode(b) {
    return b.length === 4 ? ok(readIpv4(b, 0)) : badLength(`needs 4 bytes, got ${b.length}`);
  },
};

const ipv4List: ValueCodec<string[]> = {
  encode(list, what) {
    if (list.length === 0) throw encodeFail(what, 'needs at least one address');
    return Buffer.concat(list.map((s) => ipv4.encode(s, what)));
  },
  decode(b) {
    if (b.length === 0 || b.length % 4 !== 0) return badLength(`needs a multiple of 4 bytes, got ${b.length}`);
    const out: string[] = [];
    for (let i = 0; i < b.length; i += 4) out.push(readIpv4(b, i));
    return ok(out);
  },
};

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 when the bytes are valid UTF-8 (ASCII always is), else one character per byte. */
function bytesToText(b: Uint8Array): string {
  let ascii = true;
  for (let i = 0; i < b.length; i++) if (b[i]! > 0x7f) ascii = false;
  if (ascii) return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
  try {
    return utf8Strict.decode(b);
  } catch {
    return Buffer.from(b).toString('latin1');
  }
}

/**
 * NVT ASCII text (RFC 2132). Clients often end it with NUL bytes, which are dropped on
 * decode; RFC 2132 says not to send one, so none is added on encode.
 */
const text: ValueCodec<string> = {
  encode(s) {
    return Buffer.from(s, 'utf8');
  },
  decode(b) {
    let end = b.length;
    while (end > 0 && b[end - 1] === 0) end--;
    return ok(bytesToText(b.subarray(0, end)));
  },
};

const byteList: ValueCodec<number[]> = {
  encode(list, what) {
    for (const n of list) if (!Number.isInteger(n) || n < 0 || n > 255) throw encodeFail(what, `${n} is not a byte`);
    return Buffer.from(list);
  },
  decode(b) {
    return ok([...b]);
  },
};

const u16List: ValueCodec<number[]> = {
  encode(list, what) {
    if (list.length === 0) throw encodeFail(what, 'needs at least one value');
    return Buffer.concat(list.map((n) => uint(2).encode(n, what)));
  },
  decode(b) {
    if (b.length === 0 || b.length % 2 !== 0) return badLength(`needs a non-zero even number of bytes, got ${b.length}`);
    const out: number[] = [];
    for (let i = 0; i < b.length; i += 2) out.push(b.readUInt16BE(i));
    return ok(out);
  },
};

/**
 * RFC 3004 user class: a list of (length, data) entries. iPXE, Windows and others send a
 * plain string instead ("iPXE"); bytes that do not parse as RFC 3004 are taken as one
 * plain string. Encoding always writes RFC 3004.
 */
const userClass: ValueCodec<string[]> = {
  encode(list, what) {
    if (list.length === 0) throw encodeFail(what, 'needs at least one class');
    return Buffer.concat(
      list.map((s) => {
        const d = Buffer.from(s, 'utf8');
        if (d.length === 0 || d.length > 255) throw encodeFail(what, `class "${s}" must be 1-255 bytes`);
        return Buffer.concat([Buffer.from([d.length]), d]);
      }),
    );
  },
  decode(b) {
    if (b.length === 0) return badLength('needs at least 1 byte');
    const out: string[] = [];
    let i = 0;
    while (i < b.length) {
      const len = b[i]!;
      if (len === 0 || i + 1 + len > b.length) return ok([bytesToText(b)]);
      out.push(bytesToText(b.subarray(i + 1, i + 1 + len)));
      i += 1 + len;
    }
    return ok(out);
  },
};

const raw: ValueCodec<Buffer> = {
  encode(b) {
    return Buffer.from(b);
  },
  decode(b) {
    return ok(b);
  },
};

/** Encapsulated sub-options in DHCP TLV form (iPXE 175, relay agent 82). */
const encapsulated: ValueCodec<Map<number, Buffer>> = {
  encode(m) {
    return encodeTlvs(m, false);
  },
  decode(b) {
    const walk = walkTlvs(b, 0, b.length);
    if (!walk.ok) return badValue(`sub-options: ${walk.message}`);
    return ok(joinTlvs(b, walk.items));
  },
};

const ndi: ValueCodec<ClientNdi> = {
  encode(v, what) {
    return Buffer.concat([uint(1).encode(v.type, what), uint(1).encode(v.major, what), uint(1).encode(v.minor, what)]);
  },
  decode(b) {
    if (b.length !== 3) return badLength(`needs 3 bytes, got ${b.length}`);
    return ok({ type: b[0]!, major: b[1]!, minor: b[2]! });
  },
};

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Swap the first three fields between text (big-endian) order and EFI GUID order; its own inverse. */
function guidSwap(b: Buffer): Buffer {
  const out = Buffer.from(b);
  out.writeUInt32LE(b.readUInt32BE(0), 0);
  out.writeUInt16LE(b.readUInt16BE(4), 4);
  out.writeUInt16LE(b.readUInt16BE(6), 6);
  return out;
}

const uuid: ValueCodec<ClientUuid> = {
  encode(v, what) {
    if (!UUID_RE.test(v.uuid)) throw encodeFail(what, `"${v.uuid}" is not a UUID (8-4-4-4-12 hex)`);
    return Buffer.concat([uint(1).encode(v.type, what), guidSwap(Buffer.from(v.uuid.replace(/-/g, ''), 'hex'))]);
  },
  decode(b) {
    if (b.length !== 17) return badLength(`needs 17 bytes (type 0 and 16 bytes), got ${b.length}`);
    if (b[0] !== 0) return badValue(`type ${b[0]} is not 0 (the only type PXE defines)`);
    const h = guidSwap(b.subarray(1)).toString('hex');
    return ok({ type: 0, uuid: `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` });
  },
};

const pxelinuxMagic: ValueCodec<true> = {
  encode() {
    return Buffer.from(PXELINUX_MAGIC);
  },
  decode(b) {
    return b.equals(PXELINUX_MAGIC) ? ok(true as const) : badValue(`is ${b.toString('hex')}, not f100747e`);
  },
};

const pxe: ValueCodec<PxeVendorOptions> = {
  encode(v) {
    return encodePxeOptions(v);
  },
  decode(b) {
    const r = decodePxeOptions(b);
    return r.ok ? ok(r.value) : { ok: false, code: r.error.code, message: r.error.message };
  },
};

// ---- the table -------------------------------------------------------------------------

function def<K extends KnownOpt>(code: K, name: string, vc: ValueCodec<OptionTypes[K]>): OptionCodec<OptionTypes[K]> {
  return {
    code,
    name,
    encode: (v) => vc.encode(v, `${code} (${name})`),
    decode(buf) {
      const r = vc.decode(buf);
      if (r.ok) return r;
      return { ok: false, error: { code: r.code, option: code, message: `option ${code} (${name}): ${r.message}` } };
    },
  };
}

type OptionTable = { [K in KnownOpt]: OptionCodec<OptionTypes[K]> };

export const optionTable: OptionTable = {
  [Opt.SubnetMask]: def(Opt.SubnetMask, 'subnet-mask', ipv4),
  [Opt.Routers]: def(Opt.Routers, 'routers', ipv4List),
  [Opt.DnsServers]: def(Opt.DnsServers, 'domain-name-servers', ipv4List),
  [Opt.HostName]: def(Opt.HostName, 'host-name', text),
  [Opt.DomainName]: def(Opt.DomainName, 'domain-name', text),
  [Opt.InterfaceMtu]: def(Opt.InterfaceMtu, 'interface-mtu', uint(2)),
  [Opt.BroadcastAddress]: def(Opt.BroadcastAddress, 'broadcast-address', ipv4),
  [Opt.NtpServers]: def(Opt.NtpServers, 'ntp-servers', ipv4List),
  [Opt.VendorSpecific]: def(Opt.VendorSpecific, 'vendor-encapsulated-options', pxe),
  [Opt.RequestedIp]: def(Opt.RequestedIp, 'dhcp-requested-address', ipv4),
  [Opt.LeaseTime]: def(Opt.LeaseTime, 'dhcp-lease-time', uint(4)),
  [Opt.Overload]: def(Opt.Overload, 'dhcp-option-overload', uint(1)),
  [Opt.MessageType]: def(Opt.MessageType, 'dhcp-message-type', uint(1)),
  [Opt.ServerId]: def(Opt.ServerId, 'dhcp-server-identifier', ipv4),
  [Opt.ParameterRequestList]: def(Opt.ParameterRequestList, 'dhcp-parameter-request-list', byteList),
  [Opt.Message]: def(Opt.Message, 'dhcp-message', text),
  [Opt.MaxMessageSize]: def(Opt.MaxMessageSize, 'dhcp-max-message-size', uint(2)),
  [Opt.RenewalTime]: def(Opt.RenewalTime, 'dhcp-renewal-time', uint(4)),
  [Opt.RebindingTime]: def(Opt.RebindingTime, 'dhcp-rebinding-time', uint(4)),
  [Opt.VendorClass]: def(Opt.VendorClass, 'vendor-class-identifier', text),
  [Opt.ClientId]: def(Opt.ClientId, 'dhcp-client-identifier', raw),
  [Opt.TftpServerName]: def(Opt.TftpServerName, 'tftp-server-name', text),
  [Opt.BootfileName]: def(Opt.BootfileName, 'bootfile-name', text),
  [Opt.UserClass]: def(Opt.UserClass, 'user-class', userClass),
  [Opt.RelayAgentInfo]: def(Opt.RelayAgentInfo, 'relay-agent-information', encapsulated),
  [Opt.ClientArch]: def(Opt.ClientArch, 'pxe-client-arch', u16List),
  [Opt.ClientNdi]: def(Opt.ClientNdi, 'pxe-client-ndi', ndi),
  [Opt.ClientUuid]: def(Opt.ClientUuid, 'pxe-client-uuid', uuid),
  [Opt.Ipxe]: def(Opt.Ipxe, 'ipxe-encap-opts', encapsulated),
  [Opt.PxelinuxMagic]: def(Opt.PxelinuxMagic, 'pxelinux-magic', pxelinuxMagic),
  [Opt.PxelinuxConfigFile]: def(Opt.PxelinuxConfigFile, 'pxelinux-configfile', text),
  [Opt.PxelinuxPathPrefix]: def(Opt.PxelinuxPathPrefix, 'pxelinux-pathprefix', text),
  [Opt.PxelinuxRebootTime]: def(Opt.PxelinuxRebootTime, 'pxelinux-reboottime', uint(4)),
};

export function isKnownOpt(code: number): code is KnownOpt {
  return Object.hasOwn(optionTable, code);
}

export function optionName(code: number): string {
  return isKnownOpt(code) ? optionTable[code].name : `option-${code}`;
}

// ---- typed helpers ----------------------------------------------------------------------

/** The typed value, or undefined when the option is absent or malformed (see readOpt). */
export function getOpt<K extends KnownOpt>(map: OptionMap, code: K): OptionTypes[K] | undefined {
  const r = readOpt(map, code);
  return r?.ok ? r.value : undefined;
}

/** undefined when absent; otherwise the decode result, with a typed error when malformed. */
export function readOpt<K extends KnownOpt>(map: OptionMap, code: K): OptResult<OptionTypes[K]> | undefined {
  const buf = map.get(code);
  if (buf === undefined) return undefined;
  return (optionTable[code] as OptionCodec<OptionTypes[K]>).decode(buf);
}

/** Encode and set (replacing any value). Throws DhcpEncodeError on a value that cannot be encoded. */
export function setOpt<K extends KnownOpt>(map: OptionMap, code: K, value: OptionTypes[K]): OptionMap {
  map.set(code, (optionTable[code] as OptionCodec<OptionTypes[K]>).encode(value));
  return map;
}

/** Every known option in the map whose value does not decode: for logging and counting. */
export function validateOptions(map: OptionMap): OptionValueError[] {
  const errors: OptionValueError[] = [];
  for (const [code, buf] of map) {
    if (!isKnownOpt(code)) continue;
    const r = (optionTable[code] as OptionCodec<unknown>).decode(buf);
    if (!r.ok) errors.push(r.error);
  }
  return errors;
}

/** A JSON-friendly view of the options for log lines: name -> decoded value, or hex. */
export function describeOptions(map: OptionMap): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [code, buf] of map) {
    let value: unknown = buf.toString('hex');
    if (isKnownOpt(code)) {
      const r = (optionTable[code] as OptionCodec<unknown>).decode(buf);
      if (r.ok) value = jsonable(r.value);
    }
    out[optionName(code)] = value;
  }
  return out;
}

function jsonable(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return v.toString('hex');
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), jsonable(x)]));
  if (Array.isArray(v)) return v.map(jsonable);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonable(x)]));
  return v;
}
