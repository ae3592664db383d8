/**
 * The cache port: short-lived shared state (pipeline-key cache, consent state, single-use token ids, dedup
 * markers, rate-limit counters). Redis (ioredis) in production, an in-process store in embedded mode; one
 * contract suite holds both to the same semantics.
 *
 * Values are strings (callers serialise). Every key expires: there is no way to store without a TTL. Keys
 * are given unprefixed; the adapter applies its namespace (`SIGNAL_NAMESPACE`). Each operation is atomic.
 * Failures reject with a `CacheError`; when the cache is unreachable that is `unavailable`, raised quickly
 * rather than queued, so callers that guard single use can fail closed.
 *
 * At the limit: a cache that cannot take another key rejects the write with `capacity` (retryable) rather
 * than evict a `setIfAbsent` key before its TTL: Redis under `maxmemory-policy noeviction` refuses every
 * write; the in-process store keeps separate budgets per kind of state and refuses only claims, evicting
 * least recently used `set` values and counters within their own budgets (see its README section).
 */
export interface WindowCount {
  /** Increments counted in the current window, this one included (1 for the first). */
  readonly count: number;
  /** Milliseconds until the window ends and the count starts again from zero. */
  readonly resetInMs: number;
}

export interface SetOptions {
  /** Time to live in whole milliseconds (≥ 1). */
  readonly ttlMs: number;
}

export interface Cache {
  /** The value, or null when absent or expired. */
  get(key: string): Promise<string | null>;
  /** Stores `value`, replacing any previous value and TTL. */
  set(key: string, value: string, options: SetOptions): Promise<void>;
  /**
   * Stores `value` only if the key holds nothing (Redis `SET NX PX`). Exactly one of any number of
   * concurrent callers gets `true`: use it to consume single-use token ids and to deduplicate. The key is
   * kept until its TTL ends or it is deleted, never evicted to make room, so a consumed id stays consumed;
   * when the cache is full this rejects with `capacity` and the caller fails closed. (Only a key family
   * the composition root declared evictable on the in-process store, such as dedup markers, is exempt.)
   */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  /**
   * Stores `value` only if the key holds exactly `expected` (`null`: holds nothing), in one step (a Lua
   * script on Redis). Optimistic concurrency for read-modify-write across processes: read, decide, then
   * `compareAndSet` with what was read; `false` means someone wrote in between, so read again.
   */
  compareAndSet(key: string, expected: string | null, value: string, ttlMs: number): Promise<boolean>;
  /** Returns the value and deletes the key in one step (Redis `GETDEL`): at most one caller gets it. */
  getAndDelete(key: string): Promise<string | null>;
  /** Deletes the key; true if it held a live value. */
  delete(key: string): Promise<boolean>;
  /**
   * Adds one to the counter at `key`. The first increment starts a window of `windowMs`; the counter
   * vanishes when it ends. Building block of `RateLimiter` (fixed window).
   */
  incrementWindow(key: string, windowMs: number): Promise<WindowCount>;
  /** Resolves when the cache answers; rejects with `unavailable` otherwise (readiness probes). */
  ping(): Promise<void>;
  /** Releases the connection or the in-process store; idempotent. */
  close(): Promise<void>;
}
