/**
 * The closed set of crypto failures. Each code names one cause so callers, audit entries and metrics can tell
 * tampering (`commitment_mismatch`, `authentication_failed`) from configuration problems (`unknown_key_id`,
 * `invalid_key`) and from damaged storage (`malformed`, `unknown_version`).
 */
export type CryptoErrorCode =
  /** The ciphertext's version byte (or text prefix) names a format this build does not know. */
  | 'unknown_version'
  /** The ciphertext names a key id that is neither the current nor the previous key. */
  | 'unknown_key_id'
  /** Bad text form, too short, truncated chunk, missing final chunk or trailing data. */
  | 'malformed'
  /** The key commitment does not match: wrong key, or the context (purpose, table, row...) differs. */
  | 'commitment_mismatch'
  /** An AES-GCM tag did not verify: the chunk was modified, reordered or truncated. */
  | 'authentication_failed'
  /** A key of the wrong length, a placeholder key, or a key-provider answer of the wrong shape. */
  | 'invalid_key'
  /** The encryption context is missing its purpose, has an empty, oversized or ill-formed field. */
  | 'invalid_context'
  /** The plaintext (or the plaintext a ciphertext would decrypt to) is above the configured cap. */
  | 'too_large'
  /** The start-up known-answer tests failed: this process must not handle keys. */
  | 'self_test_failed'
  /** Envelope mode: the key provider could not supply the DEK now (KMS down, slow or refusing); may recover. */
  | 'key_unavailable'
  /** Envelope mode: the DEK was destroyed (crypto-shredding); what it sealed is gone for good. */
  | 'key_destroyed';

/**
 * The one error type of this package. Messages carry lengths and codes only: never key bytes, plaintext,
 * ciphertext or context values, so an error can be logged as is.
 */
export class CryptoError extends Error {
  readonly code: CryptoErrorCode;
  /** Crypto failures never get better by retrying the same input, except a KMS that was unavailable. */
  readonly retryable: boolean;

  constructor(code: CryptoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CryptoError';
    this.code = code;
    this.retryable = code === 'key_unavailable';
  }
}
