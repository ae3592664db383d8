import { checkKey, checkTtl } from './arguments';
import { CacheError } from './errors';
import type { Cache } from './port';

export interface RateLimiterOptions {
  /** Requests allowed per window (e.g. `RATE_LIMIT_RPS` with a 1 000 ms window). */
  readonly limit: number;
  readonly windowMs: number;
  /** Distinguishes limiters sharing one cache (`gateway`, `delivery:meta`). */
  readonly name: string;
}

export interface RateLimitDecision {
  readonly allowed: boolean;
  /** 0 when allowed; otherwise milliseconds until the window resets (`Retry-After`, rounded up to seconds). */
  readonly retryAfterMs: number;
  /** Requests left in the current window after this one. */
  readonly remaining: number;
  readonly limit: number;
}

/**
 * Fixed-window rate limiter over `Cache.incrementWindow`: one atomic INCR (+ PEXPIRE on the first) per
 * check, shared by every instance using the same cache. The window starts at a subject's first request,
 * so instances need no clock agreement. A burst of up to 2 × limit can straddle two adjacent windows;
 * denied requests count too, so a client that keeps hammering stays limited until its window ends.
 * Cache failures reject with `CacheError`: the caller chooses to fail open or closed.
 */
export class RateLimiter {
  readonly #cache: Pick<Cache, 'incrementWindow'>;
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #prefix: string;

  constructor(cache: Pick<Cache, 'incrementWindow'>, options: RateLimiterOptions) {
    if (!Number.isSafeInteger(options.limit) || options.limit < 1) {
      throw new CacheError('invalid_config', 'rate limit must be a positive integer');
    }
    checkTtl('windowMs', options.windowMs);
    checkKey(options.name);
    this.#cache = cache;
    this.#limit = options.limit;
    this.#windowMs = options.windowMs;
    this.#prefix = `ratelimit:${options.name}:`;
  }

  /** Counts one request by `subject` (pipeline key id, integration id, client address) and decides. */
  async check(subject: string): Promise<RateLimitDecision> {
    checkKey(subject);
    const { count, resetInMs } = await this.#cache.incrementWindow(this.#prefix + subject, this.#windowMs);
    const allowed = count <= this.#limit;
    return {
      allowed,
      retryAfterMs: allowed ? 0 : resetInMs,
      remaining: Math.max(0, this.#limit - count),
      limit: this.#limit,
    };
  }
}
