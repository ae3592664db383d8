import { createMemoryCache } from '@signal/cache';
import { type ConsentState, normaliseConsent, resolveLatestConsent, visitorKey } from '@signal/consent';
import type { Database } from '@signal/store';
import { afterAll, describe, expect, it } from 'vitest';
import { identityHubMigrations } from '../migrations';
import type { GraphDbTarget } from './db-targets';
import { createVisitorConsentStore } from './visitor-consent';

const ORG = 'org_visitors';

const marketing = (granted: boolean, observedAt: number): ConsentState =>
  normaliseConsent({ categories: { analytics: true, marketing: granted } }, { observedAt });

/**
 * Visitors' consent states kept in the database beside the cache: what a restart (a new, empty in-process
 * cache), an eviction or a Redis without persistence used to forget.
 */
export function describeVisitorConsent(target: GraphDbTarget, skip = false): void {
  describe.skipIf(skip)(`visitor consent states in the database (${target.name})`, () => {
    afterAll(() => target.close());

    /** A store over `db` with a cache of its own: a new one is what a restarted process has. */
    const storeOn = (db: Database, now?: () => number) =>
      createVisitorConsentStore({ db, cache: createMemoryCache(), ...(now ? { now } : {}) });

    /** `db` counting its queries. */
    const countingQueries = (db: Database) => {
      let count = 0;
      const counting = {
        query: (sql: string, params?: readonly unknown[]) => {
          count += 1;
          return db.query(sql, params);
        },
      } as unknown as Database;
      return { counting, queries: () => count };
    };

    const rowOf = async (db: Database, anonymousId: string) =>
      (
        await db.query<{ updated_at: string }>(
          'SELECT updated_at::text AS updated_at FROM consent_visitor_states WHERE visitor_key = $1',
          [visitorKey(ORG, anonymousId)],
        )
      ).rows[0];

    it('a withdrawal survives a restart: an event that waited is judged by it, not by what it arrived with', async () => {
      const db = await target.fresh(identityHubMigrations);
      const before = storeOn(db);
      await before.set(ORG, 'anon-1', marketing(true, 1_000));
      const withdrawn = marketing(false, 2_000);
      expect(await before.set(ORG, 'anon-1', withdrawn)).toEqual({ status: 'written' });

      const after = storeOn(db);
      expect(await after.get(ORG, 'anon-1')).toEqual({ status: 'found', state: withdrawn });
      // A retry of an event ingested while marketing was granted.
      const latest = await resolveLatestConsent(after, ORG, 'anon-1', marketing(true, 1_500));
      expect(latest).toEqual({ state: withdrawn, source: 'store' });
      // By visitor key too (an event whose anonymous id a rule hashed).
      const byKey = await resolveLatestConsent(
        storeOn(db),
        ORG,
        { visitorKey: visitorKey(ORG, 'anon-1') },
        marketing(true, 1_500),
      );
      expect(byKey).toEqual({ state: withdrawn, source: 'store' });
      expect(await after.get(ORG, 'anon-unknown')).toEqual({ status: 'missing' });
    });

    it('a late, older state cannot slip into a cache that lost the newer one', async () => {
      const db = await target.fresh(identityHubMigrations);
      const withdrawn = marketing(false, 2_000);
      await storeOn(db).set(ORG, 'anon-2', withdrawn);
      const restarted = storeOn(db);
      expect(await restarted.set(ORG, 'anon-2', marketing(true, 1_000))).toEqual({
        status: 'stale',
        current: withdrawn,
      });
      expect(await restarted.get(ORG, 'anon-2')).toEqual({ status: 'found', state: withdrawn });
      // A newer grant is written through.
      const regranted = marketing(true, 3_000);
      expect(await restarted.set(ORG, 'anon-2', regranted)).toEqual({ status: 'written' });
      expect(await storeOn(db).get(ORG, 'anon-2')).toEqual({ status: 'found', state: regranted });
    });

    it('writes the table when the choices change, not for every event that repeats them', async () => {
      const db = await target.fresh(identityHubMigrations);
      const store = storeOn(db);
      await store.set(ORG, 'anon-3', marketing(true, 1_000));
      expect(await rowOf(db, 'anon-3')).toEqual({ updated_at: '1000' });
      for (const at of [1_100, 1_200, 1_300]) {
        expect(await store.set(ORG, 'anon-3', marketing(true, at))).toEqual({ status: 'written' });
      }
      expect(await rowOf(db, 'anon-3')).toEqual({ updated_at: '1000' });
      await store.set(ORG, 'anon-3', marketing(false, 1_400));
      expect(await rowOf(db, 'anon-3')).toEqual({ updated_at: '1400' });
      // Two stores (processes) with stale caches: the older change never overwrites the newer row.
      await storeOn(db).set(ORG, 'anon-3', marketing(true, 1_350));
      expect(await rowOf(db, 'anon-3')).toEqual({ updated_at: '1400' });
    });

    it('a visitor without a state costs the database one query a minute, not one per event', async () => {
      const db = await target.fresh(identityHubMigrations);
      const { counting, queries } = countingQueries(db);
      const store = createVisitorConsentStore({ db: counting, cache: createMemoryCache() });
      for (let i = 0; i < 5; i += 1) {
        expect(await store.get(ORG, 'anon-silent')).toEqual({ status: 'missing' });
        expect(await store.getByVisitorKey(visitorKey(ORG, 'anon-silent'))).toEqual({ status: 'missing' });
      }
      expect(queries()).toBe(1);
      // A state written later replaces the "no state" copy at once, in the table and in the cache.
      const withdrawn = marketing(false, 5_000);
      expect(await store.set(ORG, 'anon-silent', withdrawn)).toEqual({ status: 'written' });
      expect(queries()).toBe(2);
      expect(await store.get(ORG, 'anon-silent')).toEqual({ status: 'found', state: withdrawn });
      expect(await storeOn(db).get(ORG, 'anon-silent')).toEqual({ status: 'found', state: withdrawn });
      expect(queries()).toBe(2);
    });

    it('a batch of events costs one read and one write, whatever its number of visitors', async () => {
      const db = await target.fresh(identityHubMigrations);
      const { counting, queries } = countingQueries(db);
      const store = createVisitorConsentStore({ db: counting, cache: createMemoryCache() });
      // What the processor does with a batch: every event at once, first a read, then its visitor's choice.
      const visitors = Array.from({ length: 200 }, (_, i) => `anon-batch-${i}`);
      const reads = await Promise.all(visitors.map((v) => store.get(ORG, v)));
      expect(reads.every((r) => r.status === 'missing')).toBe(true);
      expect(queries()).toBe(1);
      // Two events of one visitor in the batch, the later one withdrawing: the table keeps the later choice
      // (one row per visitor in the statement; PostgreSQL refuses to update a row twice in one).
      const writes = await Promise.all([
        ...visitors.map((v, i) => store.set(ORG, v, marketing(true, 1_000 + i))),
        store.set(ORG, 'anon-batch-0', marketing(false, 5_000)),
      ]);
      expect(writes.every((w) => w.status === 'written' || w.status === 'stale')).toBe(true);
      expect(queries()).toBe(2);
      expect(await rowOf(db, 'anon-batch-0')).toEqual({ updated_at: '5000' });
      expect(await rowOf(db, 'anon-batch-199')).toEqual({ updated_at: '1199' });
      expect(await storeOn(db).get(ORG, 'anon-batch-0')).toEqual({
        status: 'found',
        state: marketing(false, 5_000),
      });
    });

    it('a state read back from the table (keys reordered by jsonb) with the same choices is not written again', async () => {
      const db = await target.fresh(identityHubMigrations);
      await storeOn(db).set(ORG, 'anon-order', marketing(false, 1_000));
      const restarted = storeOn(db);
      expect(await restarted.get(ORG, 'anon-order')).toMatchObject({ status: 'found' });
      expect(await restarted.set(ORG, 'anon-order', marketing(false, 2_000))).toEqual({ status: 'written' });
      expect(await rowOf(db, 'anon-order')).toEqual({ updated_at: '1000' });
      expect(await restarted.set(ORG, 'anon-order', marketing(true, 3_000))).toEqual({ status: 'written' });
      expect(await rowOf(db, 'anon-order')).toEqual({ updated_at: '3000' });
    });

    it('is unavailable, not guessing, when the table cannot be read or written', async () => {
      const db = await target.fresh(identityHubMigrations);
      const failing = {
        query: async () => {
          throw new Error('connection refused');
        },
      } as unknown as Database;
      const cache = createMemoryCache();
      const store = createVisitorConsentStore({ db: failing, cache });
      expect(await store.set(ORG, 'anon-4', marketing(false, 1_000))).toEqual({ status: 'unavailable' });
      expect(await store.get(ORG, 'anon-4')).toEqual({ status: 'unavailable' });
      // Nothing reached the cache either: a retry writes both.
      expect(
        await createVisitorConsentStore({ db, cache }).set(ORG, 'anon-4', marketing(false, 1_000)),
      ).toEqual({
        status: 'written',
      });
    });

    it('purges rows past their expiry (13 months after the last change)', async () => {
      const db = await target.fresh(identityHubMigrations);
      let clock = Date.UTC(2026, 0, 1);
      const now = () => clock;
      const store = createVisitorConsentStore({ db, cache: createMemoryCache(), now, ttlMs: 60_000 });
      await store.set(ORG, 'anon-5', marketing(false, clock));
      clock += 30_000;
      await store.set(ORG, 'anon-6', marketing(false, clock));
      clock += 31_000;
      expect(await store.purgeExpired()).toBe(1);
      expect(await rowOf(db, 'anon-5')).toBeUndefined();
      expect(await rowOf(db, 'anon-6')).toBeDefined();
      // An expired row is not read even before it is purged.
      clock += 60_000;
      expect(
        await createVisitorConsentStore({ db, cache: createMemoryCache(), now }).get(ORG, 'anon-6'),
      ).toEqual({
        status: 'missing',
      });
    });
  });
}
