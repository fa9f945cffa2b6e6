// Proofs of the session secret (control channel) and of a link token (data channel).
// Both sides prove: HMAC-SHA256 over a role label, the session or link, and both
// nonces, so a proof can be neither replayed nor reflected back at its sender.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { NONCE_LEN, PROOF_LEN, TOKEN_LEN } from './frames.js';

export type Role = 'coordinator' | 'node' | 'parent' | 'child';

export function nonce(): Buffer {
  return randomBytes(NONCE_LEN);
}

export function newToken(): Buffer {
  return randomBytes(TOKEN_LEN);
}

/** Proof that `role` knows `key`, bound to `context` (session name or link id) and to the nonces in the order the role sees them. */
export function proof(key: Buffer, role: Role, context: string, ownNonce: Buffer, peerNonce: Buffer): Buffer {
  return createHmac('sha256', key).update(`kaboot-ka-v1\0${role}\0${context}\0`).update(peerNonce).update(ownNonce).digest();
}

export function proofMatches(expected: Buffer, got: Buffer): boolean {
  return got.length === PROOF_LEN && expected.length === PROOF_LEN && timingSafeEqual(expected, got);
}

/** The session secret as a key; a text secret is used as its UTF-8 bytes. */
export function secretKey(secret: string | Buffer): Buffer {
  return typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
}
