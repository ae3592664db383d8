import { CryptoError, type KeyEntry } from '@signal/crypto';
import { LRUCache } from 'lru-cache';

/** What the loader hands the cache: the unwrapped DEK, ready to use, and its (public) commitment. */
export interface LoadedDek {
  readonly entry: KeyEntry;
  /** `HMAC(DEK, wrap context)` of the row: equal commitments mean the refreshed DEK is the one cached. */
  readonly commitment: Buffer;
}

export type DekCacheResult = 'hit' | 'miss' | 'stale';

export interface DekCacheOptions {
  /**
   * Fetches and unwraps a DEK by id (hex), with the cache's deadline signal. Throws a `CryptoError`:
   * `key_unavailable` (KMS down or slow: a cached copy may be served within the grace window) or any other
   * code (destroyed, unknown, commitment mismatch, revoked KEK: the cached copy is dropped at once).
   */
  readonly load: (id: string, signal: AbortSignal) => Promise<LoadedDek>;
  /** Unpinned DEKs kept at most (LRU beyond that). */
  readonly maxEntries: number;
  /** A DEK is re-verified with the KMS after this long (bounds how long a revoked KEK or a DEK destroyed by another process keeps working). */
  readonly ttlMs: number;
  /** Accessed entries are refreshed in the background once this much of their TTL is left. */
  readonly refreshAheadMs: number;
  /** After the TTL, decrypts may go on from the cached DEK for this long while the KMS is unavailable. */
  readonly staleGraceMs: number;
  /** Deadline of one load (the KMS call inside it). */
  readonly timeoutMs: number;
  readonly now?: () => number;
  /** Called for every lookup: counts hits, misses and stale serves. */
  readonly onLookup?: (result: DekCacheResult) => void;
  /** Called when a stale DEK is served because a refresh failed with `key_unavailable` (once per failed refresh). */
  readonly onStaleServed?: (id: string, error: CryptoError) => void;
}

interface Cached {
  entry: KeyEntry;
  commitment: Buffer;
  loadedAt: number;
  /** Set while refreshes fail with `key_unavailable`: the sync path may then serve within the grace window. */
  unavailableSince: number | undefined;
}

/**
 * The plaintext-DEK cache of one process (ARCHITECTURE §5): LRU with a TTL, single-flight loading (any number
 * of concurrent first uses of a DEK make one KMS call), refresh before expiry, bounded stale-on-error for
 * decrypts during a KMS outage, and best-effort zeroing of key material on eviction. Pinned entries (the
 * active DEKs, which seal) never leave by LRU, only by a refresh that finds them destroyed or revoked.
 *
 * Sealing uses `fresh` (never a stale or fallback key); opening uses `peek` (sync) or `get` (async).
 */
export class DekCache {
  readonly #options: DekCacheOptions;
  readonly #now: () => number;
  readonly #pinned = new Map<string, Cached>();
  readonly #lru: LRUCache<string, Cached>;
  readonly #inflight = new Map<string, Promise<Cached>>();
  #closed = false;

  constructor(options: DekCacheOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#lru = new LRUCache<string, Cached>({
      max: options.maxEntries,
      // Eviction, deletion and TTL-less replacement all drop key material: zero it (best effort).
      dispose: (cached) => cached.entry.destroy(),
    });
  }

  get size(): number {
    return this.#pinned.size + this.#lru.size;
  }

  /** Loads a DEK and keeps it out of LRU eviction (the active DEKs). Rejects like `load`. */
  async pin(id: string): Promise<KeyEntry> {
    const cached = await this.#refresh(id, true);
    return cached.entry;
  }

  isPinned(id: string): boolean {
    return this.#pinned.has(id);
  }

  /** Starts a background refresh of every pinned DEK near or past its TTL (the keyring's timer calls it). */
  refreshDue(): void {
    const due = this.#now() - (this.#options.ttlMs - this.#options.refreshAheadMs);
    for (const [id, cached] of this.#pinned) if (cached.loadedAt <= due) this.#background(id);
  }

  /** Moves a pinned DEK back under LRU eviction (it stopped being active). */
  unpin(id: string): void {
    const cached = this.#pinned.get(id);
    if (cached === undefined) return;
    this.#pinned.delete(id);
    this.#lru.set(id, cached);
  }

  /**
   * A DEK still inside its TTL, for sealing: pinned (class DEKs) or in the LRU (subject DEKs); undefined when
   * it is not fresh (seal must then fail or fetch it again).
   */
  fresh(id: string): KeyEntry | undefined {
    const cached = this.#pinned.get(id) ?? this.#lru.get(id);
    if (cached === undefined) return undefined;
    const age = this.#now() - cached.loadedAt;
    if (age >= this.#options.ttlMs) {
      this.#background(id);
      return undefined;
    }
    if (age >= this.#options.ttlMs - this.#options.refreshAheadMs) this.#background(id);
    return cached.entry;
  }

  /**
   * The DEK if it may open data now, without waiting: inside its TTL, or inside the grace window while the KMS
   * is failing. Starts a background refresh when the entry is near or past its TTL.
   */
  peek(id: string): KeyEntry | undefined {
    const cached = this.#pinned.get(id) ?? this.#lru.get(id);
    if (cached === undefined) return undefined;
    const age = this.#now() - cached.loadedAt;
    if (age < this.#options.ttlMs - this.#options.refreshAheadMs) {
      this.#options.onLookup?.('hit');
      return cached.entry;
    }
    this.#background(id);
    if (age < this.#options.ttlMs) {
      this.#options.onLookup?.('hit');
      return cached.entry;
    }
    if (cached.unavailableSince !== undefined && age < this.#options.ttlMs + this.#options.staleGraceMs) {
      this.#options.onLookup?.('stale');
      return cached.entry;
    }
    return undefined;
  }

  /** The DEK, loading it (single-flight) when absent or expired; stale within the grace window on `key_unavailable`. */
  async get(id: string): Promise<KeyEntry> {
    const hit = this.peek(id);
    if (hit !== undefined) return hit;
    this.#options.onLookup?.('miss');
    try {
      return (await this.#refresh(id, this.#pinned.has(id))).entry;
    } catch (error) {
      const still = this.#pinned.get(id) ?? this.#lru.peek(id);
      if (
        still !== undefined &&
        error instanceof CryptoError &&
        error.code === 'key_unavailable' &&
        this.#now() - still.loadedAt < this.#options.ttlMs + this.#options.staleGraceMs
      ) {
        this.#options.onLookup?.('stale');
        return still.entry;
      }
      throw error;
    }
  }

  /** Drops a DEK now (destroyed here or by another process), zeroing its key material. */
  evict(id: string): void {
    const pinned = this.#pinned.get(id);
    if (pinned !== undefined) {
      this.#pinned.delete(id);
      pinned.entry.destroy();
    }
    this.#lru.delete(id);
  }

  /** True when the DEK is cached (fresh or not): a failed refresh may then be bridged by the grace window. */
  holds(id: string): boolean {
    return this.#pinned.has(id) || this.#lru.has(id);
  }

  /** Ids of every cached DEK (pinned first). */
  ids(): string[] {
    return [...this.#pinned.keys(), ...this.#lru.keys()];
  }

  /** Zeroes and drops everything; later loads fail. */
  close(): void {
    this.#closed = true;
    for (const id of this.ids()) this.evict(id);
  }

  #background(id: string): void {
    if (this.#inflight.has(id)) return;
    this.#refresh(id, this.#pinned.has(id)).catch(() => {
      // Recorded by #refresh (stale marking, eviction, audit via the loader); nothing waits on it.
    });
  }

  /** Single-flight: concurrent callers for one id share one load. */
  #refresh(id: string, pin: boolean): Promise<Cached> {
    const running = this.#inflight.get(id);
    if (running !== undefined) return running;
    const load = this.#load(id, pin).finally(() => this.#inflight.delete(id));
    this.#inflight.set(id, load);
    return load;
  }

  async #load(id: string, pin: boolean): Promise<Cached> {
    if (this.#closed) throw new CryptoError('key_unavailable', 'the DEK cache is closed');
    let loaded: LoadedDek;
    try {
      loaded = await loadWithDeadline(this.#options.load, id, this.#options.timeoutMs);
    } catch (error) {
      const cached = this.#pinned.get(id) ?? this.#lru.peek(id);
      if (error instanceof CryptoError && error.code === 'key_unavailable') {
        if (cached !== undefined) {
          cached.unavailableSince ??= this.#now();
          this.#options.onStaleServed?.(id, error);
        }
      } else if (cached !== undefined) {
        this.evict(id);
      }
      throw error;
    }
    const cached = this.#pinned.get(id) ?? this.#lru.peek(id);
    if (cached?.commitment.equals(loaded.commitment)) {
      // Same DEK re-verified: keep the prepared entry, drop the new copy of the key material.
      loaded.entry.destroy();
      cached.loadedAt = this.#now();
      cached.unavailableSince = undefined;
      return cached;
    }
    if (cached !== undefined) this.evict(id);
    const next: Cached = {
      entry: loaded.entry,
      commitment: loaded.commitment,
      loadedAt: this.#now(),
      unavailableSince: undefined,
    };
    if (pin) this.#pinned.set(id, next);
    else this.#lru.set(id, next);
    return next;
  }
}

/**
 * Runs one load with a deadline: the signal aborts the provider call, and the race makes the deadline hold
 * even for a provider that ignores its signal.
 */
async function loadWithDeadline(
  load: (id: string, signal: AbortSignal) => Promise<LoadedDek>,
  id: string,
  timeoutMs: number,
): Promise<LoadedDek> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new CryptoError('key_unavailable', `the key provider did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  const loading = load(id, controller.signal);
  // A provider that answers after the deadline: nobody takes its DEK, so zero it.
  loading.then(
    (late) => {
      if (controller.signal.aborted) late.entry.destroy();
    },
    () => undefined,
  );
  try {
    return await Promise.race([loading, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
