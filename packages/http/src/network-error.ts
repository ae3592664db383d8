/**
 * Classifies whatever an outgoing request failed with into a small closed set, so the delivery worker can
 * decide retry vs dead-letter from a value instead of parsing messages. The original code (undici's
 * `UND_ERR_*`, a system errno, or the TLS/OpenSSL code such as `CERT_HAS_EXPIRED`) is kept for logs and
 * DLQ reasons.
 */

export const NETWORK_ERROR_KINDS = [
  'timeout',
  'connect_refused',
  'dns',
  'connection_reset',
  'tls_error',
  'response_too_large',
  'protocol_error',
  'aborted',
  'invalid_request',
  'unknown',
] as const;
export type NetworkErrorKind = (typeof NETWORK_ERROR_KINDS)[number];

export interface NetworkError {
  readonly kind: NetworkErrorKind;
  /** The most specific code found on the error or its causes, e.g. `CERT_HAS_EXPIRED`, `ECONNREFUSED`. */
  readonly code: string;
  /** Where a timeout struck: establishing the connection (TCP + TLS), waiting for headers, or reading the body. */
  readonly phase?: 'connect' | 'headers' | 'body';
  readonly message: string;
  /**
   * Whether the same request can succeed later without anyone changing configuration. TLS failures are
   * not retryable: a bad or expired vendor certificate or a protocol mismatch needs a human, and the event
   * goes to the DLQ with the code as reason (replayable once fixed).
   */
  readonly retryable: boolean;
}

/** OpenSSL certificate verification results as Node reports them (`err.code`). */
const CERTIFICATE_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'EE_KEY_TOO_SMALL',
  'CA_KEY_TOO_SMALL',
  'CA_MD_TOO_WEAK',
]);

function isTlsCode(code: string): boolean {
  return (
    CERTIFICATE_CODES.has(code) ||
    code.startsWith('ERR_TLS_') ||
    code.startsWith('ERR_SSL_') ||
    code.startsWith('ERR_OSSL_')
  );
}

type Classification = Omit<NetworkError, 'message' | 'code'>;

function classifyCode(code: string): Classification | undefined {
  if (isTlsCode(code)) {
    return code === 'ERR_TLS_HANDSHAKE_TIMEOUT'
      ? { kind: 'timeout', phase: 'connect', retryable: true }
      : { kind: 'tls_error', retryable: false };
  }
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return { kind: 'timeout', phase: 'connect', retryable: true };
    case 'UND_ERR_HEADERS_TIMEOUT':
      return { kind: 'timeout', phase: 'headers', retryable: true };
    case 'UND_ERR_BODY_TIMEOUT':
      return { kind: 'timeout', phase: 'body', retryable: true };
    case 'ECONNREFUSED':
      return { kind: 'connect_refused', retryable: true };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NODATA':
    case 'EAI_NONAME':
      return { kind: 'dns', retryable: true };
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ECONNABORTED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return { kind: 'connection_reset', retryable: true };
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE':
      return { kind: 'response_too_large', retryable: false };
    case 'UND_ERR_HEADERS_OVERFLOW':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_VERSION':
    case 'HPE_INVALID_STATUS':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return { kind: 'protocol_error', retryable: true };
    case 'UND_ERR_ABORTED':
    case 'ABORT_ERR':
      return { kind: 'aborted', retryable: true };
    case 'UND_ERR_INVALID_ARG':
    case 'UND_ERR_NOT_SUPPORTED':
    case 'ERR_INVALID_URL':
    case 'ERR_INSECURE_URL':
    case 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH':
    // A private or reserved destination the deployment does not allow (destination-guard.ts).
    case 'ERR_DESTINATION_NOT_ALLOWED':
      return { kind: 'invalid_request', retryable: false };
    default:
      return code.startsWith('HPE_') ? { kind: 'protocol_error', retryable: true } : undefined;
  }
}

/** The error and its causes, outermost first (undici and AggregateError from happy eyeballs nest them). */
function errorChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  const pending: unknown[] = [error];
  while (pending.length > 0 && chain.length < 16) {
    const current = pending.shift();
    if (current === null || current === undefined || chain.includes(current)) continue;
    chain.push(current);
    if (current instanceof AggregateError) pending.push(...current.errors);
    if (current instanceof Error && current.cause !== undefined) pending.push(current.cause);
  }
  return chain;
}

function codeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

function messageOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > 300 ? `${message.slice(0, 300)}…` : message;
}

/**
 * A TLS code anywhere in the chain wins (a TLS failure often surfaces as a generic socket error with the
 * TLS error as its cause); otherwise the outermost recognised code.
 */
export function classifyNetworkError(error: unknown): NetworkError {
  const chain = errorChain(error);
  let best: { entry: unknown; code: string; classification: Classification } | undefined;
  for (const entry of chain) {
    const code =
      codeOf(entry) ?? (entry instanceof Error && entry.name === 'AbortError' ? 'ABORT_ERR' : undefined);
    if (code === undefined) continue;
    const classification = classifyCode(code);
    if (classification === undefined) continue;
    if (classification.kind === 'tls_error') return { ...classification, code, message: messageOf(entry) };
    best ??= { entry, code, classification };
  }
  if (best !== undefined) return { ...best.classification, code: best.code, message: messageOf(best.entry) };
  return { kind: 'unknown', code: codeOf(error) ?? 'UNKNOWN', message: messageOf(error), retryable: true };
}
