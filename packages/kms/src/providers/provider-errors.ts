import { classifyNetworkError } from '@signal/http';
import { KmsError, type KmsProviderName } from '../provider';

/**
 * A provider's own message, safe to put in a KmsError: runs of 16 or more base64/hex characters (which could
 * be wrapped key bytes or a token echoed back) are elided, and the text is cut at 160 characters.
 */
export function safeDetail(text: unknown): string {
  const raw = typeof text === 'string' ? text : '';
  const cleaned = raw
    .replace(/[A-Za-z0-9+/=_.-]{16,}/g, '[…]')
    .replace(/\s+/g, ' ')
    .trim();
  return cleaned.length > 160 ? `${cleaned.slice(0, 159)}…` : cleaned;
}

/**
 * A call that failed before the provider answered. An aborted signal always wins (the caller's deadline
 * passed, whatever the transport says); everything else (refused, reset, DNS, TLS verification) is
 * `kms_unavailable`, with the transport's code so an operator can tell a dead endpoint from an untrusted
 * certificate.
 */
export function transportFailure(
  provider: KmsProviderName,
  operation: string,
  error: unknown,
  signal: AbortSignal,
  /** false when the error object carries the request (and so the key being wrapped), e.g. Azure's RestError. */
  keepCause = true,
): KmsError {
  if (error instanceof KmsError) return error;
  const cause = keepCause ? { cause: error } : {};
  if (signal.aborted) {
    return new KmsError(provider, 'kms_timeout', `${operation} did not finish before the deadline`, cause);
  }
  const network = classifyNetworkError(error);
  const hint =
    network.kind === 'tls_error' ? ' (TLS verification failed: check the CA the endpoint uses)' : '';
  return new KmsError(
    provider,
    'kms_unavailable',
    `${operation} failed: ${network.kind} ${network.code}${hint}`,
    cause,
  );
}

/** Copies provider output into a buffer the caller owns and zeroes the provider's copy (best effort). */
export function takeKey(provider: KmsProviderName, bytes: Uint8Array | undefined): Buffer {
  if (bytes === undefined || bytes.length !== 32) {
    throw new KmsError(provider, 'kms_bad_response', 'unwrap returned no 32-byte key');
  }
  const owned = Buffer.from(bytes);
  bytes.fill(0);
  return owned;
}
