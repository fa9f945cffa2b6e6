// A raw ICMPv6 socket on one interface, for Neighbor Discovery (RFC 4861) messages,
// which need a hop limit of 255 and a link-local source: Node has no raw sockets, the
// native addon opens it. It is non-blocking and nothing watches it: the owner drains it
// with receive() from a timer, so Node's loop never waits on it.
import { loadNative, type Icmp6Received, type NativeAddon } from './native.js';

export type { Icmp6Received };

export class Icmp6SocketError extends Error {
  readonly code: string;
  constructor(readonly ifname: string, readonly action: string, cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(`ICMPv6 on interface ${ifname}: cannot ${action}: ${detail}`, { cause });
    this.name = 'Icmp6SocketError';
    this.code = typeof (cause as { code?: unknown })?.code === 'string' ? (cause as { code: string }).code : 'EUNKNOWN';
  }
}

export interface Icmp6SocketOptions {
  /** ICMPv6 types to receive, e.g. [133] for router solicitations; default none */
  types?: number[];
  /** multicast groups to join on the interface, e.g. ['ff02::2'] (all-routers) */
  groups?: string[];
}

export class Icmp6Socket {
  private closed = false;

  private constructor(readonly ifname: string, readonly ifindex: number, private readonly fd: number, private readonly native: NativeAddon) {}

  /** Throws NativeAddonMissingError, or Icmp6SocketError (ENODEV, EPERM without CAP_NET_RAW…). */
  static open(ifname: string, opts: Icmp6SocketOptions = {}): Icmp6Socket {
    const native = loadNative();
    try {
      const { fd, ifindex } = native.icmp6SocketOnDevice(ifname, { types: opts.types ?? [], groups: opts.groups ?? [] });
      return new Icmp6Socket(ifname, ifindex, fd, native);
    } catch (e) {
      throw new Icmp6SocketError(ifname, 'open a raw ICMPv6 socket', e);
    }
  }

  /** Sends one ICMPv6 message to `address` (link-local or multicast) on this interface. */
  send(address: string, message: Uint8Array): void {
    try {
      this.native.icmp6Send(this.fd, this.ifindex, address, message);
    } catch (e) {
      throw new Icmp6SocketError(this.ifname, `send to ${address}`, e);
    }
  }

  /** The next waiting message, or null. */
  receive(): Icmp6Received | null {
    if (this.closed) return null;
    try {
      return this.native.icmp6Receive(this.fd);
    } catch (e) {
      throw new Icmp6SocketError(this.ifname, 'receive', e);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.closeFd(this.fd);
  }
}
