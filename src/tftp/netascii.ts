// RFC 1350 netascii: a file sent in netascii mode has each LF as CR LF and each bare CR
// as CR NUL (RFC 764). tftp-hpa's client asks netascii unless told "binary" and turns
// it back, so a server that sent raw bytes would corrupt every file with CR or LF in it.
import { bufferSource, type FileSource } from './provider.js';

export function toNetascii(data: Buffer): Buffer {
  let extra = 0;
  for (let i = data.indexOf(10); i >= 0; i = data.indexOf(10, i + 1)) extra++;
  for (let i = data.indexOf(13); i >= 0; i = data.indexOf(13, i + 1)) extra++;
  if (extra === 0) return data;
  const out = Buffer.allocUnsafe(data.length + extra);
  let o = 0;
  let i = 0;
  let lf = data.indexOf(10);
  let cr = data.indexOf(13);
  while (lf >= 0 || cr >= 0) {
    const pos = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
    o += data.copy(out, o, i, pos);
    out[o++] = 13;
    out[o++] = pos === lf ? 10 : 0;
    i = pos + 1;
    if (pos === lf) lf = data.indexOf(10, i);
    else cr = data.indexOf(13, i);
  }
  o += data.copy(out, o, i);
  return out;
}

/** The netascii form of a source, built in memory (text files are small). */
export async function netasciiSource(src: FileSource, maxBytes = 512 * 1024 * 1024): Promise<FileSource | null> {
  try {
    if (src.size > maxBytes) return null;
    const raw = await src.read(0, src.size);
    return bufferSource(toNetascii(raw));
  } finally {
    src.close();
  }
}
