/**
 * The HTTP layer's closed error model. Every error a request handler can answer with has a stable string
 * code; `httpStatusFor` is the one place that maps a code to a status, and its switch is exhaustive so a new
 * code cannot ship without a status. Error bodies are always `{"error":{"code","message"}}` (contract).
 */
export const HTTP_ERROR_CODES = [
  'bad_request',
  'invalid_json',
  'invalid_encoding',
  'nesting_too_deep',
  'forbidden_key',
  'validation_failed',
  'unauthorized',
  'forbidden',
  'not_found',
  'method_not_allowed',
  'conflict',
  'payload_too_large',
  'unsupported_media_type',
  'rate_limited',
  'internal',
  'unavailable',
] as const;

export type HttpErrorCode = (typeof HTTP_ERROR_CODES)[number];

export function httpStatusFor(code: HttpErrorCode): number {
  switch (code) {
    case 'bad_request':
    case 'invalid_json':
    case 'invalid_encoding':
    case 'nesting_too_deep':
    case 'forbidden_key':
    case 'validation_failed':
      return 400;
    case 'unauthorized':
      return 401;
    case 'forbidden':
      return 403;
    case 'not_found':
      return 404;
    case 'method_not_allowed':
      return 405;
    case 'conflict':
      return 409;
    case 'payload_too_large':
      return 413;
    case 'unsupported_media_type':
      return 415;
    case 'rate_limited':
      return 429;
    case 'internal':
      return 500;
    case 'unavailable':
      return 503;
    default:
      return assertNever(code);
  }
}

/** Retrying the same request can succeed later only for these (the server or a limit was the problem). */
export function isRetryableHttpError(code: HttpErrorCode): boolean {
  return code === 'rate_limited' || code === 'unavailable' || code === 'internal';
}

function assertNever(value: never): never {
  throw new Error(`unhandled HTTP error code: ${String(value)}`);
}

export interface HttpErrorOptions {
  /** Extra response headers, e.g. `Retry-After` for 429 or `Allow` for 405. */
  headers?: Readonly<Record<string, string>>;
  cause?: unknown;
}

/**
 * An error meant for the client. `message` is sent to the caller as is, so it must never carry secrets,
 * PII or internal details; put those in `cause`, which is only logged.
 */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly code: HttpErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: HttpErrorCode, message: string, options: HttpErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = httpStatusFor(code);
    this.retryable = isRetryableHttpError(code);
    this.headers = options.headers ?? {};
  }
}

export function isHttpError(value: unknown): value is HttpError {
  return value instanceof HttpError;
}
