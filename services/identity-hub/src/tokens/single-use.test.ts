import { randomBytes } from 'node:crypto';
import { createMemoryCache } from '@signal/cache';
import { createDatabase, type Database, migrate, type Queryable, StoreError } from '@signal/store';
import { afterAll, describe, expect, it } from 'vitest';
import { identityHubMigrations } from '../migrations';
import { cacheSingleUseStore, sqlSingleUseStore } from './single-use';
import { describeSingleUseContract } from './single-use.contract';

describeSingleUseContract('in-process cache', async () => {
  const cache = createMemoryCache({ namespace: `t${randomBytes(4).toString('hex')}` });
  return { store: cacheSingleUseStore(cache), fail: () => cache.close(), close: () => cache.close() };
});

// One embedded database for the file (starting PGlite costs seconds); ids are random per test.
let shared: Promise<Database> | undefined;
function sharedDb(): Promise<Database> {
  shared ??= createDatabase({ kind: 'pglite' }).then(async (db) => {
    await migrate(db, identityHubMigrations);
    return db;
  });
  return shared;
}
afterAll(async () => {
  await (await shared)?.close();
});

describeSingleUseContract('SQL insert-on-conflict on PGlite', async () => {
  let current: Queryable = await sharedDb();
  return {
    store: sqlSingleUseStore({ query: (sql, params) => current.query(sql, params) }),
    async fail() {
      // What the adapters raise when the server is gone (the PostgreSQL suite closes a real pool instead).
      current = {
        query: () => Promise.reject(new StoreError('unavailable', 'the database is unreachable')),
        exec: () => Promise.reject(new StoreError('unavailable', 'the database is unreachable')),
      };
    },
    async close() {},
  };
});

describe('SQL single-use store: expiry', () => {
  it('keeps an id until it expires, then purges it', async () => {
    const db = await sharedDb();
    // A clock years in the past, so ids other tests stored are not expired by it.
    let now = Date.parse('2001-03-01T12:00:00Z');
    const store = sqlSingleUseStore(db, { now: () => now });
    const first = randomBytes(16).toString('base64url');
    const second = randomBytes(16).toString('base64url');
    expect(await store.consume(first, now + 125_000)).toBe(true);
    expect(await store.consume(second, now + 200_000)).toBe(true);
    now += 124_000;
    expect(await store.purgeExpired()).toBe(0);
    expect(await store.consume(first, now + 1_000)).toBe(false);
    now += 2_000;
    expect(await store.purgeExpired()).toBe(1);
    const { rows } = await db.query('SELECT jti FROM used_token_ids WHERE jti = ANY($1::text[])', [
      [first, second],
    ]);
    expect(rows).toEqual([{ jti: second }]);
  });

  it('never stores an id for less than a second, even when asked with a past expiry', async () => {
    const cache = createMemoryCache();
    try {
      const store = cacheSingleUseStore(cache);
      expect(await store.consume('past-id', Date.now() - 10_000)).toBe(true);
      expect(await store.consume('past-id', Date.now() - 10_000)).toBe(false);
    } finally {
      await cache.close();
    }
  });
});
