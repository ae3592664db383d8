import { hash, timingSafeEqual } from 'node:crypto';
import { CryptoError } from './errors';
import { GCM_KEY_LENGTH, GCM_NONCE_LENGTH, GCM_TAG_LENGTH, gcmDecrypt, gcmEncryptInto } from './gcm';
import { IPAD, OPAD, writeHmacPad } from './hkdf';

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
const NONCE_AT = GCM_KEY_LENGTH;
const COMMITMENT_AT = NONCE_AT + GCM_NONCE_LENGTH;
/** key (32) ‖ base nonce (12) ‖ commitment (32) = T(1) ‖ the first 12 bytes of T(2). */
const OKM_LENGTH = COMMITMENT_AT + COMMITMENT_LENGTH;

/** HMAC-SHA-512: 128-byte blocks, 64-byte digests. */
const BLOCK = 128;
const DIGEST = 64;
/** The part of the commitment that T(1) holds; T(2) gives the rest. */
const COMMITMENT_IN_T1 = DIGEST - COMMITMENT_AT;
/** HMAC inner inputs: ipad ‖ info ‖ 0x01 for T(1), ipad ‖ T(1) ‖ info ‖ 0x02 for T(2); info = prefix ‖ salt ‖ context. */
const INFO_AT_1 = BLOCK;
const INFO_AT_2 = BLOCK + DIGEST;
const T1_AT = BLOCK;
const FIXED_INFO_LENGTH = INFO_PREFIX.length + SALT_LENGTH;
/** Room for the context before the inner buffers have to grow (covers every realistic v1 context). */
const INITIAL_CONTEXT_ROOM = 512;

/** Fills `length` bytes of `target` at `offset` with CSPRNG output (e.g. `crypto.randomFillSync`). */
export type RandomFill = (target: Buffer, offset: number, length: number) => void;

/**
 * A Cobblestone-256 input key, prepared once, and scratch space for the per-message derivation
 * (HKDF-Expand-SHA-512, L = 76, i.e. two HMACs: T(1) and T(2)).
 *
 * The HMACs run over node's one-shot `crypto.hash` (see `HmacKey` for why), with both inner inputs kept
 * built: the key pads and the info prefix are written once, each message writes only its salt and context,
 * and T(1) lands where T(2)'s input needs it, which is also where the AEAD key and base nonce are read
 * from. Every piece of it is cross-checked by the Wycheproof vectors.
 *
 * Hazard: the scratch holds key pads and derived secrets, so it is private memory (`allocUnsafeSlow`, never
 * Buffer's shared pool), wiped when replaced, and overwritten by the next message. Every method is
 * synchronous, so sharing one instance across callers is safe; the views it hands out are valid until the
 * next `derive`.
 */
export class CobblestoneKey {
  /** ipad ‖ prefix ‖ salt ‖ context ‖ 0x01. */
  #inner1: Buffer;
  /** ipad ‖ T(1) ‖ prefix ‖ salt ‖ context ‖ 0x02; T(1) = AEAD key ‖ base nonce ‖ commitment[0, 20). */
  #inner2: Buffer;
  /** opad ‖ inner digest: the outer input of either HMAC. */
  readonly #outer = Buffer.allocUnsafeSlow(BLOCK + DIGEST);
  #aeadKey: Buffer;
  #baseNonce: Buffer;
  readonly #commitment = Buffer.allocUnsafeSlow(COMMITMENT_LENGTH);
  /** The commitment a ciphertext carries, copied here so the comparison needs no fresh view (public bytes). */
  readonly #stored = Buffer.allocUnsafeSlow(COMMITMENT_LENGTH);
  /** Nonce of chunk 1 and later. */
  readonly #nonce = Buffer.allocUnsafeSlow(GCM_NONCE_LENGTH);
  /** The tag of the chunk being opened, copied here for the same reason as `#stored` (public bytes). */
  readonly #tag = Buffer.allocUnsafeSlow(GCM_TAG_LENGTH);
  /** The inner inputs' views by context length: the hot path hashes the same few lengths over and over. */
  readonly #views = new Map<number, readonly [Buffer, Buffer]>();

  constructor(key: Uint8Array) {
    if (key.byteLength !== GCM_KEY_LENGTH) {
      throw new CryptoError(
        'invalid_key',
        `Cobblestone-256 key must be ${GCM_KEY_LENGTH} bytes (got ${key.byteLength})`,
      );
    }
    writeHmacPad(key, OPAD, this.#outer, BLOCK);
    this.#inner1 = Buffer.allocUnsafeSlow(INFO_AT_1 + FIXED_INFO_LENGTH + INITIAL_CONTEXT_ROOM + 1);
    this.#inner2 = Buffer.allocUnsafeSlow(INFO_AT_2 + FIXED_INFO_LENGTH + INITIAL_CONTEXT_ROOM + 1);
    writeHmacPad(key, IPAD, this.#inner1, BLOCK);
    writeHmacPad(key, IPAD, this.#inner2, BLOCK);
    INFO_PREFIX.copy(this.#inner1, INFO_AT_1);
    INFO_PREFIX.copy(this.#inner2, INFO_AT_2);
    this.#aeadKey = this.#inner2.subarray(T1_AT, T1_AT + GCM_KEY_LENGTH);
    this.#baseNonce = this.#inner2.subarray(T1_AT + NONCE_AT, T1_AT + COMMITMENT_AT);
  }

  /**
   * Overwrites the key-derived pads and the last message key with zeros (best effort: V8 may have copied
   * nothing, but the process may still hold freed pages). The key is unusable afterwards: every derivation
   * fails its commitment, nothing opens. Called when a DEK leaves the cache or is destroyed.
   */
  destroy(): void {
    this.#outer.fill(0);
    this.#inner1.fill(0);
    this.#inner2.fill(0);
  }

  /**
   * Derives key ‖ base nonce ‖ commitment for (salt = `source[saltAt, saltAt + 24)`, context) into scratch
   * that the next call overwrites.
   */
  derive(source: Buffer, saltAt: number, context: Uint8Array): void {
    const contextLength = context.byteLength;
    let views = this.#views.get(contextLength);
    if (views === undefined) views = this.#viewsFor(contextLength);
    const inner1 = this.#inner1;
    const inner2 = this.#inner2;
    const salt1 = INFO_AT_1 + INFO_PREFIX.length;
    const salt2 = INFO_AT_2 + INFO_PREFIX.length;
    // A byte loop for the salt: cheaper than the view `copy` would build.
    for (let i = 0; i < SALT_LENGTH; i++) {
      const byte = source[saltAt + i] ?? 0;
      inner1[salt1 + i] = byte;
      inner2[salt2 + i] = byte;
    }
    inner1.set(context, salt1 + SALT_LENGTH);
    inner2.set(context, salt2 + SALT_LENGTH);
    inner1[salt1 + SALT_LENGTH + contextLength] = 1;
    inner2[salt2 + SALT_LENGTH + contextLength] = 2;

    // Digests as 'binary' (latin1) strings: far cheaper than a Buffer result, written back byte for byte.
    const outer = this.#outer;
    outer.write(hash('sha512', views[0], 'binary'), BLOCK, DIGEST, 'latin1');
    inner2.write(hash('sha512', outer, 'binary'), T1_AT, DIGEST, 'latin1');
    outer.write(hash('sha512', views[1], 'binary'), BLOCK, DIGEST, 'latin1');
    const commitment = this.#commitment;
    for (let i = 0; i < COMMITMENT_IN_T1; i++) commitment[i] = inner2[T1_AT + COMMITMENT_AT + i] ?? 0;
    commitment.write(hash('sha512', outer, 'binary'), COMMITMENT_IN_T1, OKM_LENGTH - DIGEST, 'latin1');
  }

  /** The AEAD key of the message last derived (a view of the scratch). */
  get aeadKey(): Buffer {
    return this.#aeadKey;
  }

  /** The commitment of the message last derived (a view of the scratch). */
  get commitment(): Buffer {
    return this.#commitment;
  }

  /**
   * Compares, in constant time, the commitment of the message last derived with the one stored at
   * `source[at, at + 32)` (the caller has checked that it is there).
   */
  commitmentMatches(source: Buffer, at: number): boolean {
    const stored = this.#stored;
    for (let i = 0; i < COMMITMENT_LENGTH; i++) stored[i] = source[at + i] ?? 0;
    return timingSafeEqual(this.#commitment, stored);
  }

  /** The GCM tag at `source[at, at + 16)`, copied into scratch that the next call overwrites. */
  chunkTag(source: Buffer, at: number): Buffer {
    const tag = this.#tag;
    for (let i = 0; i < GCM_TAG_LENGTH; i++) tag[i] = source[at + i] ?? 0;
    return tag;
  }

  /** The base nonce of the message last derived, copied out. */
  baseNonce(): Buffer {
    return Buffer.from(this.#baseNonce);
  }

  /**
   * Nonce of chunk `index`: the base nonce with the big-endian counter XORed into its last 8 bytes (for chunk
   * 0, the base nonce itself). A view of the scratch.
   */
  chunkNonce(index: number): Buffer {
    const base = this.#baseNonce;
    if (index === 0) return base;
    const nonce = this.#nonce;
    for (let i = 0; i < 4; i++) nonce[i] = base[i] ?? 0;
    // The counter is below 2^38: the high word from a division, the low one from the 32-bit truncation.
    const high = Math.floor(index / 2 ** 32);
    const low = index >>> 0;
    for (let i = 0; i < 4; i++) {
      const shift = 24 - 8 * i;
      nonce[4 + i] = (base[4 + i] ?? 0) ^ ((high >>> shift) & 0xff);
      nonce[8 + i] = (base[8 + i] ?? 0) ^ ((low >>> shift) & 0xff);
    }
    return nonce;
  }

  /** The inner inputs' views for a context of `contextLength` bytes, growing the scratch if it is short. */
  #viewsFor(contextLength: number): readonly [Buffer, Buffer] {
    const end1 = INFO_AT_1 + FIXED_INFO_LENGTH + contextLength + 1;
    const end2 = INFO_AT_2 + FIXED_INFO_LENGTH + contextLength + 1;
    // Both: each grows to at least double its size, so after a step one may fit a context the other does not.
    if (this.#inner1.length < end1 || this.#inner2.length < end2) {
      this.#inner1 = grow(this.#inner1, end1, INFO_AT_1 + INFO_PREFIX.length);
      this.#inner2 = grow(this.#inner2, end2, INFO_AT_2 + INFO_PREFIX.length);
      this.#aeadKey = this.#inner2.subarray(T1_AT, T1_AT + GCM_KEY_LENGTH);
      this.#baseNonce = this.#inner2.subarray(T1_AT + NONCE_AT, T1_AT + COMMITMENT_AT);
      this.#views.clear();
    }
    if (this.#views.size >= 8) this.#views.clear();
    const views = [this.#inner1.subarray(0, end1), this.#inner2.subarray(0, end2)] as const;
    this.#views.set(contextLength, views);
    return views;
  }
}

/** A larger copy of `buffer[0, keep)` in private memory; the old one is wiped (it holds the key pad). */
function grow(buffer: Buffer, size: number, keep: number): Buffer {
  const grown = Buffer.allocUnsafeSlow(Math.max(size, buffer.length * 2));
  buffer.copy(grown, 0, 0, keep);
  buffer.fill(0);
  return grown;
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
  if (!key.commitmentMatches(sealed, offset + SALT_LENGTH)) {
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
      key.chunkTag(sealed, tagAt),
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
      key.chunkTag(sealed, tagAt),
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
