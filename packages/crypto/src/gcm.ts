import { type CipherGCMOptions, createCipheriv, createDecipheriv } from 'node:crypto';
import { CryptoError } from './errors';

/** AES-256-GCM with a 96-bit nonce and a 128-bit tag: the only GCM this package runs. */
export const GCM_KEY_LENGTH = 32;
export const GCM_NONCE_LENGTH = 12;
export const GCM_TAG_LENGTH = 16;

/**
 * Always passed, to encryption and decryption alike: without `authTagLength` Node 20 lets `setAuthTag`
 * accept a shortened tag, which turns a 128-bit forgery bound into a 32-bit one.
 */
const GCM_OPTIONS: CipherGCMOptions = Object.freeze({ authTagLength: GCM_TAG_LENGTH });

function checkKeyAndNonce(key: Uint8Array, nonce: Uint8Array): void {
  if (key.byteLength !== GCM_KEY_LENGTH) {
    throw new CryptoError(
      'invalid_key',
      `AES-256-GCM key must be ${GCM_KEY_LENGTH} bytes (got ${key.byteLength})`,
    );
  }
  if (nonce.byteLength !== GCM_NONCE_LENGTH) {
    throw new RangeError(`AES-256-GCM nonce must be ${GCM_NONCE_LENGTH} bytes (got ${nonce.byteLength})`);
  }
}

/**
 * Encrypts `plaintext` (a string is taken as UTF-8) and writes ciphertext ‖ tag into `out` at `offset`.
 * Returns the offset just past the tag. `out` must have room for plaintext length + 16 bytes.
 */
export function gcmEncryptInto(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array | string,
  aad: Uint8Array | undefined,
  out: Buffer,
  offset: number,
): number {
  checkKeyAndNonce(key, nonce);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, GCM_OPTIONS);
  if (aad !== undefined && aad.byteLength > 0) cipher.setAAD(aad);
  const body = typeof plaintext === 'string' ? cipher.update(plaintext, 'utf8') : cipher.update(plaintext);
  let at = offset + body.copy(out, offset);
  const rest = cipher.final();
  if (rest.length > 0) at += rest.copy(out, at);
  at += cipher.getAuthTag().copy(out, at);
  return at;
}

/**
 * Decrypts and authenticates one AES-256-GCM message. Returns the plaintext, or `undefined` when the tag does
 * not verify (the unverified output is wiped first). Lengths are checked here, before OpenSSL sees anything.
 */
export function gcmDecrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
  aad: Uint8Array | undefined,
): Buffer | undefined {
  checkKeyAndNonce(key, nonce);
  if (tag.byteLength !== GCM_TAG_LENGTH) {
    throw new CryptoError(
      'malformed',
      `AES-256-GCM tag must be ${GCM_TAG_LENGTH} bytes (got ${tag.byteLength})`,
    );
  }
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, GCM_OPTIONS);
  decipher.setAuthTag(tag);
  if (aad !== undefined && aad.byteLength > 0) decipher.setAAD(aad);
  const plaintext = decipher.update(ciphertext);
  let rest: Buffer;
  try {
    rest = decipher.final();
  } catch {
    plaintext.fill(0);
    return undefined;
  }
  // GCM is a stream mode: `final` never has bytes left over, but do not silently drop them if it ever did.
  return rest.length === 0 ? plaintext : Buffer.concat([plaintext, rest]);
}
