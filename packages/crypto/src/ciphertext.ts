import { randomFillSync } from 'node:crypto';
import { HEADER_LENGTH, open, type RandomFill, sealedLength, sealInto } from './cobblestone';
import type { ContextEncoder, EncryptionContext } from './context';
import { CryptoError } from './errors';
import { GCM_TAG_LENGTH } from './gcm';
import { KEY_ID_LENGTH, type KeyEntry } from './keyring';

/**
 * Ciphertext format v1:
 *
 *   0x01 ‖ key id (16) ‖ salt (24) ‖ commitment (32) ‖ AES-256-GCM chunks (≤ 16 KiB + 16-byte tag each)
 *
 * i.e. a version byte and the key id in front of a Cobblestone-256 message whose context is
 * `encodeContext(0x01, key id, caller's context)`. Text form: `v1.` + base64url (no padding) of those bytes.
 */
export const FORMAT_VERSION = 1;
export const V1_HEADER_LENGTH = 1 + KEY_ID_LENGTH;
/** Version, key id, salt, commitment and an empty final chunk: the shortest valid v1 ciphertext. */
export const V1_MIN_LENGTH = V1_HEADER_LENGTH + HEADER_LENGTH + GCM_TAG_LENGTH;
export const DEFAULT_MAX_PLAINTEXT_BYTES = 64 * 1024 * 1024;
export const TEXT_PREFIX = 'v1.';

/** Seals with `entry` (always the current key in production). */
export function sealV1(
  entry: KeyEntry,
  encoder: ContextEncoder,
  context: EncryptionContext,
  plaintext: Uint8Array | string,
  maxPlaintextBytes: number,
  randomFill: RandomFill,
): Buffer {
  if (typeof plaintext !== 'string' && !(plaintext instanceof Uint8Array)) {
    throw new TypeError('plaintext must be a string or a Uint8Array');
  }
  const length = typeof plaintext === 'string' ? Buffer.byteLength(plaintext, 'utf8') : plaintext.byteLength;
  if (length > maxPlaintextBytes) {
    throw new CryptoError(
      'too_large',
      `plaintext of ${length} bytes is above the ${maxPlaintextBytes}-byte limit`,
    );
  }
  const contextBytes = encoder.encode(FORMAT_VERSION, entry.id, context);
  const key = entry.cobblestoneKey(context.dataClass);
  const out = Buffer.allocUnsafe(V1_HEADER_LENGTH + sealedLength(length));
  out[0] = FORMAT_VERSION;
  entry.id.copy(out, 1);
  sealInto(key, contextBytes, plaintext, length, out, V1_HEADER_LENGTH, randomFill);
  return out;
}

/**
 * The key id a v1 ciphertext names (a view into it), after checking the version byte and minimum length.
 * Nothing else is trusted until the commitment is checked.
 */
export function readKeyId(ciphertext: Buffer): Buffer {
  if (ciphertext.length === 0) throw new CryptoError('malformed', 'ciphertext is empty');
  if (ciphertext[0] !== FORMAT_VERSION) {
    throw new CryptoError('unknown_version', `unknown ciphertext format version ${ciphertext[0]}`);
  }
  if (ciphertext.length < V1_MIN_LENGTH) {
    throw new CryptoError(
      'malformed',
      `ciphertext is truncated: ${ciphertext.length} bytes, a v1 ciphertext has at least ${V1_MIN_LENGTH}`,
    );
  }
  return ciphertext.subarray(1, V1_HEADER_LENGTH);
}

/** Opens a v1 ciphertext whose key id has already been matched to `entry` (see `readKeyId`). */
export function openV1(
  entry: KeyEntry,
  encoder: ContextEncoder,
  context: EncryptionContext,
  ciphertext: Buffer,
  maxPlaintextBytes: number,
): Buffer {
  const contextBytes = encoder.encode(FORMAT_VERSION, entry.id, context);
  const key = entry.cobblestoneKey(context.dataClass);
  return open(key, contextBytes, ciphertext, V1_HEADER_LENGTH, maxPlaintextBytes);
}

/** Bytes of the binary v1 ciphertext of a plaintext of `plaintextBytes` bytes (the format is length-exact). */
export function sealedV1Length(plaintextBytes: number): number {
  return V1_HEADER_LENGTH + sealedLength(plaintextBytes);
}

/**
 * Characters (and bytes: the form is ASCII) of the text form of a plaintext of `plaintextBytes` bytes, known
 * before sealing: a producer can tell whether a message fits a transport's limit without encrypting it.
 */
export function sealedTextLength(plaintextBytes: number): number {
  return TEXT_PREFIX.length + Math.ceil((sealedV1Length(plaintextBytes) * 4) / 3);
}

/** Text form for storage and URLs: `v1.` + unpadded base64url. */
export function encodeText(ciphertext: Uint8Array): string {
  return TEXT_PREFIX + asBuffer(ciphertext).toString('base64url');
}

const BASE64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const BASE64URL_BODY = /^[A-Za-z0-9_-]*$/;
const VERSIONED_TEXT = /^v[0-9]+\./;

/**
 * Parses the text form strictly: the `v1.` prefix, only base64url characters, no padding, no impossible length
 * and no non-zero bits in the last character (so each ciphertext has exactly one text form). The decoded bytes
 * must start with the version byte the prefix names. Node's own base64 decoder accepts all of these, hence
 * the checks.
 */
export function decodeText(text: string, maxPlaintextBytes: number): Buffer {
  if (typeof text !== 'string') throw new CryptoError('malformed', 'ciphertext text must be a string');
  if (!text.startsWith(TEXT_PREFIX)) {
    if (VERSIONED_TEXT.test(text))
      throw new CryptoError('unknown_version', 'unknown ciphertext text version');
    throw new CryptoError('malformed', `ciphertext text must start with "${TEXT_PREFIX}"`);
  }
  const bodyLength = text.length - TEXT_PREFIX.length;
  const maxBodyLength = Math.ceil((maxV1Length(maxPlaintextBytes) * 4) / 3);
  if (bodyLength > maxBodyLength) {
    throw new CryptoError(
      'too_large',
      `ciphertext text of ${text.length} characters is above the size limit`,
    );
  }
  const body = text.slice(TEXT_PREFIX.length);
  if (!BASE64URL_BODY.test(body)) {
    throw new CryptoError('malformed', 'ciphertext text must be unpadded base64url');
  }
  const tail = bodyLength % 4;
  if (tail === 1) throw new CryptoError('malformed', 'ciphertext text has an impossible base64url length');
  if (tail !== 0) {
    // The last character carries 4 (tail 2) or 2 (tail 3) bits that must be zero in the canonical form.
    const last = BASE64URL_ALPHABET.indexOf(body.charAt(bodyLength - 1));
    const unusedBits = tail === 2 ? 0b1111 : 0b11;
    if ((last & unusedBits) !== 0)
      throw new CryptoError('malformed', 'ciphertext text is not canonical base64url');
  }
  const bytes = Buffer.from(body, 'base64url');
  if (bytes[0] !== FORMAT_VERSION) {
    throw new CryptoError('malformed', 'ciphertext text prefix does not match its version byte');
  }
  return bytes;
}

/** The largest v1 ciphertext a plaintext cap allows (for bounding input before any work). */
export function maxV1Length(maxPlaintextBytes: number): number {
  return V1_HEADER_LENGTH + sealedLength(maxPlaintextBytes);
}

/** A Buffer view of any Uint8Array, without copying. */
export function asBuffer(bytes: Uint8Array): Buffer {
  if (Buffer.isBuffer(bytes)) return bytes;
  if (!(bytes instanceof Uint8Array)) throw new CryptoError('malformed', 'ciphertext must be a Uint8Array');
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Salts come from here: a per-service pool refilled from the CSPRNG (salts are public, unique, random). */
export function createRandomPool(size = 4096): RandomFill {
  const pool = Buffer.allocUnsafeSlow(size);
  let used = size;
  return (target, offset, length) => {
    if (length > size) {
      randomFillSync(target, offset, length);
      return;
    }
    if (used + length > size) {
      randomFillSync(pool);
      used = 0;
    }
    pool.copy(target, offset, used, used + length);
    used += length;
  };
}
