import type { Cache } from '@signal/cache';
import type { Queryable } from '@signal/store';
import { IdentityHubError } from '../errors';

/**
 * Remembers which token ids were used. `consume` is atomic: of any number of concurrent calls for one id,
 * exactly one resolves `true`, until the id expires. When the store cannot answer it rejects with
 * `single_use_unavailable` and the caller refuses the token (fail closed): never accept unchecked.
 */
export interface SingleUseStore {
  /**
   * Marks `id` used and tells whether this call was the first. `expiresAtMs` is when the id stops mattering
   * (the token's expiry plus the clock-skew allowance); the store may forget it afterwards, not before.
   */
  consume(id: string, expiresAtMs: number): Promise<boolean>;
  /** Stores without their own expiry (SQL) delete forgotten ids here; the hub calls it periodically. */
  purgeExpired?(): Promise<number>;
}

export interface SingleUseStoreOptions {
  readonly now?: () => number;
}

const KEY_PREFIX = 'xdt:jti:';
/** Never ask the cache for a TTL below this: an id must outlive the request that consumed it. */
const MIN_TTL_MS = 1_000;

/**
 * Single use on the cache port: Redis `SET NX PX` in production, the in-process store in embedded mode
 * (which never evicts `setIfAbsent` entries before they expire). Keys are `xdt:jti:<jti>` in the cache's
 * namespace.
 */
export function cacheSingleUseStore(
  cache: Pick<Cache, 'setIfAbsent'>,
  options: SingleUseStoreOptions = {},
): SingleUseStore {
  const now = options.now ?? Date.now;
  return {
    async consume(id, expiresAtMs) {
      const ttlMs = Math.max(MIN_TTL_MS, Math.ceil(expiresAtMs - now()));
      try {
        return await cache.setIfAbsent(`${KEY_PREFIX}${id}`, '1', ttlMs);
      } catch (cause) {
        throw new IdentityHubError('single_use_unavailable', 'the single-use store did not answer', {
          cause,
        });
      }
    },
  };
}

/**
 * Single use on SQL, for deployments without a shared cache: `INSERT … ON CONFLICT DO NOTHING` into
 * `used_token_ids` (the primary key makes exactly one insert win, on PostgreSQL and on PGlite alike).
 * `purgeExpired` deletes ids past their expiry; the hub runs it every minute.
 */
export function sqlSingleUseStore(
  db: Pick<Queryable, 'query'>,
  options: SingleUseStoreOptions = {},
): SingleUseStore & { purgeExpired(): Promise<number> } {
  const now = options.now ?? Date.now;
  return {
    async consume(id, expiresAtMs) {
      try {
        const result = await db.query(
          'INSERT INTO used_token_ids (jti, expires_at) VALUES ($1, $2::timestamptz) ON CONFLICT (jti) DO NOTHING',
          [id, new Date(Math.max(expiresAtMs, now() + MIN_TTL_MS)).toISOString()],
        );
        return result.rowCount === 1;
      } catch (cause) {
        throw new IdentityHubError('single_use_unavailable', 'the single-use store did not answer', {
          cause,
        });
      }
    },
    async purgeExpired() {
      const result = await db.query('DELETE FROM used_token_ids WHERE expires_at < $1::timestamptz', [
        new Date(now()).toISOString(),
      ]);
      return result.rowCount;
    },
  };
}
