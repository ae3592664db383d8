import { randomBytes } from 'node:crypto';
import { type Cache, createMemoryCache, createRedisCache, MemoryCacheStore } from '@signal/cache';
import { REDIS_URL, redisAvailable } from '@signal/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { decide } from './decide';
import { normaliseConsent } from './normalise';
import { DEFAULT_CONSENT_REQUIREMENTS } from './requirements';
import type { ConsentState } from './state';
import { createCacheConsentStateStore, resolveLatestConsent } from './state-store';

/**
 * The consent state store on the real cache adapters: Redis (127.0.0.1:6379, a random namespace per run) and
 * the in-process adapter. "Two processes" are two caches over the same data (two Redis connections; two
 * in-process caches over one store), each with its own state store, as two processor/worker replicas have.
 */

const ORG = 'org_1';
// Skips without Redis locally; throws in CI (SIGNAL_REQUIRE_SERVICES=1).
const redisUp = await redisAvailable();

/** Test entries expire within minutes: the Redis is shared (and never FLUSHALLed). */
const TTL_MS = 120_000;
const meta = DEFAULT_CONSENT_REQUIREMENTS.meta;
const de = 'DE';
const marketing = (granted: boolean, observedAt: number): ConsentState =>
  normaliseConsent({ categories: { analytics: true, marketing: granted } }, { observedAt, jurisdiction: de });

interface Adapter {
  readonly name: string;
  readonly skip: boolean;
  /** Two caches over the same data, as two processes see it. */
  open(): Promise<[Cache, Cache]>;
}

const toClose: Cache[] = [];
const adapters: Adapter[] = [
  {
    name: 'Redis',
    skip: !redisUp,
    async open() {
      const namespace = `consent-int-${randomBytes(6).toString('hex')}`;
      const a = await createRedisCache({ url: REDIS_URL, namespace });
      const b = await createRedisCache({ url: REDIS_URL, namespace });
      toClose.push(a, b);
      return [a, b];
    },
  },
  {
    name: 'in-process',
    skip: false,
    async open() {
      const store = new MemoryCacheStore({});
      const a = createMemoryCache({ store, namespace: 'consent-int' });
      const b = createMemoryCache({ store, namespace: 'consent-int' });
      toClose.push(a, b);
      return [a, b];
    },
  },
];

afterAll(async () => {
  // Keys expire by their TTL; the random namespaces keep runs apart (never FLUSHALL).
  await Promise.all(toClose.map((c) => c.close()));
});

const visitor = () => `anon-${randomBytes(6).toString('hex')}`;

describe.each(adapters)('consent state store on the $name cache adapter', (adapter) => {
  it.skipIf(adapter.skip)('stores and reads back a state; an unknown visitor is missing', async () => {
    const [cache] = await adapter.open();
    const store = createCacheConsentStateStore({ cache, ttlMs: TTL_MS });
    const id = visitor();
    const state = marketing(true, 1_000);
    expect(await store.set(ORG, id, state)).toEqual({ status: 'written' });
    expect(await store.get(ORG, id)).toEqual({ status: 'found', state });
    expect(await store.get(ORG, visitor())).toEqual({ status: 'missing' });
  });

  it.skipIf(adapter.skip)(
    'last writer wins by time: an older state never overwrites a newer one',
    async () => {
      const [cache] = await adapter.open();
      const store = createCacheConsentStateStore({ cache, ttlMs: TTL_MS });
      const id = visitor();
      const newer = marketing(false, 2_000);
      await store.set(ORG, id, newer);
      expect(await store.set(ORG, id, marketing(true, 1_000))).toEqual({ status: 'stale', current: newer });
      expect(await store.set(ORG, id, newer)).toEqual({ status: 'stale', current: newer });
      expect(await store.get(ORG, id)).toEqual({ status: 'found', state: newer });
    },
  );

  it.skipIf(adapter.skip)(
    'two processes writing one visitor at once: the newest state wins, every time',
    async () => {
      const [cacheA, cacheB] = await adapter.open();
      const a = createCacheConsentStateStore({ cache: cacheA, ttlMs: TTL_MS });
      const b = createCacheConsentStateStore({ cache: cacheB, ttlMs: TTL_MS });
      for (let round = 0; round < 100; round += 1) {
        const id = visitor();
        const older = marketing(true, 1_000 + round);
        const newer = marketing(false, 2_000 + round);
        // Alternate which process has the newer state and which write starts first.
        const [first, second] = round % 2 === 0 ? [a, b] : [b, a];
        const writes =
          round % 4 < 2
            ? [first.set(ORG, id, older), second.set(ORG, id, newer)]
            : [second.set(ORG, id, newer), first.set(ORG, id, older)];
        await Promise.all(writes);
        expect(await a.get(ORG, id), `round ${round}`).toEqual({ status: 'found', state: newer });
      }
    },
  );

  it.skipIf(adapter.skip)(
    'a revocation between ingestion and delivery wins at stage 2, and a late re-grant from an older event does not',
    async () => {
      const [processorCache, workerCache] = await adapter.open();
      const processor = createCacheConsentStateStore({ cache: processorCache, ttlMs: TTL_MS });
      const worker = createCacheConsentStateStore({ cache: workerCache, ttlMs: TTL_MS });
      const id = visitor();

      // Stage 1 (processor): the event arrives with marketing granted and is allowed; its state is recorded.
      const atIngestion = marketing(true, 1_000);
      expect(decide(atIngestion, meta, { stage: 1, jurisdiction: de }).outcome).toBe('allow');
      expect(await processor.set(ORG, id, atIngestion)).toEqual({ status: 'written' });

      // Before delivery the visitor withdraws (a consent event, processed by another replica).
      const revoked = marketing(false, 2_000);
      expect(await worker.set(ORG, id, revoked)).toEqual({ status: 'written' });

      // Stage 2 (worker): the latest state decides, not the one the event carried.
      const latest = await resolveLatestConsent(worker, ORG, id, atIngestion);
      expect(latest).toEqual({ state: revoked, source: 'store' });
      expect(decide(latest.state, meta, { stage: 2, jurisdiction: de }).outcome).toBe('drop');

      // A redelivered copy of the original event reaches the processor again: it must not re-grant.
      expect((await processor.set(ORG, id, atIngestion)).status).toBe('stale');
      const again = await resolveLatestConsent(worker, ORG, id, atIngestion);
      expect(decide(again.state, meta, { stage: 2, jurisdiction: de }).outcome).toBe('drop');
    },
  );
});
