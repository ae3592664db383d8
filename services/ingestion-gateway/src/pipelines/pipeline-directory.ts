/**
 * What the gateway needs to know about the pipeline a key names. The gateway owns this port; the control
 * plane's repository implements it (and tests use a typed in-memory one).
 */
export interface PipelineAuth {
  readonly orgId: string;
  readonly pipelineId: string;
  readonly type: 'web' | 'app' | 'server';
  readonly enabled: boolean;
  /** `grace`: the key was rotated out and still works until its grace window ends. */
  readonly keyStatus: 'active' | 'grace';
  /** Domains whose pages may send events with this key (`example.com` also allows its subdomains). */
  readonly allowedDomains: readonly string[];
  /** Per-pipeline override of RATE_LIMIT_RPS. */
  readonly rateLimitRps: number | null;
  /** Decrypted HMAC secrets for server sources: the current one first, then a rotated one in its grace. */
  readonly hmacSecrets: readonly Buffer[];
  /**
   * When this answer stops being true (ms since the epoch): the earliest end of a grace window in it (the
   * key's or a secret's); null or absent when nothing in it expires. The cache keeps it no longer.
   */
  readonly validUntil?: number | null;
}

export interface PipelineDirectory {
  findPipelineByKey(key: string): Promise<PipelineAuth | null>;
  /**
   * Whether `findPipelineByKey(key)` would be answered without asking the database (a cache that knows it,
   * found or not). Absent: every lookup may reach the database.
   */
  knows?(key: string): boolean;
}

/** `dk_live_…` / `dk_test_…` followed by the key body; anything else is refused before any lookup. */
export const PIPELINE_KEY_PATTERN = /^dk_(live|test)_[A-Za-z0-9]{16,64}$/;

export interface CachedDirectoryOptions {
  /** PIPELINE_KEY_CACHE_TTL: how long a found pipeline is reused. */
  readonly ttlMs: number;
  /** How long an unknown key is remembered, so a flood of bogus keys does not reach the database. */
  readonly negativeTtlMs?: number;
  readonly maxEntries?: number;
  readonly now?: () => number;
}

interface Entry {
  readonly value: PipelineAuth | null;
  readonly expiresAt: number;
}

/**
 * An in-process cache in front of the directory: the lookup runs on every request, so hits must cost a Map
 * read. Concurrent misses for one key share one lookup (single flight). A revoked key keeps working on a
 * gateway for at most `ttlMs` (PIPELINE_KEY_CACHE_TTL, 300 s by default): the documented trade-off. A
 * rotated key or secret stops at the end of its grace window exactly (`validUntil`), not up to a TTL later.
 */
export function cachedPipelineDirectory(
  directory: PipelineDirectory,
  options: CachedDirectoryOptions,
): PipelineDirectory & { invalidate(key?: string): void; knows(key: string): boolean } {
  const now = options.now ?? Date.now;
  const negativeTtlMs = options.negativeTtlMs ?? Math.min(options.ttlMs, 5_000);
  const maxEntries = options.maxEntries ?? 10_000;
  // Found keys and unknown ones in budgets of their own: a flood of made-up keys evicts only other
  // made-up keys, never the real ones every visitor's request needs.
  const entries = new Map<string, Entry>();
  const unknown = new Map<string, Entry>();
  const inFlight = new Map<string, Promise<PipelineAuth | null>>();

  function live(key: string): Entry | undefined {
    const hit = entries.get(key) ?? unknown.get(key);
    if (hit === undefined) return undefined;
    if (hit.expiresAt > now()) return hit;
    entries.delete(key);
    unknown.delete(key);
    return undefined;
  }

  function remember(key: string, value: PipelineAuth | null): void {
    const into = value === null ? unknown : entries;
    if (into.size >= maxEntries) {
      // Maps iterate in insertion order: drop the oldest entry of the same kind.
      const oldest = into.keys().next();
      if (!oldest.done) into.delete(oldest.value);
    }
    // A key or secret in its grace window is reused only until the window ends, however long the TTL.
    const until = now() + (value ? options.ttlMs : negativeTtlMs);
    into.set(key, { value, expiresAt: Math.min(until, value?.validUntil ?? Number.POSITIVE_INFINITY) });
  }

  return {
    async findPipelineByKey(key) {
      const hit = live(key);
      if (hit !== undefined) return hit.value;
      const pending = inFlight.get(key);
      if (pending) return pending;
      const lookup = directory
        .findPipelineByKey(key)
        .then((value) => {
          remember(key, value);
          return value;
        })
        .finally(() => inFlight.delete(key));
      inFlight.set(key, lookup);
      return lookup;
    },
    knows: (key) => live(key) !== undefined || inFlight.has(key),
    invalidate(key) {
      if (key === undefined) {
        entries.clear();
        unknown.clear();
      } else {
        entries.delete(key);
        unknown.delete(key);
      }
    },
  };
}
