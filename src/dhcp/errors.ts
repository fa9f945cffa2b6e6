// Typed errors of the DHCP codec. Decoding never throws: it returns one of these, so a
// server can log and count bad packets and live on. Encoding works on kaboot's own data;
// when that cannot be put on the wire it throws DhcpEncodeError (a bug or a config
// problem, not something a peer can cause).

export type DhcpDecodeErrorCode =
  /** fewer than 240 bytes: no room for the fixed header and the magic cookie */
  | 'short'
  /** op is neither BOOTREQUEST (1) nor BOOTREPLY (2) */
  | 'bad-op'
  /** hlen larger than the 16-byte chaddr field */
  | 'bad-hlen'
  /** the 4 bytes after the fixed header are not 99.130.83.99 */
  | 'bad-magic'
  /** an option's length byte is missing or its value runs past the end of its area */
  | 'option-overrun'
  /** option 52 is not one byte of value 1, 2 or 3 */
  | 'bad-overload'
  /** option 52 appears inside the file or sname areas it overloads */
  | 'overload-loop';

export interface DhcpDecodeError {
  code: DhcpDecodeErrorCode;
  message: string;
  /** byte offset in the packet where the problem was found, when there is one */
  offset?: number;
}

export type OptionValueErrorCode =
  /** the value's length does not suit the option's type */
  | 'bad-length'
  /** the length is right but the content is not (wrong magic, bad UUID type, ...) */
  | 'bad-value';

export interface OptionValueError {
  code: OptionValueErrorCode;
  /** the option code (for a PXE sub-option: 43) */
  option: number;
  message: string;
}

export type DhcpEncodeErrorCode =
  /** the options do not fit, even overloaded into file and sname */
  | 'too-big'
  /** a field value cannot be encoded (bad IPv4 text, sname/file too long, chaddr > 16 bytes, ...) */
  | 'bad-field'
  /** a typed option value cannot be encoded (out of range, too long for its format) */
  | 'bad-option';

export class DhcpEncodeError extends Error {
  override readonly name = 'DhcpEncodeError';
  constructor(
    readonly code: DhcpEncodeErrorCode,
    message: string,
  ) {
    super(message);
  }
}
