import { timingSafeEqual } from 'node:crypto';
import { CryptoError } from './errors';
import { GCM_KEY_LENGTH, GCM_NONCE_LENGTH, GCM_TAG_LENGTH, gcmDecrypt, gcmEncryptInto } from './gcm';
import { HmacKey } from './hkdf';

/**
 * C2SP chunked encryption, instantiated as Cobblestone-256 (HKDF-SHA-512 + AES-256-GCM), per
 * https://c2sp.org/chunked-encryption:
 *
 *   salt (24, random) ‖ commitment (32) ‖ chunk_0 ‖ … ‖ chunk_n
 *   key (32) ‖ base nonce (12) ‖ commitment (32) =
 *     HKDF-Expand-SHA-512(prk = input key, info = "c2sp.org/chunked-encryption@v1+" ‖ "AEAD_AES_256_GCM" ‖ 0x00
 *                                                  ‖ salt ‖ context, L = 76)
 *   chunk_i = AES-256-GCM(key, nonce = base nonce XOR big-endian(i) in the last 8 bytes, aad = "", 16 KiB of
 *             plaintext) ‖ 16-byte tag; the final chunk is always shorter than 16 KiB, possibly empty.
 *
 * The random salt gives every message its own GCM key, so there is no 2^32-messages-per-key limit; the
 * commitment makes the ciphertext open under one (key, context) only, and is checked before any chunk is
 * decrypted. The context is not stored: whoever opens must present the same bytes.
 */

export const CHUNK_SIZE = 16 * 1024;
export const SALT_LENGTH = 24;
export const COMMITMENT_LENGTH = 32;
export const HEADER_LENGTH = SALT_LENGTH + COMMITMENT_LENGTH;
const WIRE_CHUNK_LENGTH = CHUNK_SIZE + GCM_TAG_LENGTH;
/** The spec's chunk counter is 38 bits wide. */
const MAX_CHUNKS = 2 ** 38;

const INFO_PREFIX = Buffer.from('c2sp.org/chunked-encryption@v1+AEAD_AES_256_GCM\u0000', 'latin1');
const SALT_AT = INFO_PREFIX.length;
const CONTEXT_AT = SALT_AT + SALT_LENGTH;
const NONCE_AT = GCM_KEY_LENGTH;
const COMMITMENT_AT = NONCE_AT + GCM_NONCE_LENGTH;
const OKM_LENGTH = COMMITMENT_AT + COMMITMENT_LENGTH;

/** Fills `length` bytes of `target` at `offset` with CSPRNG output (e.g. `crypto.randomFillSync`). */
export type RandomFill = (target: Buffer, offset: number, length: number) => void;

/**
 * A Cobblestone-256 input key, prepared once: the HMAC-SHA-512 pads and scratch space for the per-message
 * derivation. The scratch holds derived secrets, so it is private memory (not Buffer's shared pool) and reused;
 * every method is synchronous, so sharing one instance across callers is safe.
 */
export class CobblestoneKey {
  readonly #hmac: HmacKey;
  /** info = prefix ‖ salt ‖ context, written in place (public bytes). */
  #info: Buffer;
  /** key ‖ base nonce ‖ commitment of the message in progress, and fixed views into it. */
  readonly #okm = Buffer.allocUnsafeSlow(OKM_LENGTH);
  readonly #aeadKey = this.#okm.subarray(0, NONCE_AT);
  readonly #commitment = this.#okm.subarray(COMMITMENT_AT, OKM_LENGTH);
  /** Nonce of the chunk in progress. */
  readonly #nonce = Buffer.allocUnsafeSlow(GCM_NONCE_LENGTH);

  constructor(key: Uint8Array) {
    if (key.byteLength !== GCM_KEY_LENGTH) {
      throw new CryptoError(
        'invalid_key',
        `Cobblestone-256 key must be ${GCM_KEY_LENGTH} bytes (got ${key.byteLength})`,
      );
    }
    this.#hmac = new HmacKey('sha512', key);
    this.#info = Buffer.allocUnsafeSlow(CONTEXT_AT + 256);
    INFO_PREFIX.copy(this.#info);
  }

  /**
   * Derives key ‖ base nonce ‖ commitment for (salt = `source[saltAt, saltAt + 24)`, context) into scratch
   * that the next call overwrites.
   */
  derive(source: Buffer, saltAt: number, context: Uint8Array): void {
    const infoLength = CONTEXT_AT + context.byteLength;
    if (this.#info.length < infoLength) {
      this.#info = Buffer.allocUnsafeSlow(Math.max(infoLength, this.#info.length * 2));
      INFO_PREFIX.copy(this.#info);
    }
    source.copy(this.#info, SALT_AT, saltAt, saltAt + SALT_LENGTH);
    this.#info.set(context, CONTEXT_AT);
    this.#hmac.expandPrefixInto(this.#info, infoLength, this.#okm, 0, OKM_LENGTH);
  }

  /** The AEAD key of the message last derived (a view of the scratch). */
  get aeadKey(): Buffer {
    return this.#aeadKey;
  }

  /** The commitment of the message last derived (a view of the scratch). */
  get commitment(): Buffer {
    return this.#commitment;
  }

  /** The base nonce of the message last derived, copied out. */
  baseNonce(): Buffer {
    return Buffer.from(this.#okm.subarray(NONCE_AT, COMMITMENT_AT));
  }

  /** Nonce of chunk `index`: the base nonce with the big-endian counter XORed into its last 8 bytes. */
  chunkNonce(index: number): Buffer {
    const nonce = this.#nonce;
    this.#okm.copy(nonce, 0, NONCE_AT, COMMITMENT_AT);
    if (index === 0) return nonce;
    const high = Math.floor(index / 2 ** 32);
    const low = index >>> 0;
    nonce.writeUInt32BE((nonce.readUInt32BE(4) ^ high) >>> 0, 4);
    nonce.writeUInt32BE((nonce.readUInt32BE(8) ^ low) >>> 0, 8);
    return nonce;
  }
}

/** Bytes of sealed output (header and chunks) for a plaintext of `plaintextLength` bytes. */
export function sealedLength(plaintextLength: number): number {
  return HEADER_LENGTH + plaintextLength + GCM_TAG_LENGTH * (Math.floor(plaintextLength / CHUNK_SIZE) + 1);
}

/**
 * Seals `plaintext` (a string is taken as UTF-8) under `key` and `context`, writing salt ‖ commitment ‖ chunks
 * into `out` at `offset`; `out` must have `sealedLength(plaintextLength)` bytes of room there.
 * Returns the offset just past the last chunk.
 */
export function sealInto(
  key: CobblestoneKey,
  context: Uint8Array,
  plaintext: Uint8Array | string,
  plaintextLength: number,
  out: Buffer,
  offset: number,
  randomFill: RandomFill,
): number {
  const chunks = Math.floor(plaintextLength / CHUNK_SIZE) + 1;
  if (chunks > MAX_CHUNKS) throw new CryptoError('too_large', 'plaintext exceeds the 2^38-chunk limit');
  randomFill(out, offset, SALT_LENGTH);
  key.derive(out, offset, context);
  key.commitment.copy(out, offset + SALT_LENGTH);
  const aeadKey = key.aeadKey;
  const at = offset + HEADER_LENGTH;
  // Almost every record fits one chunk: encrypt straight from the caller's value, string or bytes.
  if (chunks === 1) return gcmEncryptInto(aeadKey, key.chunkNonce(0), plaintext, undefined, out, at);

  const bytes = typeof plaintext === 'string' ? utf8Bytes(plaintext, plaintextLength) : plaintext;
  try {
    let written = at;
    for (let i = 0; i < chunks; i++) {
      const start = i * CHUNK_SIZE;
      const chunk = bytes.subarray(start, Math.min(start + CHUNK_SIZE, plaintextLength));
      written = gcmEncryptInto(aeadKey, key.chunkNonce(i), chunk, undefined, out, written);
    }
    return written;
  } finally {
    if (bytes !== plaintext) bytes.fill(0);
  }
}

/**
 * Opens the sealed message `sealed[offset..]` (salt ‖ commitment ‖ chunks, nothing after). Every length is
 * checked before any key derivation or OpenSSL call; the commitment is compared in constant time before any
 * chunk is decrypted; a failed chunk wipes what was already decrypted. The plaintext is in memory of its own
 * (not Buffer's shared pool).
 */
export function open(
  key: CobblestoneKey,
  context: Uint8Array,
  sealed: Buffer,
  offset: number,
  maxPlaintextLength: number,
): Buffer {
  const end = sealed.length;
  const length = end - offset;
  if (length < HEADER_LENGTH + GCM_TAG_LENGTH) {
    throw new CryptoError(
      'malformed',
      `ciphertext is truncated: a ${length}-byte sealed body, need at least ${HEADER_LENGTH + GCM_TAG_LENGTH}`,
    );
  }
  const bodyLength = length - HEADER_LENGTH;
  const fullChunks = Math.floor(bodyLength / WIRE_CHUNK_LENGTH);
  const finalWireLength = bodyLength - fullChunks * WIRE_CHUNK_LENGTH;
  if (finalWireLength === 0) {
    // The final chunk is always shorter than 16 KiB: a body of whole full-size chunks lost its end.
    throw new CryptoError('malformed', 'ciphertext is truncated: the final (short) chunk is missing');
  }
  if (finalWireLength < GCM_TAG_LENGTH) {
    throw new CryptoError(
      'malformed',
      `ciphertext is truncated or has trailing bytes: final chunk of ${finalWireLength} bytes is shorter than its tag`,
    );
  }
  const plaintextLength = fullChunks * CHUNK_SIZE + finalWireLength - GCM_TAG_LENGTH;
  if (plaintextLength > maxPlaintextLength) {
    throw new CryptoError(
      'too_large',
      `ciphertext would decrypt to ${plaintextLength} bytes, above the ${maxPlaintextLength}-byte limit`,
    );
  }

  key.derive(sealed, offset, context);
  const commitmentAt = offset + SALT_LENGTH;
  if (!timingSafeEqual(key.commitment, sealed.subarray(commitmentAt, commitmentAt + COMMITMENT_LENGTH))) {
    throw new CryptoError('commitment_mismatch', 'key commitment does not match: wrong key or wrong context');
  }
  const aeadKey = key.aeadKey;
  let at = offset + HEADER_LENGTH;

  if (fullChunks === 0) {
    const tagAt = end - GCM_TAG_LENGTH;
    const plaintext = gcmDecrypt(
      aeadKey,
      key.chunkNonce(0),
      sealed.subarray(at, tagAt),
      sealed.subarray(tagAt, end),
      undefined,
    );
    if (plaintext === undefined) throw chunkFailure(0);
    return plaintext;
  }

  const out = Buffer.allocUnsafeSlow(plaintextLength);
  let written = 0;
  for (let i = 0; i <= fullChunks; i++) {
    const wireLength = i < fullChunks ? WIRE_CHUNK_LENGTH : finalWireLength;
    const tagAt = at + wireLength - GCM_TAG_LENGTH;
    const chunk = gcmDecrypt(
      aeadKey,
      key.chunkNonce(i),
      sealed.subarray(at, tagAt),
      sealed.subarray(tagAt, tagAt + GCM_TAG_LENGTH),
      undefined,
    );
    if (chunk === undefined) {
      out.fill(0, 0, written);
      throw chunkFailure(i);
    }
    written += chunk.copy(out, written);
    at = tagAt + GCM_TAG_LENGTH;
  }
  return out;
}

/** The derived per-message values, copied out (for tests and known-answer checks). */
export function deriveMessageKeys(
  key: Uint8Array,
  salt: Uint8Array,
  context: Uint8Array,
): { aeadKey: Buffer; baseNonce: Buffer; commitment: Buffer } {
  if (salt.byteLength !== SALT_LENGTH) throw new RangeError(`salt must be ${SALT_LENGTH} bytes`);
  const prepared = new CobblestoneKey(key);
  prepared.derive(Buffer.from(salt), 0, context);
  return {
    aeadKey: Buffer.from(prepared.aeadKey),
    baseNonce: prepared.baseNonce(),
    commitment: Buffer.from(prepared.commitment),
  };
}

function chunkFailure(index: number): CryptoError {
  return new CryptoError(
    'authentication_failed',
    `chunk ${index} failed authentication: modified, reordered, truncated or trailing data`,
  );
}

/** UTF-8 bytes of a long string in private memory (wiped by the caller), not Buffer's shared pool. */
function utf8Bytes(text: string, byteLength: number): Buffer {
  const bytes = Buffer.allocUnsafeSlow(byteLength);
  bytes.write(text, 0, byteLength, 'utf8');
  return bytes;
}
