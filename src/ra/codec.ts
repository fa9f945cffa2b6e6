// Router advertisement and router solicitation messages (RFC 4861 4.1, 4.2), as the
// ICMPv6 payload a raw socket sends and receives (the kernel owns the checksum).
// Pure: bytes in, typed values or typed errors out.

export const ICMP6_ROUTER_SOLICITATION = 133;
export const ICMP6_ROUTER_ADVERTISEMENT = 134;
const OPTION_SOURCE_LINK_LAYER = 1;

export interface RouterAdvertisement {
  /** Cur Hop Limit; 0: unspecified */
  curHopLimit: number;
  /** M flag: addresses from DHCPv6 */
  managed: boolean;
  /** O flag: other configuration from DHCPv6 */
  other: boolean;
  /** seconds; 0: not a default router */
  routerLifetime: number;
  /** ms; 0: unspecified */
  reachableTime: number;
  /** ms; 0: unspecified */
  retransTimer: number;
  /** the sender's MAC, lower-case colon-separated, as a source link-layer address option */
  sourceLinkLayer?: string;
}

/** The advertisement that says "no IPv6 service here": no default router, no DHCPv6, no prefix. */
export function quietAdvertisement(sourceLinkLayer?: string): RouterAdvertisement {
  return { curHopLimit: 0, managed: false, other: false, routerLifetime: 0, reachableTime: 0, retransTimer: 0, sourceLinkLayer };
}

function macBytes(mac: string): Uint8Array {
  const parts = mac.split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) throw new TypeError(`not a MAC address: ${mac}`);
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

const macText = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');

export function encodeRouterAdvertisement(ra: RouterAdvertisement): Buffer {
  const lla = ra.sourceLinkLayer === undefined ? undefined : macBytes(ra.sourceLinkLayer);
  const out = Buffer.alloc(16 + (lla ? 8 : 0));
  out.writeUInt8(ICMP6_ROUTER_ADVERTISEMENT, 0);
  out.writeUInt8(0, 1); // code
  out.writeUInt16BE(0, 2); // checksum: the kernel's
  out.writeUInt8(ra.curHopLimit, 4);
  out.writeUInt8((ra.managed ? 0x80 : 0) | (ra.other ? 0x40 : 0), 5);
  out.writeUInt16BE(ra.routerLifetime, 6);
  out.writeUInt32BE(ra.reachableTime, 8);
  out.writeUInt32BE(ra.retransTimer, 12);
  if (lla) {
    out.writeUInt8(OPTION_SOURCE_LINK_LAYER, 16);
    out.writeUInt8(1, 17); // length in units of 8 bytes
    out.set(lla, 18);
  }
  return out;
}

export interface NdOption {
  type: number;
  /** the option's bytes after type and length */
  body: Buffer;
}

export interface RouterSolicitation {
  sourceLinkLayer?: string;
  options: NdOption[];
}

export type NdDecodeError =
  | { kind: 'short'; length: number }
  | { kind: 'wrong-type'; type: number }
  | { kind: 'bad-code'; code: number }
  | { kind: 'bad-option'; offset: number; why: string };

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: NdDecodeError };

function decodeOptions(b: Buffer, start: number): Decoded<NdOption[]> {
  const options: NdOption[] = [];
  for (let off = start; off < b.length;) {
    if (b.length - off < 2) return { ok: false, error: { kind: 'bad-option', offset: off, why: 'truncated header' } };
    const type = b[off]!;
    const units = b[off + 1]!;
    // RFC 4861 4.6: a zero length is invalid, and the message must be dropped.
    if (units === 0) return { ok: false, error: { kind: 'bad-option', offset: off, why: 'zero length' } };
    if (off + units * 8 > b.length) return { ok: false, error: { kind: 'bad-option', offset: off, why: 'runs past the end' } };
    options.push({ type, body: b.subarray(off + 2, off + units * 8) });
    off += units * 8;
  }
  return { ok: true, value: options };
}

/** An ICMPv6 router solicitation: type 133, code 0, 4 reserved bytes, options. */
export function decodeRouterSolicitation(b: Buffer): Decoded<RouterSolicitation> {
  if (b.length < 8) return { ok: false, error: { kind: 'short', length: b.length } };
  if (b[0] !== ICMP6_ROUTER_SOLICITATION) return { ok: false, error: { kind: 'wrong-type', type: b[0]! } };
  if (b[1] !== 0) return { ok: false, error: { kind: 'bad-code', code: b[1]! } };
  const options = decodeOptions(b, 8);
  if (!options.ok) return options;
  const lla = options.value.find((o) => o.type === OPTION_SOURCE_LINK_LAYER && o.body.length >= 6);
  return { ok: true, value: { options: options.value, sourceLinkLayer: lla ? macText(lla.body.subarray(0, 6)) : undefined } };
}

/** An ICMPv6 router advertisement (for tests and tools: kaboot only sends them). */
export function decodeRouterAdvertisement(b: Buffer): Decoded<RouterAdvertisement & { options: NdOption[] }> {
  if (b.length < 16) return { ok: false, error: { kind: 'short', length: b.length } };
  if (b[0] !== ICMP6_ROUTER_ADVERTISEMENT) return { ok: false, error: { kind: 'wrong-type', type: b[0]! } };
  if (b[1] !== 0) return { ok: false, error: { kind: 'bad-code', code: b[1]! } };
  const options = decodeOptions(b, 16);
  if (!options.ok) return options;
  const lla = options.value.find((o) => o.type === OPTION_SOURCE_LINK_LAYER && o.body.length >= 6);
  return {
    ok: true,
    value: {
      curHopLimit: b[4]!,
      managed: (b[5]! & 0x80) !== 0,
      other: (b[5]! & 0x40) !== 0,
      routerLifetime: b.readUInt16BE(6),
      reachableTime: b.readUInt32BE(8),
      retransTimer: b.readUInt32BE(12),
      sourceLinkLayer: lla ? macText(lla.body.subarray(0, 6)) : undefined,
      options: options.value,
    },
  };
}
