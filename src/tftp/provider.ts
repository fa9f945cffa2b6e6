// What the TFTP server asks for a file. The server knows sockets and the protocol; a
// FileProvider knows where bytes come from (a directory, generated pxelinux.cfg files,
// the node registry). A FileSource may be a file on disk or content built in memory.

export interface TftpClient {
  /** client's IPv4 address and UDP port (its TID) */
  address: string;
  port: number;
  /** the local address the request came to */
  localAddress: string;
}

export interface FileSource {
  readonly size: number;
  /**
   * Bytes [offset, offset + length) (fewer only at the end of the file). A Buffer when
   * the bytes are at hand (the hot path: sent at once), a Promise when they must come
   * from disk. The returned Buffer may be a view into shared memory: never modify it.
   */
  read(offset: number, length: number): Buffer | Promise<Buffer>;
  /** the transfer is over; called exactly once */
  close(): void;
}

export type TftpLookupErrorKind = 'not-found' | 'access-denied' | 'io-error';

export interface TftpLookupError {
  error: TftpLookupErrorKind;
  /** short text sent to the client in the ERROR packet */
  message: string;
}

export interface FileProvider {
  open(path: string, client: TftpClient): Promise<FileSource | TftpLookupError>;
}

export function isLookupError(x: FileSource | TftpLookupError): x is TftpLookupError {
  return typeof (x as TftpLookupError).error === 'string';
}

/** A FileSource over bytes already in memory (generated files, cached files). */
export function bufferSource(buf: Buffer, onClose?: () => void): FileSource {
  let closed = false;
  return {
    size: buf.length,
    read: (offset, length) => buf.subarray(offset, Math.min(offset + length, buf.length)),
    close: () => {
      if (closed) return;
      closed = true;
      onClose?.();
    },
  };
}
