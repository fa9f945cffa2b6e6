// DHCP requests for tests: a typed builder for policy unit tests, and a scripted
// client (plain UDP) that runs DORA exchanges against a real server, for integration
// tests and the kill -9 test. Built on kaboot's own codec.
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { BOOTREQUEST, BROADCAST_FLAG, MessageType, Opt, type DhcpPacket } from '../../src/dhcp/packet.js';
import { setOpt, getOpt, type OptionTypes, type KnownOpt } from '../../src/dhcp/options.js';
import { decodePacket, encodePacket } from '../../src/dhcp/codec.js';

export type OptionList = { [K in KnownOpt]?: OptionTypes[K] };

export interface RequestFields {
  xid?: number;
  ciaddr?: string;
  giaddr?: string;
  flags?: number;
  broadcast?: boolean;
  options?: OptionList;
  /** raw options, set after the typed ones */
  raw?: [number, Buffer][];
}

export function macBytes(mac: string): Buffer {
  const b = Buffer.alloc(16);
  Buffer.from(mac.replace(/[:-]/g, ''), 'hex').copy(b);
  return b;
}

export function buildRequest(type: MessageType, mac: string, f: RequestFields = {}): DhcpPacket {
  const options = new Map<number, Buffer>();
  setOpt(options, Opt.MessageType, type);
  for (const [code, value] of Object.entries(f.options ?? {})) {
    setOpt(options, Number(code) as KnownOpt, value as never);
  }
  for (const [code, v] of f.raw ?? []) options.set(code, v);
  return {
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: f.xid ?? randomBytes(4).readUInt32BE(0),
    secs: 0,
    flags: f.flags ?? (f.broadcast ? BROADCAST_FLAG : 0),
    ciaddr: f.ciaddr ?? '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: f.giaddr ?? '0.0.0.0',
    chaddr: macBytes(mac),
    sname: '',
    file: '',
    options,
  };
}

export const typeOf = (p: DhcpPacket) => getOpt(p.options, Opt.MessageType);

/**
 * A client that talks to a server through a UDP socket it owns: in a relay test it
 * sits where a relay would (port 67, giaddr its own address), otherwise it needs a
 * broadcast-capable socket on port 68. Waits for the reply matching each xid.
 */
export class ScriptedClient {
  private waiting = new Map<number, (p: DhcpPacket) => void>();
  private constructor(readonly sock: dgram.Socket, readonly server: { address: string; port: number }) {
    sock.on('message', (msg) => {
      const r = decodePacket(msg);
      if (!r.ok) return;
      const w = this.waiting.get(r.packet.xid);
      if (w) {
        this.waiting.delete(r.packet.xid);
        w(r.packet);
      }
    });
  }

  static async open(bind: { address: string; port: number }, server: { address: string; port: number }): Promise<ScriptedClient> {
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((res, rej) => {
      sock.once('error', rej);
      sock.bind(bind.port, bind.address, () => {
        sock.off('error', rej);
        sock.setBroadcast(true);
        res();
      });
    });
    return new ScriptedClient(sock, server);
  }

  /** Send and wait for the reply with the same xid (undefined after timeoutMs). */
  exchange(p: DhcpPacket, timeoutMs = 2000): Promise<DhcpPacket | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(p.xid);
        resolve(undefined);
      }, timeoutMs);
      this.waiting.set(p.xid, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.sock.send(encodePacket(p), this.server.port, this.server.address);
    });
  }

  send(p: DhcpPacket): void {
    this.sock.send(encodePacket(p), this.server.port, this.server.address);
  }

  close(): void {
    this.sock.close();
  }
}
