import type { NetworkError, VendorResponse } from '@signal/http';
import { retryAfterMs } from '@signal/http';
import { deadLetter, delivered, type FinalVerdict, retry, type Verdict } from './outcome';

/**
 * The classification every vendor shares, from the HTTP status alone. Adapters first look at what their
 * vendor says in the body (Meta Graph codes, TikTok `code`, …) and fall back to this.
 *
 * | status            | verdict                                  |
 * | ----------------- | ---------------------------------------- |
 * | 2xx               | delivered                                |
 * | 429               | retry `rate_limited`, after `Retry-After` |
 * | 408, 425, 5xx     | retry `vendor_unavailable` (`Retry-After` when sent) |
 * | 401, 403          | dead letter `auth_failed`                |
 * | 3xx               | dead letter `unexpected_redirect`        |
 * | other 4xx, 1xx    | dead letter `vendor_rejected`            |
 */
export function classifyStatus(response: VendorResponse, now: number): FinalVerdict {
  const { status } = response;
  if (status >= 200 && status < 300) return delivered;
  const after = retryAfter(response, now);
  if (status === 429) return retry('rate_limited', after);
  if (status === 408 || status === 425 || status >= 500) return retry('vendor_unavailable', after);
  if (status === 401 || status === 403) return deadLetter('auth_failed');
  if (status >= 300 && status < 400) return deadLetter('unexpected_redirect');
  return deadLetter('vendor_rejected');
}

/** `Retry-After` in milliseconds (delta-seconds or an HTTP date), when the response carries one. */
export function retryAfter(response: VendorResponse, now: number): number | undefined {
  return retryAfterMs(response.headers['retry-after'], now);
}

/**
 * A network failure: retryable ones (timeouts, refused or reset connections, DNS, shutdown) come back;
 * TLS failures and impossible requests need a human and go to the DLQ, replayable once fixed.
 */
export function classifyNetworkError(error: NetworkError): FinalVerdict {
  if (error.retryable) return retry(error.kind === 'timeout' ? 'timeout' : 'network_error');
  switch (error.kind) {
    case 'tls_error':
      return deadLetter('tls_error');
    case 'response_too_large':
      return deadLetter('response_too_large');
    default:
      return deadLetter('invalid_request');
  }
}

/** Parses a JSON body, or undefined when it is not JSON (HTML error pages, empty 204s). */
export function parseJson(body: string): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The same verdict for every event of a batch. */
export function shared(verdict: Verdict, count: number): Verdict[] {
  return Array.from({ length: count }, () => verdict);
}
