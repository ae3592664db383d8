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
  /**
   * Deadline for the whole exchange: connect, sending the request, waiting for the headers and reading the
   * full body. Undici's own timeouts are idle timeouts that every received byte resets, so without this a
   * vendor trickling its answer a byte every few seconds (up to the response size cap) holds the request,
   * and the worker's partition, as long as it likes. When it passes, the request and its body are destroyed
   * and the result is the retryable `timeout` an idle timeout gives (`UND_ERR_HEADERS_TIMEOUT`, phase
   * `headers`, before the response headers arrived; `UND_ERR_BODY_TIMEOUT`, phase `body`, after), with a
   * message naming the deadline. Positive milliseconds, at most 2^31 - 1.
   */
  readonly timeoutMs?: number;
  /** Tighter per-request idle timeouts than the dispatcher's. */
  readonly headersTimeoutMs?: number;
  readonly bodyTimeoutMs?: number;
}

/** setTimeout's largest delay; longer ones fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

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

  if (
    req.timeoutMs !== undefined &&
    !(Number.isFinite(req.timeoutMs) && req.timeoutMs > 0 && req.timeoutMs <= MAX_TIMER_MS)
  ) {
    return failure({
      kind: 'invalid_request',
      code: 'ERR_INVALID_ARG_VALUE',
      message: 'timeoutMs must be a positive number of milliseconds',
      retryable: false,
    });
  }

  const deadline = startDeadline(req.timeoutMs, req.signal);
  let phase: 'headers' | 'body' = 'headers';
  try {
    const signal = deadline?.signal ?? req.signal;
    let response: Dispatcher.ResponseData;
    try {
      response = await undiciRequest(url, {
        dispatcher,
        method: req.method ?? 'POST',
        ...(req.headers === undefined ? {} : { headers: { ...req.headers } }),
        ...(req.body === undefined ? {} : { body: req.body }),
        ...(signal === undefined ? {} : { signal }),
        ...(req.headersTimeoutMs === undefined ? {} : { headersTimeout: req.headersTimeoutMs }),
        ...(req.bodyTimeoutMs === undefined ? {} : { bodyTimeout: req.bodyTimeoutMs }),
      });
    } catch (cause) {
      return failure(deadline?.passed() ? deadline.error(phase) : classifyNetworkError(cause));
    }

    phase = 'body';
    let body: string;
    try {
      body = await response.body.text();
    } catch (cause) {
      response.body.destroy();
      return failure(deadline?.passed() ? deadline.error(phase) : classifyNetworkError(cause));
    }
    return {
      type: 'response',
      ok: response.statusCode >= 200 && response.statusCode < 300,
      status: response.statusCode,
      headers: flattenHeaders(response.headers),
      body,
    };
  } finally {
    deadline?.dispose();
  }
}

interface Deadline {
  /** Aborts when the caller's signal does or when the deadline passes, whichever comes first. */
  readonly signal: AbortSignal;
  /** True once the deadline (not the caller) aborted the request. */
  passed(): boolean;
  error(phase: 'headers' | 'body'): NetworkError;
  /** Clears the timer and unhooks from the caller's signal; call when the exchange is over. */
  dispose(): void;
}

/**
 * One AbortController per request, aborted by its own timer or by the caller's signal. Linked by hand rather
 * than with `AbortSignal.any` + `AbortSignal.timeout`: the timer is cleared as soon as the exchange ends
 * (instead of living on for `timeoutMs`), and nothing stays attached to the caller's long-lived shutdown
 * signal after the request is done.
 */
function startDeadline(
  timeoutMs: number | undefined,
  callerSignal: AbortSignal | undefined,
): Deadline | undefined {
  if (timeoutMs === undefined) return undefined;
  const controller = new AbortController();
  let passed = false;
  const onCallerAbort = (): void => controller.abort(callerSignal?.reason);
  if (callerSignal?.aborted) onCallerAbort();
  else callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
  const timer = setTimeout(() => {
    if (controller.signal.aborted) return; // the caller was first: that stays an `aborted`
    passed = true;
    controller.abort(new Error(`no complete response within ${timeoutMs} ms`));
  }, timeoutMs);
  timer.unref();
  return {
    signal: controller.signal,
    passed: () => passed,
    error: (phase) => ({
      kind: 'timeout',
      code: phase === 'headers' ? 'UND_ERR_HEADERS_TIMEOUT' : 'UND_ERR_BODY_TIMEOUT',
      phase,
      message: `no complete response within the ${timeoutMs} ms deadline`,
      retryable: true,
    }),
    dispose: () => {
      clearTimeout(timer);
      callerSignal?.removeEventListener('abort', onCallerAbort);
    },
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
