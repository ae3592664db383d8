import { createHash, createHmac } from 'node:crypto';
import { PiiError } from './errors';

/** Lowercase hex SHA-256 of the UTF-8 bytes of `value`: the form every vendor expects. */
export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/** A one-way digest of a normalised value, already bound to its algorithm (and key, for HMAC). */
export type Digest = (normalized: string) => string;

export type HashAlgorithm = 'sha256' | 'hmac-sha256';

/** Shortest HMAC key accepted: 32 bytes, the output size of SHA-256 (RFC 2104 §3 recommends ≥ L). */
export const MIN_HMAC_KEY_BYTES = 32;

/**
 * Builds the digest for an algorithm. For `hmac-sha256` the key is copied, so a caller that later zeroes or
 * reuses its buffer does not change what the digest computes (and cannot read it back from here).
 */
export function createDigest(algorithm: HashAlgorithm, hmacKey?: Uint8Array): Digest {
  if (algorithm === 'sha256') return sha256Hex;
  if (hmacKey === undefined) {
    throw new PiiError(
      'pii.hmac_key_required',
      'hash_algorithm "hmac-sha256" needs an HMAC key: pass { hmacKey } (a Buffer of at least 32 random bytes)',
    );
  }
  if (!(hmacKey instanceof Uint8Array) || hmacKey.byteLength < MIN_HMAC_KEY_BYTES) {
    throw new PiiError(
      'pii.hmac_key_invalid',
      `the HMAC key must be a Buffer of at least ${MIN_HMAC_KEY_BYTES} bytes`,
    );
  }
  const key = Buffer.from(hmacKey);
  return (normalized) => createHmac('sha256', key).update(normalized, 'utf8').digest('hex');
}

const SHA256_HEX = /^[0-9A-Fa-f]{64}$/;
const SHA256_OR_MD5_HEX = /^(?:[0-9A-Fa-f]{64}|[0-9A-Fa-f]{32})$/;

/** Which already-hashed inputs pass through without being hashed again. */
export type PassthroughHashed = 'sha256' | 'sha256-or-md5' | 'none';

export function looksHashed(trimmed: string, mode: PassthroughHashed): boolean {
  if (mode === 'none') return false;
  return (mode === 'sha256' ? SHA256_HEX : SHA256_OR_MD5_HEX).test(trimmed);
}

/**
 * SHA-256 and MD5 of the empty string. An upstream system that hashed an empty field produces these; they
 * carry no identity and must never be sent (VENDORS.md §0 rule 3).
 */
const EMPTY_STRING_DIGESTS: ReadonlySet<string> = new Set([
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  'd41d8cd98f00b204e9800998ecf8427e',
]);

export function isEmptyStringDigest(lowercaseHex: string): boolean {
  return EMPTY_STRING_DIGESTS.has(lowercaseHex);
}
