import { checkKey, checkTtl, checkValue, keyPrefix } from './arguments';
import { CacheError } from './errors';
import type { CacheLogger } from './logger';
import { type Entry, Pool } from './memory-pool';
import type { Cache, SetOptions, WindowCount } from './port';

/**
 * Keys that share a budget of their own and may be evicted, least recently used first, when it is full,
 * whatever wrote them (`setIfAbsent` included). For bulk state whose loss is tolerable but which must not
 * crowd out everything else: the processor's dedup markers (an evicted marker shortens the dedup window),
 * consent state (an evicted state is "unknown" again). Never for single-use token ids or replay markers.
 */
export interface EvictableFamily {
  /** Keys as callers name them (before the namespace) that start with this, e.g. `dedup:`. */
  readonly keyPrefix: string;
  readonly maxEntries: number;
}

export interface MemoryCacheStoreOptions {
  /** Budget of each of the three pools (`claims`, `values`, `counters`) that `limits` does not set. Default 100 000. */
  readonly maxEntries?: number;
  /** Entries per pool: `claims` (setIfAbsent), `values` (set, compareAndSet), `counters` (incrementWindow). */
  readonly limits?: { readonly claims?: number; readonly values?: number; readonly counters?: number };
  /** Key families with a budget of their own, evicted LRU-first when full (see `EvictableFamily`). */
  readonly evictableFamilies?: readonly EvictableFamily[];
  /** Warned (at most once a minute per pool) when a full pool evicts live entries or refuses a write. */
  readonly logger?: Pick<CacheLogger, 'warn'>;
  /** How often expired entries are swept (besides lazy expiry on access). Default 10 000 ms. */
  readonly sweepIntervalMs?: number;
  /** Entries removed per pool and sweep tick, so one tick never blocks the event loop for long. Default 10 000. */
  readonly sweepBatch?: number;
  /** Monotonic clock in ms; injectable for tests. Default `performance.now()`. */
  readonly now?: () => number;
}

/** One pool's budget and fill, from `MemoryCacheStore.usage()`. */
export interface MemoryPoolUsage {
  /** `claims`, `values`, `counters`, or an evictable family's key prefix. */
  readonly pool: string;
  readonly entries: number;
  readonly maxEntries: number;
}

const REPORT_EVERY_MS = 60_000;

function checkBudget(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new CacheError('invalid_config', `${name} must be a positive integer`);
  }
  return value;
}

/**
 * The in-process key space behind one or more `MemoryCache` views (one per namespace), standing in for a
 * Redis server in embedded mode.
 *
 * Bounded, in separate budgets ("pools") so that one kind of state cannot starve another:
 * - `claims`, keys written by `setIfAbsent` (single-use token ids, replay markers): never evicted before
 *   they expire, because evicting a consumed id would let it be used again. When the pool is full of
 *   unexpired claims, `setIfAbsent` fails with `capacity` (fail closed, like Redis with
 *   `maxmemory-policy noeviction`).
 * - `values` (`set`, `compareAndSet`) and `counters` (`incrementWindow`): when full, the least recently
 *   used entry of that pool is evicted; every read, write and increment counts as a use.
 * - one pool per `EvictableFamily`: every key with its prefix, whatever wrote it; LRU eviction when full.
 *
 * A full pool first drops its expired entries (the one that expires first is always known), so a live
 * entry is evicted, or a write refused, only when the pool holds nothing expired. Expired entries are
 * also removed lazily on access and by a periodic sweep on an `unref()`ed timer.
 */
export class MemoryCacheStore {
  readonly #claims: Pool;
  readonly #values: Pool;
  readonly #counters: Pool;
  readonly #families: readonly { readonly keyPrefix: string; readonly pool: Pool }[];
  readonly #pools: readonly Pool[];
  readonly #sweepBatch: number;
  readonly #now: () => number;
  readonly #logger: Pick<CacheLogger, 'warn'> | undefined;
  readonly #reports = new Map<Pool, { at: number; count: number }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(options: MemoryCacheStoreOptions = {}) {
    const base = checkBudget('maxEntries', options.maxEntries ?? 100_000);
    const limits = options.limits ?? {};
    this.#claims = new Pool('claims', checkBudget('limits.claims', limits.claims ?? base), false);
    this.#values = new Pool('values', checkBudget('limits.values', limits.values ?? base), true);
    this.#counters = new Pool('counters', checkBudget('limits.counters', limits.counters ?? base), true);
    const families = (options.evictableFamilies ?? []).map(({ keyPrefix, maxEntries }) => {
      if (typeof keyPrefix !== 'string' || keyPrefix.length === 0) {
        throw new CacheError('invalid_config', 'an evictable family needs a non-empty keyPrefix');
      }
      return {
        keyPrefix,
        pool: new Pool(keyPrefix, checkBudget('evictable family maxEntries', maxEntries), true),
      };
    });
    for (const a of families) {
      for (const b of families) {
        if (a !== b && b.keyPrefix.startsWith(a.keyPrefix)) {
          throw new CacheError('invalid_config', 'evictable family key prefixes must not overlap');
        }
      }
    }
    this.#families = families;
    this.#pools = [this.#claims, this.#values, this.#counters, ...families.map((f) => f.pool)];
    this.#sweepBatch = options.sweepBatch ?? 10_000;
    this.#now = options.now ?? (() => performance.now());
    this.#logger = options.logger;
    const interval = options.sweepIntervalMs ?? 10_000;
    if (!Number.isSafeInteger(interval) || interval < 1) {
      throw new CacheError('invalid_config', 'sweepIntervalMs must be a positive integer');
    }
    this.#timer = setInterval(() => this.sweep(), interval);
    this.#timer.unref();
  }

  /** Entries currently held, expired-but-unswept ones included. */
  get size(): number {
    let size = 0;
    for (const pool of this.#pools) size += pool.size;
    return size;
  }

  /** Each pool's fill and budget (expired-but-unswept entries included). */
  usage(): MemoryPoolUsage[] {
    return this.#pools.map((p) => ({ pool: p.name, entries: p.size, maxEntries: p.maxEntries }));
  }

  get closed(): boolean {
    return this.#timer === undefined;
  }

  /** The family pool of `key` (whose first `keyStart` characters are the namespace), if any. */
  #familyOf(key: string, keyStart: number): Pool | undefined {
    for (const family of this.#families) {
      if (key.startsWith(family.keyPrefix, keyStart)) return family.pool;
    }
    return undefined;
  }

  /** The live entry at `key`; an expired one is removed on the way. */
  #live(key: string, family: Pool | undefined): Entry | undefined {
    const entry =
      family !== undefined
        ? family.get(key)
        : (this.#values.get(key) ?? this.#counters.get(key) ?? this.#claims.get(key));
    if (entry === undefined) return undefined;
    if (entry.expiresAt > this.#now()) return entry;
    entry.pool.remove(entry);
    return undefined;
  }

  /** Makes room for one new key in `pool`: expired entries go first, then (if allowed) the least recently used. */
  #makeRoom(pool: Pool): void {
    const now = this.#now();
    while (pool.size >= pool.maxEntries) {
      const soonest = pool.soonestToExpire();
      if (soonest !== undefined && soonest.expiresAt <= now) {
        pool.remove(soonest);
        continue;
      }
      if (!pool.evictsLive) {
        this.#report(
          pool,
          now,
          'in-process cache pool full of unexpired entries it may not evict: refusing writes (fail closed)',
        );
        throw new CacheError(
          'capacity',
          `in-process cache is full (${pool.name}: unexpired single-use entries)`,
        );
      }
      const oldest = pool.leastRecentlyUsed();
      if (oldest === undefined) return;
      pool.remove(oldest);
      this.#report(pool, now, 'in-process cache pool full: evicting least recently used live entries');
    }
  }

  /** Warns about a full pool at most once per REPORT_EVERY_MS, with how often it happened since. */
  #report(pool: Pool, now: number, msg: string): void {
    if (this.#logger === undefined) return;
    const last = this.#reports.get(pool);
    if (last !== undefined && now - last.at < REPORT_EVERY_MS) {
      last.count += 1;
      return;
    }
    this.#logger.warn({ pool: pool.name, maxEntries: pool.maxEntries, times: (last?.count ?? 0) + 1 }, msg);
    this.#reports.set(pool, { at: now, count: 0 });
  }

  /** `keyStart` (all methods): length of the namespace prefix of `key`; families are matched after it. */
  get(key: string, keyStart = 0): string | null {
    const entry = this.#live(key, this.#familyOf(key, keyStart));
    if (entry === undefined) return null;
    if (entry.pool.evictsLive) entry.pool.touch(entry);
    return entry.value;
  }

  set(key: string, value: string, ttlMs: number, keyStart = 0): void {
    const family = this.#familyOf(key, keyStart);
    const target = family ?? this.#values;
    const current = this.#live(key, family);
    const expiresAt = this.#now() + ttlMs;
    if (current !== undefined && current.pool === target) {
      target.replace(current, value, expiresAt);
      return;
    }
    this.#makeRoom(target);
    if (current !== undefined) current.pool.remove(current);
    target.add(key, value, expiresAt);
  }

  setIfAbsent(key: string, value: string, ttlMs: number, keyStart = 0): boolean {
    const family = this.#familyOf(key, keyStart);
    if (this.#live(key, family) !== undefined) return false;
    const target = family ?? this.#claims;
    this.#makeRoom(target);
    target.add(key, value, this.#now() + ttlMs);
    return true;
  }

  compareAndSet(key: string, expected: string | null, value: string, ttlMs: number, keyStart = 0): boolean {
    const current = this.#live(key, this.#familyOf(key, keyStart))?.value ?? null;
    if (current !== expected) return false;
    this.set(key, value, ttlMs, keyStart);
    return true;
  }

  getAndDelete(key: string, keyStart = 0): string | null {
    const entry = this.#live(key, this.#familyOf(key, keyStart));
    if (entry === undefined) return null;
    entry.pool.remove(entry);
    return entry.value;
  }

  delete(key: string, keyStart = 0): boolean {
    const entry = this.#live(key, this.#familyOf(key, keyStart));
    if (entry === undefined) return false;
    entry.pool.remove(entry);
    return true;
  }

  incrementWindow(key: string, windowMs: number, keyStart = 0): WindowCount {
    const family = this.#familyOf(key, keyStart);
    const entry = this.#live(key, family);
    if (entry === undefined) {
      const target = family ?? this.#counters;
      this.#makeRoom(target);
      target.add(key, '1', this.#now() + windowMs);
      return { count: 1, resetInMs: windowMs };
    }
    // Redis INCR's rule: a canonical decimal integer ('007', '-0', '+1' are text), and no overflow.
    const current = Number(entry.value);
    if (!/^(0|-?[1-9]\d*)$/.test(entry.value) || !Number.isSafeInteger(current + 1)) {
      throw new CacheError('command_failed', 'incrementWindow on a key that does not hold an integer');
    }
    const count = current + 1;
    entry.value = String(count);
    // A counter in use (a limiter denying a client that keeps trying) is the last to be evicted.
    if (entry.pool.evictsLive) entry.pool.touch(entry);
    return { count, resetInMs: Math.max(1, Math.ceil(entry.expiresAt - this.#now())) };
  }

  /** Removes expired entries, at most `sweepBatch` per pool, the ones that expired first first. */
  sweep(): void {
    const now = this.#now();
    for (const pool of this.#pools) {
      for (let removed = 0; removed < this.#sweepBatch; removed++) {
        const soonest = pool.soonestToExpire();
        if (soonest === undefined || soonest.expiresAt > now) break;
        pool.remove(soonest);
      }
    }
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const pool of this.#pools) pool.clear();
  }
}

export interface MemoryCacheOptions extends MemoryCacheStoreOptions {
  /** Prefix for every key (`SIGNAL_NAMESPACE`). */
  readonly namespace?: string;
  /**
   * A store shared with other namespaces (the all-in-one process). When given, the store options above are
   * ignored and close() leaves the store open; otherwise the cache owns a private store.
   */
  readonly store?: MemoryCacheStore;
}

class MemoryCache implements Cache {
  readonly #store: MemoryCacheStore;
  readonly #ownsStore: boolean;
  readonly #prefix: string;
  #closed = false;

  constructor(store: MemoryCacheStore, ownsStore: boolean, prefix: string) {
    this.#store = store;
    this.#ownsStore = ownsStore;
    this.#prefix = prefix;
  }

  #key(key: string): string {
    if (this.#closed || this.#store.closed) throw new CacheError('closed', 'cache used after close()');
    checkKey(key);
    return this.#prefix + key;
  }

  async get(key: string): Promise<string | null> {
    return this.#store.get(this.#key(key), this.#prefix.length);
  }

  async set(key: string, value: string, options: SetOptions): Promise<void> {
    const k = this.#key(key);
    checkValue(value);
    checkTtl('ttlMs', options.ttlMs);
    this.#store.set(k, value, options.ttlMs, this.#prefix.length);
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    const k = this.#key(key);
    checkValue(value);
    checkTtl('ttlMs', ttlMs);
    return this.#store.setIfAbsent(k, value, ttlMs, this.#prefix.length);
  }

  async compareAndSet(key: string, expected: string | null, value: string, ttlMs: number): Promise<boolean> {
    const k = this.#key(key);
    checkValue(value);
    if (expected !== null) checkValue(expected);
    checkTtl('ttlMs', ttlMs);
    return this.#store.compareAndSet(k, expected, value, ttlMs, this.#prefix.length);
  }

  async getAndDelete(key: string): Promise<string | null> {
    return this.#store.getAndDelete(this.#key(key), this.#prefix.length);
  }

  async delete(key: string): Promise<boolean> {
    return this.#store.delete(this.#key(key), this.#prefix.length);
  }

  async incrementWindow(key: string, windowMs: number): Promise<WindowCount> {
    const k = this.#key(key);
    checkTtl('windowMs', windowMs);
    return this.#store.incrementWindow(k, windowMs, this.#prefix.length);
  }

  async ping(): Promise<void> {
    if (this.#closed || this.#store.closed) throw new CacheError('closed', 'cache used after close()');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsStore) this.#store.close();
  }
}

/** An in-process cache with the same semantics as the Redis adapter (atomic by running on one thread). */
export function createMemoryCache(options: MemoryCacheOptions = {}): Cache {
  const prefix = keyPrefix(options.namespace);
  if (options.store !== undefined) return new MemoryCache(options.store, false, prefix);
  return new MemoryCache(new MemoryCacheStore(options), true, prefix);
}
