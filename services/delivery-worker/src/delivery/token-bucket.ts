/**
 * An in-process token bucket per integration (RATE_LIMIT_PER_SECOND deliveries per second, bursts up to one
 * second's worth). `reserve(n)` takes n tokens, possibly going into debt, and says how long to wait before
 * sending: callers reserve at most `capacity` at a time, so waits stay under a second per chunk. Per process:
 * with several worker replicas the effective limit is replicas × rate (set the rate accordingly).
 */
export class TokenBucket {
  readonly capacity: number;
  readonly #ratePerMs: number;
  readonly #now: () => number;
  #tokens: number;
  #updatedAt: number;

  constructor(ratePerSecond: number, now: () => number = () => performance.now()) {
    if (!Number.isFinite(ratePerSecond) || ratePerSecond <= 0) throw new RangeError('rate must be positive');
    this.capacity = Math.max(1, Math.floor(ratePerSecond));
    this.#ratePerMs = ratePerSecond / 1000;
    this.#now = now;
    this.#tokens = this.capacity;
    this.#updatedAt = now();
  }

  /** Takes `count` tokens; returns the milliseconds to wait before using them (0 when available now). */
  reserve(count: number): number {
    const t = this.#now();
    this.#tokens = Math.min(this.capacity, this.#tokens + (t - this.#updatedAt) * this.#ratePerMs);
    this.#updatedAt = t;
    this.#tokens -= count;
    return this.#tokens >= 0 ? 0 : Math.ceil(-this.#tokens / this.#ratePerMs);
  }
}
