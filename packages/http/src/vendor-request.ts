import type { Dispatcher } from 'undici';
import { request as undiciRequest } from 'undici';
import { classifyNetworkError, type NetworkError } from './network-error';

/**
 * One outgoing request, answered as a value: either the vendor's response (whatever its status) or a
 * classified network error. It never throws for network or TLS failures, so a delivery attempt maps every
 * outcome to retry / dead-letter without try/catch guesswork. Redirects are not followed (a vendor API
 * that redirects a POST is answered with its 3xx as a response).
 */

export type VendorRequestMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface VendorRequest {
  /** Must be https: plain-text URLs are refused before any connection is made. */
  readonly url: string | URL;
  readonly method?: VendorRequestMethod;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
  /** Abort (graceful shutdown); the result is then a network error of kind `aborted`. */
  readonly signal?: AbortSignal;
  /** Tighter per-request timeouts than the dispatcher's. */
  readonly headersTimeoutMs?: number;
  readonly bodyTimeoutMs?: number;
}

export interface VendorResponse {
  readonly type: 'response';
  /** True for 2xx. */
  readonly ok: boolean;
  readonly status: number;
  /** Lower-case names; repeated headers joined with `, `. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface VendorNetworkFailure {
  readonly type: 'network_error';
  readonly ok: false;
  readonly error: NetworkError;
}

export type VendorRequestResult = VendorResponse | VendorNetworkFailure;

function failure(error: NetworkError): VendorNetworkFailure {
  return { type: 'network_error', ok: false, error };
}

export async function request(dispatcher: Dispatcher, req: VendorRequest): Promise<VendorRequestResult> {
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    return failure({
      kind: 'invalid_request',
      code: 'ERR_INVALID_URL',
      message: 'invalid URL',
      retryable: false,
    });
  }
  if (url.protocol !== 'https:') {
    return failure({
      kind: 'invalid_request',
      code: 'ERR_INSECURE_URL',
      message: 'vendor requests must use https',
      retryable: false,
    });
  }

  let response: Dispatcher.ResponseData;
  try {
    response = await undiciRequest(url, {
      dispatcher,
      method: req.method ?? 'POST',
      ...(req.headers === undefined ? {} : { headers: { ...req.headers } }),
      ...(req.body === undefined ? {} : { body: req.body }),
      ...(req.signal === undefined ? {} : { signal: req.signal }),
      ...(req.headersTimeoutMs === undefined ? {} : { headersTimeout: req.headersTimeoutMs }),
      ...(req.bodyTimeoutMs === undefined ? {} : { bodyTimeout: req.bodyTimeoutMs }),
    });
  } catch (cause) {
    return failure(classifyNetworkError(cause));
  }

  let body: string;
  try {
    body = await response.body.text();
  } catch (cause) {
    response.body.destroy();
    return failure(classifyNetworkError(cause));
  }
  return {
    type: 'response',
    ok: response.statusCode >= 200 && response.statusCode < 300,
    status: response.statusCode,
    headers: flattenHeaders(response.headers),
    body,
  };
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  // fromEntries defines own properties, so a hostile `__proto__` header name cannot touch the prototype.
  return Object.fromEntries(
    Object.entries(headers).flatMap(([name, value]) =>
      value === undefined ? [] : [[name.toLowerCase(), Array.isArray(value) ? value.join(', ') : value]],
    ),
  );
}

/**
 * Milliseconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), or undefined when
 * absent or unparsable. Never negative.
 */
export function retryAfterMs(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // HTTP dates start with the day name; this keeps Date.parse from reading "-5" as the year -5.
  if (!/^[A-Za-z]{3}/.test(trimmed)) return undefined;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}
