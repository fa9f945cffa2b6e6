// A dgram socket that lives on one interface. The native addon prepares and binds the
// descriptor (SO_BINDTODEVICE), dgram adopts it through bind({ fd }); from then on it is
// an ordinary dgram.Socket that only sees, and only sends through, its interface.
import dgram from 'node:dgram';
import { loadNative } from './native.js';

export interface DeviceSocketOptions {
  /** allow sending to broadcast addresses (SO_BROADCAST); default false */
  broadcast?: boolean;
  /**
   * SO_REUSEADDR; default false, so that a second server on the same interface and
   * port fails with EADDRINUSE instead of silently sharing the port. Sockets on
   * different interfaces share a port without it.
   */
  reuseAddr?: boolean;
  /** local address to bind; default 0.0.0.0, which a server needs to receive broadcasts */
  address?: string;
}

export class DeviceSocketError extends Error {
  readonly code: string;
  constructor(readonly ifname: string, readonly port: number, cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(`cannot open UDP port ${port} on interface ${ifname}: ${detail}`, { cause });
    this.name = 'DeviceSocketError';
    this.code = typeof (cause as { code?: unknown })?.code === 'string' ? (cause as { code: string }).code : 'EUNKNOWN';
  }
}

/**
 * A bound, listening IPv4 UDP socket tied to interface `ifname`.
 * Throws NativeAddonMissingError when the addon is not built, DeviceSocketError
 * (code ENODEV, EADDRINUSE, EPERM…) when the socket cannot be opened.
 */
export async function openDeviceSocket(ifname: string, port: number, opts: DeviceSocketOptions = {}): Promise<dgram.Socket> {
  const native = loadNative();
  let fd: number;
  try {
    fd = native.udpSocketOnDevice(ifname, port, {
      broadcast: opts.broadcast ?? false,
      reuseAddr: opts.reuseAddr ?? false,
      address: opts.address ?? '0.0.0.0',
    });
  } catch (e) {
    throw new DeviceSocketError(ifname, port, e);
  }
  const socket = dgram.createSocket({ type: 'udp4' });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      // exclusive: in a cluster worker, adopt the fd here rather than ask the primary.
      socket.bind({ fd, exclusive: true }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    // Only a descriptor dgram never adopted is still ours to close.
    const adopted = isOpenBy(socket);
    try { socket.close(); } catch { /* already closed */ }
    if (!adopted) native.closeFd(fd);
    throw new DeviceSocketError(ifname, port, e);
  }
  return socket;
}

function isOpenBy(socket: dgram.Socket): boolean {
  try {
    socket.address();
    return true;
  } catch {
    return false;
  }
}
