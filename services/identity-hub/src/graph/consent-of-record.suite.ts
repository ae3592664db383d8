import { type Cache, createMemoryCache } from '@signal/cache';
import {
  DEFAULT_USER_CONSENT_TTL_MS,
  DEFAULT_WITHDRAWAL_TTL_MS,
  mergeChoices,
  subjectDigest,
  type UserChoice,
  withdrawnCategories,
} from '@signal/consent';
import type { Database } from '@signal/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { orgId, recordingLogger } from '../../test/support';
import { identityHubMigrations } from '../migrations';
import { createConsentOfRecord } from './consent-of-record';
import type { GraphDbTarget } from './db-targets';

const T0 = Date.parse('2026-03-01T12:00:00Z');
const DAY = 86_400_000;

/** A subject as the blind index makes them (a keyed digest of the user id). */
const subject = () => `cs_${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
const cacheOf = () => createMemoryCache({ namespace: `t${Math.random().toString(36).slice(2)}` });

const rowSchema = z.object({ expires_at: z.date() });

/**
 * A person's consent of record kept in the identity tables: it outlives the cache, merges per category by
 * time, expires, and survives concurrent writers. Run on PGlite and on PostgreSQL.
 */
export function describeConsentOfRecord(target: GraphDbTarget, skip = false): void {
  describe.skipIf(skip)(`consents of record on ${target.name}`, () => {
    let db: Database;
    const clock = { now: T0 };
    const now = () => clock.now;

    beforeAll(async () => {
      db = await target.fresh(identityHubMigrations);
    });
    afterAll(async () => {
      await target.close();
    });

    it('keeps a withdrawal when the cache forgets everything (a restart of the embedded cache, a Redis flush)', async () => {
      const [org, person] = [orgId(), subject()];
      const before = createConsentOfRecord({ db, cache: cacheOf(), now });
      expect(await before.record(org, person, { marketing: false }, T0)).toEqual({ status: 'written' });
      // A new process: an empty cache, the same database.
      const after = createConsentOfRecord({ db, cache: cacheOf(), now });
      expect(withdrawnCategories(await after.get(org, person))).toEqual(['marketing']);
      // Without a cache at all, the database answers alone.
      expect(withdrawnCategories(await createConsentOfRecord({ db, now }).get(org, person))).toEqual([
        'marketing',
      ]);
      // Neither the row nor anything else holds the subject: only a digest of it and of the org.
      const { rows } = await db.query('SELECT * FROM identity_consent_of_record WHERE org_id = $1', [org]);
      expect(rows).toHaveLength(1);
      expect(JSON.stringify(rows)).not.toContain(person);
      expect(rows[0]).toMatchObject({ subject_digest: subjectDigest(org, person) });
    });

    it('keeps the latest choice per category, in any order, per org', async () => {
      const [org, person] = [orgId(), subject()];
      const store = createConsentOfRecord({ db, cache: cacheOf(), now });
      expect(await store.get(org, person)).toEqual({ status: 'missing' });
      expect(await store.record(org, person, { marketing: false, analytics: true }, T0 + 2_000)).toEqual({
        status: 'written',
      });
      // Older (a redelivery, another replica's late write): changes nothing it is older than.
      expect(await store.record(org, person, { marketing: true }, T0 + 1_000)).toEqual({ status: 'stale' });
      expect(
        await store.record(org, person, { marketing: true, personalization: false }, T0 + 1_500),
      ).toEqual({
        status: 'written',
      });
      const expected = {
        marketing: { granted: false, at: T0 + 2_000 },
        analytics: { granted: true, at: T0 + 2_000 },
        personalization: { granted: false, at: T0 + 1_500 },
      };
      expect(await store.get(org, person)).toEqual({ status: 'found', record: { categories: expected } });
      // Read past the cached copy: the row holds the same.
      expect(await createConsentOfRecord({ db, now }).get(org, person)).toEqual({
        status: 'found',
        record: { categories: expected },
      });
      // The same subject in another org is someone else.
      expect(await store.get(orgId(), person)).toEqual({ status: 'missing' });
    });

    it('a write replaces the copy a read cached, so a withdrawal holds at the next read', async () => {
      const [org, person] = [orgId(), subject()];
      const cache = cacheOf();
      const worker = createConsentOfRecord({ db, cache, now });
      const processor = createConsentOfRecord({ db, cache, now });
      // The worker's read caches "no record" for a minute…
      expect(await worker.get(org, person)).toEqual({ status: 'missing' });
      await processor.record(org, person, { marketing: false }, T0);
      // …and the processor's write replaces that copy at once.
      expect(withdrawnCategories(await worker.get(org, person))).toEqual(['marketing']);
      await processor.record(org, person, { marketing: true }, T0 + 1);
      expect(withdrawnCategories(await worker.get(org, person))).toEqual([]);
    });

    it('serves from the database when the cache fails or holds an unreadable copy', async () => {
      const [org, person] = [orgId(), subject()];
      await createConsentOfRecord({ db, now }).record(org, person, { analytics: false }, T0);
      const refused = () => Promise.reject(new Error('ECONNREFUSED'));
      const logger = recordingLogger();
      const down = createConsentOfRecord({
        db,
        now,
        logger,
        cache: { get: refused, set: refused, setIfAbsent: refused, delete: refused },
      });
      expect(withdrawnCategories(await down.get(org, person))).toEqual(['analytics']);
      expect(await down.record(org, person, { marketing: false }, T0 + 1)).toEqual({ status: 'written' });
      expect(withdrawnCategories(await down.get(org, person))).toEqual(['analytics', 'marketing']);
      expect(logger.entries.some((e) => e.msg === 'consent of record: cache failed')).toBe(true);

      const garbled: Pick<Cache, 'get' | 'set' | 'setIfAbsent' | 'delete'> = {
        get: async () => '{"v":1,"categories":{"marketing":"yes"}}',
        set: async () => undefined,
        setIfAbsent: async () => false,
        delete: async () => false,
      };
      const store = createConsentOfRecord({ db, now, cache: garbled });
      expect(withdrawnCategories(await store.get(org, person))).toEqual(['analytics', 'marketing']);
    });

    it('keeps a withdrawal 10 years and grants 13 months, then forgets and purges them', async () => {
      const [org, withdrew, granted] = [orgId(), subject(), subject()];
      const store = createConsentOfRecord({ db, now });
      await store.record(org, withdrew, { analytics: true }, T0);
      await store.record(org, withdrew, { marketing: false }, T0);
      await store.record(org, granted, { marketing: true }, T0);
      const expiry = async (s: string) => {
        const { rows } = await db.query(
          'SELECT expires_at FROM identity_consent_of_record WHERE org_id = $1 AND subject_digest = $2',
          [org, subjectDigest(org, s)],
        );
        return rowSchema.parse(rows[0]).expires_at.getTime();
      };
      expect(await expiry(withdrew)).toBe(T0 + DEFAULT_WITHDRAWAL_TTL_MS);
      expect(await expiry(granted)).toBe(T0 + DEFAULT_USER_CONSENT_TTL_MS);

      try {
        clock.now = T0 + DEFAULT_USER_CONSENT_TTL_MS;
        expect(await store.get(org, granted)).toEqual({ status: 'missing' });
        expect(withdrawnCategories(await store.get(org, withdrew))).toEqual(['marketing']);
        // An expired record holds nothing: a choice after it starts a new one.
        expect(await store.record(org, granted, { analytics: false }, clock.now)).toEqual({
          status: 'written',
        });
        expect(await store.get(org, granted)).toEqual({
          status: 'found',
          record: { categories: { analytics: { granted: false, at: clock.now } } },
        });

        clock.now = T0 + DEFAULT_WITHDRAWAL_TTL_MS;
        expect(await store.get(org, withdrew)).toEqual({ status: 'missing' });
        expect(await store.purgeExpired()).toBeGreaterThanOrEqual(1);
        const { rows } = await db.query(
          'SELECT count(*)::int AS n FROM identity_consent_of_record WHERE org_id = $1 AND subject_digest = $2',
          [org, subjectDigest(org, withdrew)],
        );
        expect(rows[0]).toEqual({ n: 0 });
      } finally {
        clock.now = T0;
      }
    });

    it('fails closed on an unreadable row, and a signed choice replaces it', async () => {
      const [org, person] = [orgId(), subject()];
      const store = createConsentOfRecord({ db, now });
      await store.record(org, person, { marketing: true }, T0);
      await db.query(
        `UPDATE identity_consent_of_record SET categories = '{"v":9}' WHERE org_id = $1 AND subject_digest = $2`,
        [org, subjectDigest(org, person)],
      );
      expect(await store.get(org, person)).toEqual({ status: 'corrupt' });
      expect(withdrawnCategories({ status: 'corrupt' })).toHaveLength(4);
      expect(await store.record(org, person, { analytics: true }, T0 + 1)).toEqual({ status: 'written' });
      expect(await store.get(org, person)).toEqual({
        status: 'found',
        record: { categories: { analytics: { granted: true, at: T0 + 1 } } },
      });
    });

    it('takes in a record kept in the cache only (before 0004, or by a processor not yet upgraded)', async () => {
      const [org, person, other] = [orgId(), subject(), subject()];
      const cache = cacheOf();
      const legacy = (categories: Record<string, UserChoice>) =>
        JSON.stringify({ v: 1, categories: categories });
      await cache.set(
        `consent:v2:u:${subjectDigest(org, person)}`,
        legacy({ marketing: { granted: false, at: 5 } }),
        {
          ttlMs: DAY,
        },
      );
      const store = createConsentOfRecord({ db, cache, now });
      // Read: moved into the row, so it no longer depends on the cache.
      expect(withdrawnCategories(await store.get(org, person))).toEqual(['marketing']);
      expect(withdrawnCategories(await createConsentOfRecord({ db, now }).get(org, person))).toEqual([
        'marketing',
      ]);
      // Write: a newer legacy copy (an old processor wrote it meanwhile) is merged in with the new choice.
      await cache.set(
        `consent:v2:u:${subjectDigest(org, other)}`,
        legacy({ analytics: { granted: false, at: 7 } }),
        {
          ttlMs: DAY,
        },
      );
      await store.record(org, other, { marketing: false }, 8);
      expect(withdrawnCategories(await createConsentOfRecord({ db, now }).get(org, other))).toEqual([
        'analytics',
        'marketing',
      ]);
      // Not looked at once switched off.
      const off = createConsentOfRecord({ db, cache: cacheOf(), now, legacyKeyPrefix: null });
      expect(await off.get(org, subject())).toEqual({ status: 'missing' });
    });

    it('loses no choice when many processors record one new person at once', async () => {
      const [org, person] = [orgId(), subject()];
      const categories = ['functional', 'analytics', 'marketing', 'personalization'] as const;
      const choices = Array.from({ length: 24 }, (_, i) => ({
        category: categories[i % 4] ?? 'marketing',
        granted: i % 3 !== 0,
        at: T0 + ((i * 7) % 11),
      }));
      const stores = Array.from({ length: 4 }, () => createConsentOfRecord({ db, cache: cacheOf(), now }));
      const writes = await Promise.all(
        choices.map((c, i) => stores[i % 4]?.record(org, person, { [c.category]: c.granted }, c.at)),
      );
      expect(writes.every((w) => w?.status === 'written' || w?.status === 'stale')).toBe(true);
      const expected = choices.reduce(
        (record, c) => mergeChoices(record, { [c.category]: c.granted }, c.at).categories,
        {},
      );
      expect(await createConsentOfRecord({ db, now }).get(org, person)).toEqual({
        status: 'found',
        record: { categories: expected },
      });
    });

    it('two writers of one person leave the later record in the cache, whatever order their caches answer', async () => {
      const [org, person] = [orgId(), subject()];
      const cache = cacheOf();
      // The first writer's cache call hangs until the second writer has had every chance to finish.
      let release!: () => void;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      let calls = 0;
      const slowFirst: Pick<Cache, 'get' | 'set' | 'setIfAbsent' | 'delete'> = {
        get: (key) => cache.get(key),
        setIfAbsent: (key, value, ttl) => cache.setIfAbsent(key, value, ttl),
        delete: (key) => cache.delete(key),
        set: async (key, value, options) => {
          calls += 1;
          if (calls === 1) await held;
          await cache.set(key, value, options);
        },
      };
      const first = createConsentOfRecord({ db, cache: slowFirst, now });
      const second = createConsentOfRecord({ db, cache: slowFirst, now });
      const one = first.record(org, person, { analytics: false }, T0);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const two = second.record(org, person, { analytics: false, marketing: false }, T0 + 1);
      await Promise.race([two, new Promise((resolve) => setTimeout(resolve, 300))]);
      release();
      await Promise.all([one, two]);
      const worker = createConsentOfRecord({ db, cache, now });
      expect(withdrawnCategories(await worker.get(org, person))).toEqual(['analytics', 'marketing']);
    });

    it("a worker's fill never replaces the copy a write made after the worker read the row", async () => {
      const [org, person] = [orgId(), subject()];
      const cache = cacheOf();
      const processor = createConsentOfRecord({ db, cache, now });
      // The worker reads the row before the withdrawal commits, and fills the cache only after it.
      let written: Promise<unknown> | undefined;
      const slowReader: Pick<Database, 'query' | 'transaction'> = {
        transaction: (fn, options) => db.transaction(fn, options),
        query: async (sql, params) => {
          const result = await db.query(sql, params);
          if (sql.includes('SELECT categories') && written === undefined) {
            written = processor.record(org, person, { marketing: false }, T0);
            await written;
          }
          return result as never;
        },
      };
      const worker = createConsentOfRecord({ db: slowReader, cache, now });
      expect(await worker.get(org, person)).toEqual({ status: 'missing' });
      expect(withdrawnCategories(await worker.get(org, person))).toEqual(['marketing']);
    });

    it('asks the database once per person and copy lifetime, record or not', async () => {
      const [org, person] = [orgId(), subject()];
      let queries = 0;
      const counting: Pick<Database, 'query' | 'transaction'> = {
        transaction: (fn, options) => db.transaction(fn, options),
        query: (sql, params) => {
          queries += 1;
          return db.query(sql, params);
        },
      };
      const store = createConsentOfRecord({ db: counting, cache: cacheOf(), now });
      for (let i = 0; i < 5; i += 1) expect(await store.get(org, person)).toEqual({ status: 'missing' });
      expect(queries).toBe(1);
    });

    it('drops the copy when the cache refuses the new one, so the next read sees the withdrawal', async () => {
      const [org, person] = [orgId(), subject()];
      const cache = cacheOf();
      const refusesSet: Pick<Cache, 'get' | 'set' | 'setIfAbsent' | 'delete'> = {
        get: (key) => cache.get(key),
        setIfAbsent: (key, value, ttl) => cache.setIfAbsent(key, value, ttl),
        delete: (key) => cache.delete(key),
        set: () => Promise.reject(new Error('OOM command not allowed')),
      };
      const store = createConsentOfRecord({ db, cache: refusesSet, now });
      expect(await store.get(org, person)).toEqual({ status: 'missing' });
      expect(await store.record(org, person, { marketing: false }, T0)).toEqual({ status: 'written' });
      expect(withdrawnCategories(await store.get(org, person))).toEqual(['marketing']);
    });

    it('fails closed on an unreadable cache-only record of a person without a row', async () => {
      const [org, person] = [orgId(), subject()];
      const cache = cacheOf();
      await cache.set(`consent:v2:u:${subjectDigest(org, person)}`, 'not json', { ttlMs: DAY });
      const store = createConsentOfRecord({ db, cache, now });
      expect(await store.get(org, person)).toEqual({ status: 'corrupt' });
      // A signed choice writes the row; from then on the row decides.
      expect(await store.record(org, person, { analytics: true }, T0)).toEqual({ status: 'written' });
      expect(await createConsentOfRecord({ db, cache: cacheOf(), now }).get(org, person)).toEqual({
        status: 'found',
        record: { categories: { analytics: { granted: true, at: T0 } } },
      });
    });

    it('says the database is unavailable (the event waits), naming the fix when the table is missing', async () => {
      const logger = recordingLogger();
      const bare = await target.fresh([]);
      const store = createConsentOfRecord({ db: bare, now, logger });
      expect(await store.get(orgId(), subject())).toEqual({ status: 'unavailable' });
      expect(await store.record(orgId(), subject(), { marketing: false }, T0)).toEqual({
        status: 'unavailable',
      });
      expect(JSON.stringify(logger.entries)).toContain('signal-cli migrate');
      await expect(store.record(orgId(), '', { marketing: false }, T0)).rejects.toMatchObject({
        code: 'consent_invalid_argument',
      });
      await expect(store.record(orgId(), subject(), { marketing: false }, -1)).rejects.toMatchObject({
        code: 'consent_invalid_argument',
      });
    });
  });
}
