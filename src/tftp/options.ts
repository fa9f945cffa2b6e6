// Option negotiation policy (RFC 2347 framework; blksize RFC 2348; timeout and tsize
// RFC 2349; windowsize RFC 7440). A pure function: what the client asked, what the
// server allows and the file size in, the transfer parameters and the OACK out.
import type { OptionList } from './packet.js';

export interface NegotiationLimits {
  /** largest blksize granted (config tftp.max_blksize) */
  maxBlksize: number;
  /** largest blksize that fits one Ethernet frame on the request's interface (MTU - 32), if known */
  mtuBlksize?: number;
  /** largest windowsize granted (config tftp.max_windowsize) */
  maxWindowsize: number;
  /** retransmission timeout in seconds when the client names none */
  defaultTimeout: number;
}

export interface TransferParams {
  blksize: number;
  windowsize: number;
  /** seconds before the first retransmission */
  timeout: number;
  /** options to send back in an OACK, in request order; empty: no OACK, DATA 1 first */
  oack: [string, string][];
}

const DEFAULT_BLKSIZE = 512;
const MIN_BLKSIZE = 8;
const MAX_BLKSIZE = 65464;

/** A decimal option value, or null for anything else (signs, spaces, hex, overlong). */
function parseDecimal(v: string): number | null {
  if (!/^[0-9]{1,10}$/.test(v)) return null;
  return Number(v);
}

export function negotiate(requested: OptionList, fileSize: number, limits: NegotiationLimits): TransferParams {
  const params: TransferParams = { blksize: DEFAULT_BLKSIZE, windowsize: 1, timeout: limits.defaultTimeout, oack: [] };
  const seen = new Set<string>();
  for (const [name, value] of requested) {
    if (seen.has(name)) continue; // first occurrence wins
    seen.add(name);
    const n = parseDecimal(value);
    switch (name) {
      case 'blksize': {
        if (n === null || n < MIN_BLKSIZE) break;
        const cap = Math.min(MAX_BLKSIZE, limits.maxBlksize, limits.mtuBlksize ?? MAX_BLKSIZE);
        params.blksize = Math.max(MIN_BLKSIZE, Math.min(n, cap));
        params.oack.push(['blksize', String(params.blksize)]);
        break;
      }
      case 'tsize':
        // A read request carries tsize 0; the answer is the size we will send.
        if (n === null) break;
        params.oack.push(['tsize', String(fileSize)]);
        break;
      case 'timeout':
        // RFC 2349: 1..255 seconds; the server may not change it, so accept it or leave it out.
        if (n === null || n < 1 || n > 255) break;
        params.timeout = n;
        params.oack.push(['timeout', String(n)]);
        break;
      case 'windowsize': {
        if (n === null || n < 1 || n > 65535) break;
        params.windowsize = Math.max(1, Math.min(n, limits.maxWindowsize));
        params.oack.push(['windowsize', String(params.windowsize)]);
        break;
      }
      default:
        break; // unknown options are left out of the OACK, as RFC 2347 asks
    }
  }
  return params;
}
