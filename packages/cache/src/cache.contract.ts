import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type CacheError, isCacheError } from './errors';
import type { Cache } from './port';
import { RateLimiter } from './rate-limiter';

/**
 * The one behaviour suite every Cache adapter must pass (in-process and Redis). Exported as
 * `@signal/cache/contract`. Each test opens caches in fresh random namespaces and the target removes their
 * keys afterwards, so a shared server never needs to be empty.
 */
export interface CacheContractTarget {
  /** Opens a cache whose keys live under `namespace`; caches opened with different namespaces share a backend. */
  open(namespace: string): Promise<Cache>;
  /** Removes every key of `namespace` from the backend (runs after the cache is closed). */
  cleanup?(namespace: string): Promise<void>;
  /**
   * Opens a cache on a backend of its own that fills up after a few thousand small keys at most (an
   * in-process store with a small budget; a Redis with a small `maxmemory` and `noeviction`), for the
   * at-the-limit cases. Without it those cases are skipped.
   */
  openSmall?(namespace: string): Promise<Cache>;
  /** Releases whatever the target started (runs once, after the suite). */
  close?(): Promise<void>;
}

async function cacheError(promise: Promise<unknown>): Promise<CacheError> {
  try {
    await promise;
  } catch (err) {
    if (isCacheError(err)) return err;
    throw err;
  }
  throw new Error('expected a CacheError, but the operation succeeded');
}

export function describeCacheContract(
  name: string,
  makeTarget: () => CacheContractTarget,
  options: { readonly skip?: boolean } = {},
): void {
  describe.skipIf(options.skip === true)(`Cache contract: ${name}`, () => {
    const target = makeTarget();
    const opened: { namespace: string; cache: Cache }[] = [];

    async function fresh(): Promise<Cache> {
      const namespace = `contract-${randomBytes(6).toString('hex')}`;
      const cache = await target.open(namespace);
      opened.push({ namespace, cache });
      return cache;
    }

    afterEach(async () => {
      const done = opened.splice(0);
      await Promise.all(done.map(({ cache }) => cache.close()));
      await Promise.all(done.map(({ namespace }) => target.cleanup?.(namespace)));
    });

    afterAll(async () => {
      await target.close?.();
    });

    it('stores, replaces and deletes string values', async () => {
      const cache = await fresh();
      expect(await cache.get('missing')).toBeNull();
      await cache.set('k', 'v1', { ttlMs: 60_000 });
      expect(await cache.get('k')).toBe('v1');
      await cache.set('k', 'v2 ✓ ünïcode', { ttlMs: 60_000 });
      expect(await cache.get('k')).toBe('v2 ✓ ünïcode');
      const big = 'x'.repeat(200_000);
      await cache.set('pipeline:key:dk_live_1', big, { ttlMs: 60_000 });
      expect(await cache.get('pipeline:key:dk_live_1')).toBe(big);
      expect(await cache.delete('k')).toBe(true);
      expect(await cache.delete('k')).toBe(false);
      expect(await cache.get('k')).toBeNull();
    });

    // TTLs and windows of 1.5 s: a CI machine starved for a few hundred ms between two awaits must not
    // expire a value before the test has read it.
    it('expires values after their TTL', async () => {
      const cache = await fresh();
      await cache.set('short', 'v', { ttlMs: 1500 });
      await cache.set('long', 'v', { ttlMs: 60_000 });
      expect(await cache.setIfAbsent('token', 'used', 1500)).toBe(true);
      expect(await cache.get('short')).toBe('v');
      await sleep(1650);
      expect(await cache.get('short')).toBeNull();
      expect(await cache.get('long')).toBe('v');
      expect(await cache.setIfAbsent('token', 'used-again', 60_000)).toBe(true);
      expect(await cache.getAndDelete('short')).toBeNull();
    });

    it('rejects invalid TTLs, windows and keys without touching the cache', async () => {
      const cache = await fresh();
      for (const ttlMs of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        expect((await cacheError(cache.set('k', 'v', { ttlMs }))).code).toBe('invalid_argument');
        expect((await cacheError(cache.setIfAbsent('k', 'v', ttlMs))).code).toBe('invalid_argument');
        expect((await cacheError(cache.incrementWindow('k', ttlMs))).code).toBe('invalid_argument');
      }
      expect((await cacheError(cache.get(''))).code).toBe('invalid_argument');
      expect(await cache.get('k')).toBeNull();
    });

    it('setIfAbsent stores only when absent and keeps the first value', async () => {
      const cache = await fresh();
      expect(await cache.setIfAbsent('jti:1', 'first', 60_000)).toBe(true);
      expect(await cache.setIfAbsent('jti:1', 'second', 60_000)).toBe(false);
      expect(await cache.get('jti:1')).toBe('first');
      await cache.set('plain', 'x', { ttlMs: 60_000 });
      expect(await cache.setIfAbsent('plain', 'y', 60_000)).toBe(false);
    });

    it('lets exactly one of 1000 concurrent setIfAbsent calls win', async () => {
      const cache = await fresh();
      const results = await Promise.all(
        Array.from({ length: 1000 }, (_, i) => cache.setIfAbsent('jti:race', `caller-${i}`, 60_000)),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      const winner = results.indexOf(true);
      expect(await cache.get('jti:race')).toBe(`caller-${winner}`);
    });

    it('compareAndSet writes only over the expected value (null: only when absent), with the new TTL', async () => {
      const cache = await fresh();
      expect(await cache.compareAndSet('cas', 'nope', 'v1', 60_000)).toBe(false);
      expect(await cache.get('cas')).toBeNull();
      expect(await cache.compareAndSet('cas', null, 'v1', 60_000)).toBe(true);
      expect(await cache.compareAndSet('cas', null, 'v2', 60_000)).toBe(false);
      expect(await cache.compareAndSet('cas', 'v2', 'v3', 60_000)).toBe(false);
      expect(await cache.get('cas')).toBe('v1');
      expect(await cache.compareAndSet('cas', 'v1', 'v2', 1500)).toBe(true);
      expect(await cache.get('cas')).toBe('v2');
      await sleep(1650);
      expect(await cache.get('cas')).toBeNull();
      // An empty string is a value, not absence.
      await cache.set('empty', '', { ttlMs: 60_000 });
      expect(await cache.compareAndSet('empty', null, 'x', 60_000)).toBe(false);
      expect(await cache.compareAndSet('empty', '', 'x', 60_000)).toBe(true);
    });

    it('lets exactly one of 1000 concurrent compareAndSet calls over the same value win', async () => {
      const cache = await fresh();
      await cache.set('cas:race', 'v0', { ttlMs: 60_000 });
      const results = await Promise.all(
        Array.from({ length: 1000 }, (_, i) => cache.compareAndSet('cas:race', 'v0', `caller-${i}`, 60_000)),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await cache.get('cas:race')).toBe(`caller-${results.indexOf(true)}`);
    });

    it('getAndDelete hands the value to exactly one of 1000 concurrent callers', async () => {
      const cache = await fresh();
      await cache.set('once', 'payload', { ttlMs: 60_000 });
      const results = await Promise.all(Array.from({ length: 1000 }, () => cache.getAndDelete('once')));
      expect(results.filter((r) => r !== null)).toEqual(['payload']);
      expect(await cache.get('once')).toBeNull();
    });

    it('counts increments atomically within a window that later increments do not extend', async () => {
      const cache = await fresh();
      const first = await cache.incrementWindow('hits', 10_000);
      expect(first.count).toBe(1);
      expect(first.resetInMs).toBeGreaterThan(0);
      expect(first.resetInMs).toBeLessThanOrEqual(10_000);
      const counts = await Promise.all(
        Array.from({ length: 500 }, () => cache.incrementWindow('hits', 10_000)),
      );
      expect(counts.map((c) => c.count).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 500 }, (_, i) => i + 2),
      );
      expect(Math.max(...counts.map((c) => c.resetInMs))).toBeLessThanOrEqual(first.resetInMs);
    });

    it('restarts the count once the window has passed', async () => {
      const cache = await fresh();
      const first = await cache.incrementWindow('short', 150);
      expect(first.count).toBe(1);
      await sleep(first.resetInMs + 100);
      expect((await cache.incrementWindow('short', 150)).count).toBe(1);
    });

    it('refuses to increment a key holding text', async () => {
      const cache = await fresh();
      await cache.set('text', 'hello', { ttlMs: 60_000 });
      expect((await cacheError(cache.incrementWindow('text', 1_000))).code).toBe('command_failed');
      expect(await cache.get('text')).toBe('hello');
      // Only canonical decimal integers count (Redis INCR's rule).
      for (const notCanonical of ['007', '-0', '+1', ' 1', '1.0', '1e3', '']) {
        await cache.set('odd', notCanonical, { ttlMs: 60_000 });
        expect((await cacheError(cache.incrementWindow('odd', 1_000))).code).toBe('command_failed');
        expect(await cache.get('odd')).toBe(notCanonical);
      }
      await cache.set('negative', '-3', { ttlMs: 60_000 });
      expect((await cache.incrementWindow('negative', 1_000)).count).toBe(-2);
    });

    it('keeps namespaces apart', async () => {
      const a = await fresh();
      const b = await fresh();
      await a.set('shared-name', 'from a', { ttlMs: 60_000 });
      expect(await b.get('shared-name')).toBeNull();
      expect(await b.setIfAbsent('shared-name', 'from b', 60_000)).toBe(true);
      expect(await a.get('shared-name')).toBe('from a');
      expect(await b.getAndDelete('shared-name')).toBe('from b');
      expect(await a.get('shared-name')).toBe('from a');
      await a.incrementWindow('n', 60_000);
      expect((await b.incrementWindow('n', 60_000)).count).toBe(1);
    });

    it('rate-limits per subject with a Retry-After within the window', async () => {
      const cache = await fresh();
      const limiter = new RateLimiter(cache, { name: 'gateway', limit: 5, windowMs: 10_000 });
      const decisions = [];
      for (let i = 0; i < 7; i++) decisions.push(await limiter.check('dk_live_a'));
      expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, true, true, false, false]);
      expect(decisions.map((d) => d.remaining)).toEqual([4, 3, 2, 1, 0, 0, 0]);
      expect(decisions.map((d) => d.retryAfterMs > 0)).toEqual([
        false,
        false,
        false,
        false,
        false,
        true,
        true,
      ]);
      expect(Math.max(...decisions.map((d) => d.retryAfterMs))).toBeLessThanOrEqual(10_000);
      expect((await limiter.check('dk_live_b')).allowed).toBe(true);
    });

    it('allows a limited subject again once Retry-After has passed', async () => {
      const cache = await fresh();
      const limiter = new RateLimiter(cache, { name: 'delivery', limit: 1, windowMs: 1500 });
      expect((await limiter.check('meta')).allowed).toBe(true);
      const denied = await limiter.check('meta');
      expect(denied.allowed).toBe(false);
      await sleep(denied.retryAfterMs + 100);
      expect(await limiter.check('meta')).toMatchObject({ allowed: true, remaining: 0, retryAfterMs: 0 });
    });

    // Both adapters keep every claim until it expires: Redis under `maxmemory-policy noeviction`, the
    // in-process store by never evicting a live setIfAbsent entry. When full they refuse instead, and the
    // caller guarding single use fails closed.
    const { openSmall } = target;
    it.skipIf(openSmall === undefined)(
      'when full, refuses setIfAbsent with a retryable capacity error and loses no claim',
      async () => {
        if (openSmall === undefined) return;
        const namespace = `contract-${randomBytes(6).toString('hex')}`;
        const cache = await openSmall(namespace);
        opened.push({ namespace, cache });
        const claimed: string[] = [];
        let refusal: CacheError | undefined;
        for (let batch = 0; refusal === undefined && batch < 1_000; batch++) {
          const keys = Array.from({ length: 50 }, (_, i) => `xdt:jti:${batch}-${i}`);
          const results = await Promise.allSettled(keys.map((k) => cache.setIfAbsent(k, '1', 600_000)));
          results.forEach((result, i) => {
            const key = keys[i] as string;
            if (result.status === 'fulfilled') {
              expect(result.value).toBe(true);
              claimed.push(key);
            } else if (isCacheError(result.reason)) refusal = result.reason;
            else throw result.reason;
          });
        }
        expect(refusal?.code).toBe('capacity');
        expect(refusal?.retryable).toBe(true);
        expect(claimed.length).toBeGreaterThan(0);
        expect((await cacheError(cache.setIfAbsent('xdt:jti:one-more', '1', 600_000))).code).toBe('capacity');
        // Every claim that was granted still holds: nothing was evicted to make room.
        const held = await Promise.all(claimed.map((k) => cache.get(k)));
        expect(held.filter((v) => v !== '1')).toEqual([]);
        // Deleting claims makes room again.
        await Promise.all(claimed.slice(0, Math.ceil(claimed.length / 4)).map((k) => cache.delete(k)));
        expect(await cache.setIfAbsent('xdt:jti:one-more', '1', 600_000)).toBe(true);
      },
    );

    it('answers ping, closes idempotently and refuses work afterwards', async () => {
      const cache = await fresh();
      await cache.ping();
      await cache.close();
      await cache.close();
      expect((await cacheError(cache.get('k'))).code).toBe('closed');
      expect((await cacheError(cache.setIfAbsent('k', 'v', 1_000))).code).toBe('closed');
      expect((await cacheError(cache.ping())).code).toBe('closed');
    });
  });
}
