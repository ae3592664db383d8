import { checkKey, checkTtl, checkValue, keyPrefix } from './arguments';
import { CacheError } from './errors';
import type { Cache, SetOptions, WindowCount } from './port';

interface Entry {
  value: string;
  expiresAt: number;
}

export interface MemoryCacheStoreOptions {
  /** Upper bound on live entries across all namespaces sharing the store. Default 100 000. */
  readonly maxEntries?: number;
  /** How often expired entries are swept (besides lazy expiry on access). Default 10 000 ms. */
  readonly sweepIntervalMs?: number;
  /** Entries examined per sweep tick, so one tick never blocks the event loop for long. Default 10 000. */
  readonly sweepBatch?: number;
  /** Monotonic clock in ms; injectable for tests. Default `performance.now()`. */
  readonly now?: () => number;
}

/**
 * The in-process key space behind one or more `MemoryCache` views (one per namespace), standing in for a
 * Redis server in embedded mode.
 *
 * Bounded: when full, the least recently used entry written by `set` or `incrementWindow` is evicted.
 * Entries written by `setIfAbsent` are never evicted before they expire, because evicting a consumed
 * single-use token id would let the token be replayed; when the store holds nothing else, `setIfAbsent`
 * fails with `capacity` instead (fail closed, like Redis with `maxmemory-policy noeviction`).
 *
 * Expired entries are removed lazily on access and by a periodic sweep on an `unref()`ed timer.
 */
export class MemoryCacheStore {
  readonly #maxEntries: number;
  readonly #sweepBatch: number;
  readonly #now: () => number;
  /** Map order is recency order: first is least recently used. */
  readonly #evictable = new Map<string, Entry>();
  /** setIfAbsent entries, in insertion order. */
  readonly #pinned = new Map<string, Entry>();
  #sweepCursors: [Iterator<[string, Entry]> | undefined, Iterator<[string, Entry]> | undefined] = [
    undefined,
    undefined,
  ];
  #timer: NodeJS.Timeout | undefined;

  constructor(options: MemoryCacheStoreOptions = {}) {
    this.#maxEntries = options.maxEntries ?? 100_000;
    this.#sweepBatch = options.sweepBatch ?? 10_000;
    this.#now = options.now ?? (() => performance.now());
    if (!Number.isSafeInteger(this.#maxEntries) || this.#maxEntries < 1) {
      throw new CacheError('invalid_config', 'maxEntries must be a positive integer');
    }
    const interval = options.sweepIntervalMs ?? 10_000;
    if (!Number.isSafeInteger(interval) || interval < 1) {
      throw new CacheError('invalid_config', 'sweepIntervalMs must be a positive integer');
    }
    this.#timer = setInterval(() => this.sweep(), interval);
    this.#timer.unref();
  }

  /** Entries currently held, expired-but-unswept ones included. */
  get size(): number {
    return this.#evictable.size + this.#pinned.size;
  }

  get closed(): boolean {
    return this.#timer === undefined;
  }

  #live(key: string): { entry: Entry; pinned: boolean } | undefined {
    const now = this.#now();
    const evictable = this.#evictable.get(key);
    if (evictable !== undefined) {
      if (evictable.expiresAt > now) return { entry: evictable, pinned: false };
      this.#evictable.delete(key);
      return undefined;
    }
    const pinned = this.#pinned.get(key);
    if (pinned !== undefined) {
      if (pinned.expiresAt > now) return { entry: pinned, pinned: true };
      this.#pinned.delete(key);
    }
    return undefined;
  }

  /** Makes room for one new key, or throws `capacity` when only unexpired pinned entries remain. */
  #makeRoom(): void {
    while (this.size >= this.#maxEntries) {
      const oldest = this.#evictable.keys().next();
      if (!oldest.done) {
        this.#evictable.delete(oldest.value);
        continue;
      }
      const before = this.#pinned.size;
      this.#sweepMap(this.#pinned, Number.POSITIVE_INFINITY);
      if (this.#pinned.size === before) {
        throw new CacheError('capacity', 'in-process cache is full of unexpired single-use entries');
      }
    }
  }

  get(key: string): string | null {
    const live = this.#live(key);
    if (live === undefined) return null;
    if (!live.pinned) {
      this.#evictable.delete(key);
      this.#evictable.set(key, live.entry);
    }
    return live.entry.value;
  }

  set(key: string, value: string, ttlMs: number): void {
    const existed = this.#evictable.delete(key) || this.#pinned.delete(key);
    if (!existed) this.#makeRoom();
    this.#evictable.set(key, { value, expiresAt: this.#now() + ttlMs });
  }

  setIfAbsent(key: string, value: string, ttlMs: number): boolean {
    if (this.#live(key) !== undefined) return false;
    this.#makeRoom();
    this.#pinned.set(key, { value, expiresAt: this.#now() + ttlMs });
    return true;
  }

  compareAndSet(key: string, expected: string | null, value: string, ttlMs: number): boolean {
    const current = this.#live(key)?.entry.value ?? null;
    if (current !== expected) return false;
    this.set(key, value, ttlMs);
    return true;
  }

  getAndDelete(key: string): string | null {
    const live = this.#live(key);
    if (live === undefined) return null;
    (live.pinned ? this.#pinned : this.#evictable).delete(key);
    return live.entry.value;
  }

  delete(key: string): boolean {
    const live = this.#live(key);
    if (live === undefined) return false;
    (live.pinned ? this.#pinned : this.#evictable).delete(key);
    return true;
  }

  incrementWindow(key: string, windowMs: number): WindowCount {
    const now = this.#now();
    const live = this.#live(key);
    if (live === undefined) {
      this.#makeRoom();
      this.#evictable.set(key, { value: '1', expiresAt: now + windowMs });
      return { count: 1, resetInMs: windowMs };
    }
    if (!/^-?\d+$/.test(live.entry.value)) {
      throw new CacheError('command_failed', 'incrementWindow on a key that does not hold an integer');
    }
    const count = Number(live.entry.value) + 1;
    live.entry.value = String(count);
    return { count, resetInMs: Math.max(1, Math.ceil(live.entry.expiresAt - now)) };
  }

  #sweepMap(map: Map<string, Entry>, limit: number, cursorIndex?: 0 | 1): void {
    const now = this.#now();
    let cursor =
      cursorIndex === undefined ? map.entries() : (this.#sweepCursors[cursorIndex] ?? map.entries());
    for (let examined = 0; examined < limit; examined++) {
      const next = cursor.next();
      if (next.done) {
        cursor = map.entries();
        if (cursorIndex !== undefined) this.#sweepCursors[cursorIndex] = undefined;
        return;
      }
      const [key, entry] = next.value;
      if (entry.expiresAt <= now) map.delete(key);
    }
    if (cursorIndex !== undefined) this.#sweepCursors[cursorIndex] = cursor;
  }

  /** Removes expired entries, examining at most `sweepBatch` per map; resumes where it stopped. */
  sweep(): void {
    this.#sweepMap(this.#evictable, this.#sweepBatch, 0);
    this.#sweepMap(this.#pinned, this.#sweepBatch, 1);
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#evictable.clear();
    this.#pinned.clear();
    this.#sweepCursors = [undefined, undefined];
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
    return this.#store.get(this.#key(key));
  }

  async set(key: string, value: string, options: SetOptions): Promise<void> {
    const k = this.#key(key);
    checkValue(value);
    checkTtl('ttlMs', options.ttlMs);
    this.#store.set(k, value, options.ttlMs);
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    const k = this.#key(key);
    checkValue(value);
    checkTtl('ttlMs', ttlMs);
    return this.#store.setIfAbsent(k, value, ttlMs);
  }

  async compareAndSet(key: string, expected: string | null, value: string, ttlMs: number): Promise<boolean> {
    const k = this.#key(key);
    checkValue(value);
    if (expected !== null) checkValue(expected);
    checkTtl('ttlMs', ttlMs);
    return this.#store.compareAndSet(k, expected, value, ttlMs);
  }

  async getAndDelete(key: string): Promise<string | null> {
    return this.#store.getAndDelete(this.#key(key));
  }

  async delete(key: string): Promise<boolean> {
    return this.#store.delete(this.#key(key));
  }

  async incrementWindow(key: string, windowMs: number): Promise<WindowCount> {
    const k = this.#key(key);
    checkTtl('windowMs', windowMs);
    return this.#store.incrementWindow(k, windowMs);
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
