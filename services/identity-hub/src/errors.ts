/**
 * The Identity Hub's closed error model. Expected outcomes (a refused token, a refused destination) are
 * values, not errors; these are the failures a caller has to act on.
 */
export type IdentityHubErrorCode =
  /** The single-use store (cache or SQL) did not answer: a token cannot be accepted unchecked. */
  | 'single_use_unavailable'
  /** The identity graph's database did not answer or refused a write. */
  | 'graph_unavailable'
  /** An erasure or lookup named no usable subject. */
  | 'invalid_subject'
  /** A setting is missing or out of range; the message names the variable. */
  | 'invalid_config'
  /** Stored identity data does not open or parse: corruption, tampering or a missing key. */
  | 'corrupt_record';

const RETRYABLE: Readonly<Record<IdentityHubErrorCode, boolean>> = {
  single_use_unavailable: true,
  graph_unavailable: true,
  invalid_subject: false,
  invalid_config: false,
  corrupt_record: false,
};

export class IdentityHubError extends Error {
  override readonly name = 'IdentityHubError';
  readonly code: IdentityHubErrorCode;
  readonly retryable: boolean;

  constructor(code: IdentityHubErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.retryable = RETRYABLE[code];
  }
}

export function isIdentityHubError(value: unknown): value is IdentityHubError {
  return value instanceof IdentityHubError;
}
