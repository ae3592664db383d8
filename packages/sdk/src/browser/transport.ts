/**
 * Moving batches to the gateway. `fetch` with `keepalive` is the normal path (it survives the page going
 * away); `sendBeacon` is the last word on `pagehide`. Both share the browser's 64 KiB budget for bodies
 * in flight after unload, so batches are cut well below it and sent one at a time.
 */

/** Bytes of one keepalive/beacon body; the rest of the 64 KiB budget is headroom. */
export const BODY_BUDGET = 60_000;
/** The gateway's MAX_BATCH_SIZE default. */
export const MAX_BATCH = 500;
const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_CAP_MS = 30_000;
/** A Retry-After further out than this is treated as this (the tab will rarely live that long anyway). */
const RETRY_AFTER_CAP_MS = 3_600_000;

export type Outcome =
  | { kind: 'sent' }
  /** Network failure, 408, 429 or 5xx: keep the batch and try again later. */
  | { kind: 'retry'; afterMs: number | undefined; network: boolean }
  /** Any other status: the gateway will never accept this batch as it is. */
  | { kind: 'rejected'; status: number };

/**
 * The `/v1/batch` body. The pipeline key rides in the body as well as the header because a beacon cannot set
 * headers. `sentAt` lets the server correct a skewed client clock; `dropped` reports events this browser
 * discarded because its queue was full.
 */
export function batchBody(pipelineKey: string, events: readonly string[], dropped: number): string {
  const extra = dropped > 0 ? `,"dropped":${dropped}` : '';
  return `{"pipelineKey":${JSON.stringify(pipelineKey)},"sentAt":"${new Date().toISOString()}"${extra},"batch":[${events.join(',')}]}`;
}

/** Retry-After as delay-seconds or an HTTP date, in ms from `now`; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1_000 : Date.parse(header) - now;
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), RETRY_AFTER_CAP_MS) : undefined;
}

/** Exponential backoff with jitter: attempt n waits between half and all of min(cap, base·2^(n-1)). */
export function backoffMs(attempt: number, random: number): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(attempt - 1, 0));
  return Math.round(ceiling / 2 + (random * ceiling) / 2);
}

export async function postBatch(
  url: string,
  pipelineKey: string,
  body: string,
  keepalive: boolean,
): Promise<Outcome> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      body,
      keepalive,
      credentials: 'include',
      headers: { 'Content-Type': 'application/json', 'X-Pipeline-Key': pipelineKey },
    });
  } catch {
    // Offline, DNS, TLS, CORS refusal: all look the same from here.
    return { kind: 'retry', afterMs: undefined, network: true };
  }
  const status = response.status;
  if (status >= 200 && status < 300) return { kind: 'sent' };
  if (status === 408 || status === 429 || status >= 500) {
    return {
      kind: 'retry',
      afterMs: retryAfterMs(response.headers.get('Retry-After'), Date.now()),
      network: false,
    };
  }
  return { kind: 'rejected', status };
}

/**
 * Hands a body to the browser to deliver after the page is gone. `text/plain` is a CORS-safelisted type, so
 * no preflight is needed (there is no time for one at unload); the gateway parses the body as JSON anyway.
 * True means only that the browser queued it, not that the gateway took it (a 503 or a reset is never seen),
 * so it is no acknowledgement: the caller keeps the events until a fetch is answered 2xx.
 */
export function beacon(url: string, body: string): boolean {
  if (typeof navigator.sendBeacon !== 'function') return false;
  try {
    return navigator.sendBeacon(url, new Blob([body], { type: 'text/plain' }));
  } catch {
    return false;
  }
}
