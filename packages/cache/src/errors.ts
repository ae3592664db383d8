export type CacheErrorCode =
  /** The cache cannot be reached or the connection broke: retry later, or fail closed. */
  | 'unavailable'
  /** The command got no answer within the command timeout (its effect is unknown). */
  | 'timeout'
  /** The cache is full of entries it may not evict (Redis OOM; the in-process claims budget of unexpired ids). */
  | 'capacity'
  /** TLS could not be established or the server's certificate was not trusted. */
  | 'tls_failed'
  /** The cache refused the command (e.g. incrementing a key that holds text). */
  | 'command_failed'
  /** A key, TTL or window is invalid (empty key, TTL not a positive integer). */
  | 'invalid_argument'
  /** The adapter options are invalid (bad URL, unreadable CA file). */
  | 'invalid_config'
  /** The cache was used after close(). */
  | 'closed';

const RETRYABLE: Record<CacheErrorCode, boolean> = {
  unavailable: true,
  timeout: true,
  capacity: true,
  tls_failed: false,
  command_failed: false,
  invalid_argument: false,
  invalid_config: false,
  closed: false,
};

/** Messages name the operation and a reason code, never keys' values, URLs or passwords. */
export class CacheError extends Error {
  override readonly name = 'CacheError';
  readonly code: CacheErrorCode;
  readonly retryable: boolean;

  constructor(code: CacheErrorCode, message: string) {
    super(message);
    this.code = code;
    this.retryable = RETRYABLE[code];
  }
}

export function isCacheError(err: unknown): err is CacheError {
  return err instanceof CacheError;
}
