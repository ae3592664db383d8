import type { CredentialSource } from '../ports';

export interface CachedCredentialSourceOptions {
  /** How long decrypted credentials stay in memory. Default 60 s; a rotation applies within it. */
  readonly ttlMs?: number;
  readonly now?: () => number;
}

export interface CachedCredentialSource extends CredentialSource {
  /** Forgets one integration's credentials (after an auth failure, so the next try reads fresh ones). */
  invalidate(integrationId: string): void;
  /** Forgets the credentials whose TTL has passed (an idle integration's would otherwise stay). */
  sweep(): void;
  /** How many integrations' decrypted credentials are held right now. */
  readonly size: number;
  /** Forgets everything (shutdown). */
  clear(): void;
}

/**
 * A short in-memory TTL cache in front of a `CredentialSource`, with one load at a time per integration.
 * Decrypted credentials live only in this Map: never written anywhere, never logged, and failures are not
 * cached (the next call tries again). An expired entry is dropped when next asked for or by `sweep` (the
 * worker sweeps on its maintenance timer), so an integration that goes idle does not keep its plaintext.
 */
export function cachedCredentialSource(
  source: CredentialSource,
  options: CachedCredentialSourceOptions = {},
): CachedCredentialSource {
  const ttlMs = options.ttlMs ?? 60_000;
  const now = options.now ?? Date.now;
  const entries = new Map<string, { value: unknown; expiresAt: number }>();
  const loading = new Map<string, Promise<unknown>>();
  /** Bumped by `invalidate`: a load that started before it (with the old credentials) is not cached. */
  const generations = new Map<string, number>();
  return {
    async getCredentials(integrationId) {
      const hit = entries.get(integrationId);
      if (hit !== undefined && hit.expiresAt > now()) return hit.value;
      entries.delete(integrationId);
      let pending = loading.get(integrationId);
      if (pending === undefined) {
        const generation = generations.get(integrationId) ?? 0;
        const current = (): boolean => (generations.get(integrationId) ?? 0) === generation;
        const load = source
          .getCredentials(integrationId)
          .then((value) => {
            if (current()) entries.set(integrationId, { value, expiresAt: now() + ttlMs });
            return value;
          })
          .finally(() => {
            if (loading.get(integrationId) === load) loading.delete(integrationId);
          });
        pending = load;
        loading.set(integrationId, load);
      }
      return pending;
    },
    invalidate(integrationId) {
      generations.set(integrationId, (generations.get(integrationId) ?? 0) + 1);
      entries.delete(integrationId);
      loading.delete(integrationId);
    },
    get size() {
      return entries.size;
    },
    sweep() {
      const at = now();
      for (const [integrationId, entry] of entries) {
        if (entry.expiresAt <= at) entries.delete(integrationId);
      }
    },
    clear() {
      entries.clear();
    },
  };
}
