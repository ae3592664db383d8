/**
 * The retry schedule: exponential backoff with full jitter, bounded by a total span.
 *
 * Attempt n (1-based) that ends in `retry` is followed by attempt n+1 after a delay drawn uniformly from
 * [0, cap(n)] ("full jitter": retries of many events spread out instead of arriving in waves), where
 *
 *   cap(n) = base × factor^(n-1), clipped so that cap(1) + … + cap(n) ≤ maxSpan.
 *
 * A vendor's `Retry-After` (or throttle hint) is a floor: the delay is never shorter. After `maxAttempts`
 * attempts the event is dead-lettered (`retries_exhausted`). Defaults (RETRY_MAX_ATTEMPTS=5,
 * RETRY_BACKOFF_BASE=60 s, factor 11, span 24 h): caps 1 min, 11 min, 2 h 1 min, 21 h 47 min (clipped),
 * cumulative at most 24 h; with full jitter the expected wait is half of each cap.
 */
export interface BackoffPolicy {
  /** Attempts in total, the first one included (RETRY_MAX_ATTEMPTS). */
  readonly maxAttempts: number;
  /** Cap of the first delay (RETRY_BACKOFF_BASE). */
  readonly baseMs: number;
  readonly factor: number;
  /** Sum of all caps at most this. */
  readonly maxSpanMs: number;
  /** A Retry-After longer than this is clipped to it (a misbehaving vendor must not park events for weeks). */
  readonly maxRetryAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({
  maxAttempts: 5,
  baseMs: 60_000,
  factor: 11,
  maxSpanMs: 24 * 60 * 60 * 1000,
  maxRetryAfterMs: 24 * 60 * 60 * 1000,
});

/** The caps of every delay of the schedule, in order (maxAttempts − 1 of them). */
export function retryCaps(policy: BackoffPolicy): number[] {
  const caps: number[] = [];
  let spent = 0;
  for (let n = 1; n < policy.maxAttempts; n += 1) {
    const cap = Math.min(policy.baseMs * policy.factor ** (n - 1), Math.max(0, policy.maxSpanMs - spent));
    caps.push(cap);
    spent += cap;
  }
  return caps;
}

export type RetryPlan =
  | { readonly retry: true; readonly delayMs: number; readonly nextAttempt: number }
  | { readonly retry: false };

/**
 * What follows a failed attempt number `attempt`: the delay before the next one, or exhaustion.
 * `random` returns [0, 1) (injectable for tests).
 */
export function planRetry(
  policy: BackoffPolicy,
  attempt: number,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): RetryPlan {
  if (attempt >= policy.maxAttempts) return { retry: false };
  const caps = retryCaps(policy);
  const cap = caps[attempt - 1] ?? caps[caps.length - 1] ?? policy.baseMs;
  const jittered = Math.floor(random() * cap);
  const floor = retryAfterMs === undefined ? 0 : Math.min(Math.max(0, retryAfterMs), policy.maxRetryAfterMs);
  return { retry: true, delayMs: Math.max(jittered, floor), nextAttempt: attempt + 1 };
}
