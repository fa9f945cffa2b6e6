// The read-only TFTP server: one listening socket per local IPv4 address; each read
// request becomes a ReadTransfer on a fresh socket bound to that same address.
// Malformed datagrams are counted and dropped; a write request is refused (ERROR 2).
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import { defaults } from '../config/schema.js';
import { negotiate, type NegotiationLimits } from './options.js';
import { decodePacket, ErrorCode, errorPacket, type ErrorCodeValue, type RequestPacket } from './packet.js';
import { netasciiSource } from './netascii.js';
import { isLookupError, type FileProvider, type FileSource, type TftpLookupError, type TftpLookupErrorKind } from './provider.js';
import { ReadTransfer, type TransferCounters, type TransferResult } from './transfer.js';

export interface TftpLimits {
  max_blksize: number;
  max_windowsize: number;
  /** seconds before the first retransmission, unless the client negotiates one */
  timeout: number;
  /** retransmissions before a transfer is abandoned */
  retries: number;
  /** transfers at once; more requests get ERROR 0 "server busy" (each transfer holds a socket); default: kaboot.yaml's */
  max_transfers?: number;
}

export interface TftpServerOptions {
  /** local IPv4 addresses to listen on, one socket each */
  addresses: string[];
  port: number;
  provider: FileProvider;
  logger: Logger;
  limits: TftpLimits;
}

export interface TftpServerStats {
  requests: number;
  malformed: number;
  writeRefused: number;
  /** DATA/ACK/ERROR/OACK sent to the listening port */
  stray: number;
  duplicateRequests: number;
  busy: number;
  notFound: number;
  accessDenied: number;
  ioErrors: number;
  active: number;
  done: number;
  failed: number;
  bytesSent: number;
  wrongTid: number;
  ignored: number;
  retransmits: number;
  packetsSent: number;
}

export interface TftpServer {
  /** the bound address:port pairs (port 0 in the options picks a free port) */
  readonly listening: { address: string; port: number }[];
  stats(): TftpServerStats;
  close(): Promise<void>;
}

const lookupErrorCodes: Record<TftpLookupErrorKind, ErrorCodeValue> = {
  'not-found': ErrorCode.FILE_NOT_FOUND,
  'access-denied': ErrorCode.ACCESS_VIOLATION,
  'io-error': ErrorCode.NOT_DEFINED,
};

/** Largest blksize that fits the MTU of the interface holding `address` (RFC 2348 sizes). */
export function mtuBlksizeFor(address: string): number | undefined {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (!addrs?.some((a) => a.family === 'IPv4' && a.address === address)) continue;
    try {
      const mtu = Number(readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim());
      // IPv4 header 20, UDP 8, TFTP DATA header 4
      if (Number.isInteger(mtu) && mtu > 64) return Math.min(65464, mtu - 32);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function bindSocket(address: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: 'udp4' });
    const onError = (err: Error) => {
      socket.close();
      reject(err);
    };
    socket.once('error', onError);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

export async function startTftpServer(opts: TftpServerOptions): Promise<TftpServer> {
  const { logger, provider, limits } = opts;
  const maxTransfers = limits.max_transfers ?? defaults.tftp.max_transfers;
  const counters: TransferCounters = { wrongTid: 0, ignored: 0, retransmits: 0, packetsSent: 0 };
  const s = { requests: 0, malformed: 0, writeRefused: 0, stray: 0, duplicateRequests: 0, busy: 0, notFound: 0, accessDenied: 0, ioErrors: 0, done: 0, failed: 0, bytesSent: 0 };
  // client "ip:port" → its transfer (null while the file is being opened)
  const active = new Map<string, ReadTransfer | null>();
  let closing = false;

  const sockets: Socket[] = [];
  try {
    for (const address of opts.addresses) sockets.push(await bindSocket(address, opts.port));
  } catch (err) {
    for (const sock of sockets) sock.close();
    throw err;
  }

  // Interface MTUs, looked up once per listening address.
  const mtuCaps = new Map<string, number | undefined>();
  function negotiationLimits(localAddress: string): NegotiationLimits {
    if (!mtuCaps.has(localAddress)) mtuCaps.set(localAddress, mtuBlksizeFor(localAddress));
    return {
      maxBlksize: limits.max_blksize,
      mtuBlksize: mtuCaps.get(localAddress),
      maxWindowsize: limits.max_windowsize,
      defaultTimeout: limits.timeout,
    };
  }

  function reply(sock: Socket, rinfo: RemoteInfo, packet: Buffer): void {
    if (!closing) sock.send(packet, rinfo.port, rinfo.address);
  }

  async function handleRead(sock: Socket, localAddress: string, req: RequestPacket, rinfo: RemoteInfo): Promise<void> {
    const key = `${rinfo.address}:${rinfo.port}`;
    if (active.has(key)) {
      // The client repeated its request while we were opening the file or sending.
      s.duplicateRequests++;
      return;
    }
    if (active.size >= maxTransfers) {
      s.busy++;
      reply(sock, rinfo, errorPacket(ErrorCode.NOT_DEFINED, 'server busy, try again'));
      return;
    }
    active.set(key, null);
    const client = { address: rinfo.address, port: rinfo.port, localAddress };
    let opened: FileSource | TftpLookupError;
    try {
      opened = await provider.open(req.filename, client);
    } catch (err) {
      logger.warn({ err, file: req.filename }, 'tftp provider failed');
      opened = { error: 'io-error' as const, message: 'read error' };
    }
    if (isLookupError(opened)) {
      active.delete(key);
      if (opened.error === 'not-found') s.notFound++;
      else if (opened.error === 'access-denied') s.accessDenied++;
      else s.ioErrors++;
      logger.info({ client: key, file: req.filename, error: opened.error }, 'tftp request refused');
      reply(sock, rinfo, errorPacket(lookupErrorCodes[opened.error], opened.message));
      return;
    }
    if (req.mode === 'netascii') {
      const converted = await netasciiSource(opened).catch((err: unknown) => {
        logger.warn({ err, file: req.filename }, 'tftp read error');
        return null;
      });
      if (!converted) {
        active.delete(key);
        reply(sock, rinfo, errorPacket(ErrorCode.NOT_DEFINED, 'netascii conversion failed (file too large?); use octet'));
        return;
      }
      opened = converted;
    }
    if (closing) {
      active.delete(key);
      opened.close();
      return;
    }
    const params = negotiate(req.options, opened.size, negotiationLimits(localAddress));
    const onEnd = (r: TransferResult) => {
      active.delete(key);
      s.bytesSent += r.bytes;
      if (r.outcome === 'done') s.done++;
      else s.failed++;
    };
    try {
      const t = await ReadTransfer.start({
        localAddress,
        client: { address: rinfo.address, port: rinfo.port },
        file: req.filename,
        source: opened,
        params,
        retries: limits.retries,
        logger,
        counters,
        onEnd,
      });
      if (active.has(key)) active.set(key, t);
      if (closing) t.abort();
    } catch (err) {
      active.delete(key);
      opened.close();
      s.failed++;
      logger.error({ err, client: key }, 'tftp transfer socket failed');
      reply(sock, rinfo, errorPacket(ErrorCode.NOT_DEFINED, 'server error'));
    }
  }

  for (const sock of sockets) {
    const localAddress = sock.address().address;
    sock.on('error', (err) => logger.warn({ err, address: localAddress }, 'tftp socket error'));
    sock.on('message', (msg, rinfo) => {
      if (closing) return;
      s.requests++;
      const decoded = decodePacket(msg);
      if (!decoded.ok) {
        s.malformed++;
        logger.debug({ client: `${rinfo.address}:${rinfo.port}`, reason: decoded.reason }, 'tftp malformed packet');
        return;
      }
      const p = decoded.packet;
      if (p.op === 'WRQ') {
        s.writeRefused++;
        reply(sock, rinfo, errorPacket(ErrorCode.ACCESS_VIOLATION, 'read-only server'));
      } else if (p.op === 'RRQ' && p.mode === 'mail') {
        reply(sock, rinfo, errorPacket(ErrorCode.ILLEGAL_OPERATION, 'mail mode not supported'));
      } else if (p.op === 'RRQ') {
        handleRead(sock, localAddress, p, rinfo).catch((err: unknown) => logger.error({ err }, 'tftp request failed'));
      } else {
        s.stray++;
      }
    });
  }
  logger.info({ listening: sockets.map((x) => x.address()) }, 'tftp listening');

  return {
    listening: sockets.map((x) => ({ address: x.address().address, port: x.address().port })),
    stats: () => ({ ...s, ...counters, active: active.size }),
    close: async () => {
      closing = true;
      for (const t of active.values()) t?.abort();
      await Promise.all(sockets.map((x) => new Promise<void>((r) => x.close(() => r()))));
    },
  };
}
