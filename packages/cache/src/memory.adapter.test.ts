import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeCacheContract } from './cache.contract';
import { isCacheError } from './errors';
import { createMemoryCache, MemoryCacheStore } from './memory.adapter';
import { RateLimiter } from './rate-limiter';

describeCacheContract('in-process', () => {
  // One store shared by every namespace, as in the all-in-one process.
  const store = new MemoryCacheStore({ maxEntries: 10_000 });
  return {
    open: async (namespace) => createMemoryCache({ store, namespace }),
    // A private store whose claims budget fills in a few dozen writes.
    openSmall: async (namespace) => createMemoryCache({ namespace, maxEntries: 64 }),
  };
});

function manualClock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => 'succeeded',
    (err: unknown) => (isCacheError(err) ? err.code : err),
  );
}

describe('MemoryCacheStore', () => {
  it('evicts the least recently used entry when full', async () => {
    const cache = createMemoryCache({ maxEntries: 3 });
    await cache.set('a', '1', { ttlMs: 60_000 });
    await cache.set('b', '2', { ttlMs: 60_000 });
    await cache.set('c', '3', { ttlMs: 60_000 });
    expect(await cache.get('a')).toBe('1');
    await cache.set('d', '4', { ttlMs: 60_000 });
    expect(await cache.get('b')).toBeNull();
    expect([await cache.get('a'), await cache.get('c'), await cache.get('d')]).toEqual(['1', '3', '4']);
    await cache.close();
  });

  it('never evicts an unexpired setIfAbsent entry, so a consumed token id cannot be replayed', async () => {
    const clock = manualClock();
    const cache = createMemoryCache({ maxEntries: 2, now: clock.now });
    expect(await cache.setIfAbsent('jti:1', 'used', 1_000)).toBe(true);
    await cache.set('x', '1', { ttlMs: 60_000 });
    await cache.set('y', '2', { ttlMs: 60_000 });
    expect(await cache.setIfAbsent('jti:1', 'replay', 1_000)).toBe(false);
    expect(await cache.setIfAbsent('jti:2', 'used', 1_000)).toBe(true);
    const full = await cache.setIfAbsent('jti:3', 'used', 1_000).catch((err: unknown) => err);
    expect(isCacheError(full) && full.code).toBe('capacity');
    expect(isCacheError(full) && full.retryable).toBe(true);
    clock.advance(1_001);
    expect(await cache.setIfAbsent('jti:3', 'used', 1_000)).toBe(true);
    await cache.close();
  });

  describe('an increment counts as a use (rate limits survive eviction)', () => {
    it('keeps the counter of a limiter that is denying a client when other counters are evicted', async () => {
      const cache = createMemoryCache({ maxEntries: 3 });
      const limiter = new RateLimiter(cache, { name: 'login', limit: 2, windowMs: 60_000 });
      await limiter.check('attacker'); // the oldest counter
      await cache.incrementWindow('other:1', 60_000);
      await cache.incrementWindow('other:2', 60_000);
      await limiter.check('attacker');
      expect((await limiter.check('attacker')).allowed).toBe(false);
      await cache.incrementWindow('other:3', 60_000); // full: the least recently used counter goes
      expect((await limiter.check('attacker')).allowed).toBe(false);
      expect((await cache.incrementWindow('other:1', 60_000)).count).toBe(1);
      await cache.close();
    });

    it('does not let unrelated writes reset a denying limiter', async () => {
      const store = new MemoryCacheStore({ maxEntries: 3 });
      const cache = createMemoryCache({ store, namespace: 'n' });
      const limiter = new RateLimiter(cache, { name: 'login', limit: 2, windowMs: 60_000 });
      await limiter.check('attacker');
      await cache.set('a', '1', { ttlMs: 60_000 });
      await cache.set('b', '1', { ttlMs: 60_000 });
      await limiter.check('attacker');
      expect((await limiter.check('attacker')).allowed).toBe(false);
      await cache.set('c', '1', { ttlMs: 60_000 });
      expect((await limiter.check('attacker')).allowed).toBe(false);
      store.close();
    });
  });

  describe('a full pool drops expired entries before it evicts a live one', () => {
    it('keeps a live value when more recently used values have expired', async () => {
      const clock = manualClock();
      const cache = createMemoryCache({ maxEntries: 3, now: clock.now, sweepIntervalMs: 3_600_000 });
      await cache.set('consent:anon-1', 'denied', { ttlMs: 1_000_000 });
      await cache.set('lock:1', '1', { ttlMs: 10 });
      await cache.set('lock:2', '1', { ttlMs: 10 });
      clock.advance(100);
      await cache.set('lock:3', '1', { ttlMs: 10 });
      expect(await cache.get('consent:anon-1')).toBe('denied');
      await cache.close();
    });

    it('keeps a live value when the store also holds expired single-use entries', async () => {
      const clock = manualClock();
      const store = new MemoryCacheStore({ maxEntries: 3, now: clock.now, sweepIntervalMs: 3_600_000 });
      const cache = createMemoryCache({ store });
      await cache.set('consent', 'state', { ttlMs: 1_000_000 });
      await cache.setIfAbsent('jti1', '1', 10);
      await cache.setIfAbsent('jti2', '1', 10);
      clock.advance(100);
      expect(await cache.setIfAbsent('jti3', '1', 10)).toBe(true);
      expect(await cache.get('consent')).toBe('state');
      store.close();
    });

    it('drops the entry that expires first, however old or recently used it is', async () => {
      const clock = manualClock();
      const store = new MemoryCacheStore({ maxEntries: 4, now: clock.now, sweepIntervalMs: 3_600_000 });
      store.set('long', 'v', 1_000);
      store.set('short', 'v', 10);
      store.set('mid', 'v', 500);
      store.set('longer', 'v', 2_000);
      expect(store.get('short')).toBe('v'); // most recently used, but expired below
      clock.advance(20);
      store.set('new', 'v', 1_000);
      expect(['long', 'short', 'mid', 'longer', 'new'].map((k) => store.get(k))).toEqual([
        'v',
        null,
        'v',
        'v',
        'v',
      ]);
      store.close();
    });
  });

  describe('budgets per pool: one kind of state cannot starve another', () => {
    it('refuses a claim when the claims pool is full, while values and counters still work', async () => {
      const cache = createMemoryCache({ limits: { claims: 2, values: 2, counters: 2 } });
      expect(await cache.setIfAbsent('xdt:jti:1', '1', 60_000)).toBe(true);
      expect(await cache.setIfAbsent('hmac-seen:1', '1', 60_000)).toBe(true);
      expect(await failure(cache.setIfAbsent('xdt:jti:2', '1', 60_000))).toBe('capacity');
      await cache.set('login-lock:a', '1', { ttlMs: 60_000 });
      expect(await cache.compareAndSet('consent:a', null, 'granted', 60_000)).toBe(true);
      expect((await cache.incrementWindow('ratelimit:a', 60_000)).count).toBe(1);
      // Values, counters and the refused claim did not push out a claim.
      expect(await cache.setIfAbsent('xdt:jti:1', 'replay', 60_000)).toBe(false);
      expect(await cache.setIfAbsent('hmac-seen:1', 'replay', 60_000)).toBe(false);
      await cache.close();
    });

    it('does not let values or counters evict each other', async () => {
      const cache = createMemoryCache({ maxEntries: 2 }); // each pool
      await cache.incrementWindow('login-fail:a', 60_000);
      await cache.incrementWindow('login-fail:a', 60_000);
      await cache.set('login-lock:b', '1', { ttlMs: 60_000 });
      for (let i = 0; i < 10; i++) await cache.set(`consent:${i}`, 'x', { ttlMs: 60_000 });
      expect((await cache.incrementWindow('login-fail:a', 60_000)).count).toBe(3);
      for (let i = 0; i < 10; i++) await cache.incrementWindow(`ratelimit:${i}`, 60_000);
      expect(await cache.get('consent:9')).toBe('x');
      await cache.close();
    });

    it('gives an evictable family a budget of its own, evicting its least recently used keys, setIfAbsent ones too', async () => {
      const store = new MemoryCacheStore({
        maxEntries: 2,
        evictableFamilies: [{ keyPrefix: 'dedup:', maxEntries: 3 }],
      });
      const cache = createMemoryCache({ store, namespace: 'signal' });
      await cache.set('consent:v1:anon', 'denied', { ttlMs: 60_000 });
      expect(await cache.setIfAbsent('xdt:jti:1', '1', 60_000)).toBe(true);
      await cache.incrementWindow('ratelimit:gateway:pk', 60_000);
      for (let i = 0; i < 10; i++)
        expect(await cache.setIfAbsent(`dedup:v2:evt-${i}`, 'p', 60_000)).toBe(true);
      expect(store.usage()).toContainEqual({ pool: 'dedup:', entries: 3, maxEntries: 3 });
      // The dedup window shrank to the last three markers; older ones are forgotten...
      expect(await cache.setIfAbsent('dedup:v2:evt-9', 'p', 60_000)).toBe(false);
      expect(await cache.setIfAbsent('dedup:v2:evt-0', 'p', 60_000)).toBe(true);
      // ...and nothing else was touched.
      expect(await cache.get('consent:v1:anon')).toBe('denied');
      expect(await cache.setIfAbsent('xdt:jti:1', 'replay', 60_000)).toBe(false);
      expect((await cache.incrementWindow('ratelimit:gateway:pk', 60_000)).count).toBe(2);
      expect(await cache.setIfAbsent('xdt:jti:2', '1', 60_000)).toBe(true);
      expect(await failure(cache.setIfAbsent('xdt:jti:3', '1', 60_000))).toBe('capacity');
      store.close();
    });

    it('matches family prefixes on the key as the caller names it, after the namespace', async () => {
      const store = new MemoryCacheStore({
        maxEntries: 1,
        evictableFamilies: [{ keyPrefix: 'dedup:', maxEntries: 1 }],
      });
      const plain = createMemoryCache({ store });
      const named = createMemoryCache({ store, namespace: 'dedup' });
      expect(await plain.setIfAbsent('dedup:a', '1', 60_000)).toBe(true);
      expect(await plain.setIfAbsent('dedup:b', '1', 60_000)).toBe(true); // evicts dedup:a
      expect(await named.setIfAbsent('claim', '1', 60_000)).toBe(true); // key "dedup:claim": a claim
      expect(await failure(named.setIfAbsent('other', '1', 60_000))).toBe('capacity');
      expect(await named.setIfAbsent('dedup:c', '1', 60_000)).toBe(true); // "dedup:dedup:c": family
      expect(store.usage().map((u) => u.entries)).toEqual([1, 0, 0, 1]);
      store.close();
    });

    it('warns when a full pool evicts or refuses, at most once a minute per pool', async () => {
      const clock = manualClock();
      const warnings: [object, string][] = [];
      const logger = { warn: (obj: object, msg: string) => warnings.push([obj, msg]) };
      const cache = createMemoryCache({ maxEntries: 1, now: clock.now, logger });
      await cache.set('a', '1', { ttlMs: 3_600_000 });
      await cache.set('b', '1', { ttlMs: 3_600_000 });
      await cache.set('c', '1', { ttlMs: 3_600_000 });
      await cache.setIfAbsent('jti:1', '1', 3_600_000);
      await failure(cache.setIfAbsent('jti:2', '1', 3_600_000));
      expect(warnings.map(([obj]) => obj)).toEqual([
        { pool: 'values', maxEntries: 1, times: 1 },
        { pool: 'claims', maxEntries: 1, times: 1 },
      ]);
      clock.advance(60_000);
      await cache.set('d', '1', { ttlMs: 3_600_000 });
      expect(warnings.at(-1)?.[0]).toEqual({ pool: 'values', maxEntries: 1, times: 2 });
      expect(JSON.stringify(warnings)).not.toMatch(/jti|"[abcd]"/);
      await cache.close();
    });

    it('rejects invalid budgets and overlapping families', () => {
      const invalid = (options: ConstructorParameters<typeof MemoryCacheStore>[0]) => () =>
        new MemoryCacheStore(options).close();
      expect(invalid({ maxEntries: 0 })).toThrow(/maxEntries/);
      expect(invalid({ limits: { claims: 1.5 } })).toThrow(/claims/);
      expect(invalid({ evictableFamilies: [{ keyPrefix: '', maxEntries: 1 }] })).toThrow(/keyPrefix/);
      expect(
        invalid({
          evictableFamilies: [
            { keyPrefix: 'dedup:', maxEntries: 1 },
            { keyPrefix: 'dedup:v2:', maxEntries: 1 },
          ],
        }),
      ).toThrow(/overlap/);
    });
  });

  it('behaves like a straightforward model of the pools for any sequence of operations', () => {
    type Op =
      | { op: 'set' | 'setIfAbsent' | 'incr'; key: number; ttl: number }
      | { op: 'get' | 'delete'; key: number }
      | { op: 'advance'; ms: number };
    const key = fc.integer({ min: 0, max: 7 });
    const ttl = fc.integer({ min: 1, max: 50 });
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constantFrom('set' as const, 'setIfAbsent' as const, 'incr' as const), key, ttl }),
      fc.record({ op: fc.constantFrom('get' as const, 'delete' as const), key }),
      fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 30 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80, size: 'max' }), (ops) => {
        let now = 0;
        const store = new MemoryCacheStore({ maxEntries: 3, now: () => now, sweepIntervalMs: 3_600_000 });
        // The model: per pool, keys in recency order with value and expiry; linear scans everywhere.
        type Held = { key: string; value: string; expiresAt: number; pool: 'claims' | 'values' | 'counters' };
        let held: Held[] = [];
        const live = (k: string) => {
          const h = held.find((e) => e.key === k);
          if (h !== undefined && h.expiresAt <= now) held = held.filter((e) => e !== h);
          return h !== undefined && h.expiresAt > now ? h : undefined;
        };
        const use = (h: Held) => {
          held = [...held.filter((e) => e !== h), h];
        };
        const makeRoom = (pool: Held['pool']) => {
          const inPool = () => held.filter((e) => e.pool === pool);
          while (inPool().length >= 3) {
            const expired = inPool()
              .filter((e) => e.expiresAt <= now)
              .sort((a, b) => a.expiresAt - b.expiresAt)[0];
            const victim = expired ?? (pool === 'claims' ? undefined : inPool()[0]);
            if (victim === undefined) return false;
            held = held.filter((e) => e !== victim);
          }
          return true;
        };
        const outcome = (run: () => unknown) => {
          try {
            return run();
          } catch (err) {
            return isCacheError(err) ? err.code : err;
          }
        };
        for (const step of ops) {
          if (step.op === 'advance') {
            now += step.ms;
            continue;
          }
          const k = `k${step.key}`;
          let expected: unknown;
          let actual: unknown;
          switch (step.op) {
            case 'get': {
              const h = live(k);
              if (h !== undefined && h.pool !== 'claims') use(h);
              expected = h?.value ?? null;
              actual = store.get(k);
              break;
            }
            case 'delete': {
              const h = live(k);
              held = held.filter((e) => e !== h);
              expected = h !== undefined;
              actual = store.delete(k);
              break;
            }
            case 'set': {
              const h = live(k);
              if (h?.pool === 'values') held = held.filter((e) => e !== h);
              else makeRoom('values');
              held = [
                ...held.filter((e) => e !== h),
                { key: k, value: 'v', expiresAt: now + step.ttl, pool: 'values' },
              ];
              expected = undefined;
              actual = store.set(k, 'v', step.ttl);
              break;
            }
            case 'setIfAbsent': {
              if (live(k) !== undefined) expected = false;
              else if (!makeRoom('claims')) expected = 'capacity';
              else {
                held.push({ key: k, value: 'c', expiresAt: now + step.ttl, pool: 'claims' });
                expected = true;
              }
              actual = outcome(() => store.setIfAbsent(k, 'c', step.ttl));
              break;
            }
            case 'incr': {
              const h = live(k);
              if (h === undefined) {
                makeRoom('counters');
                held.push({ key: k, value: '1', expiresAt: now + step.ttl, pool: 'counters' });
                expected = 1;
              } else if (!/^\d+$/.test(h.value)) {
                expected = 'command_failed';
              } else {
                h.value = String(Number(h.value) + 1);
                if (h.pool !== 'claims') use(h);
                expected = Number(h.value);
              }
              actual = outcome(() => store.incrementWindow(k, step.ttl).count);
              break;
            }
          }
          expect(actual).toEqual(expected);
        }
        for (let i = 0; i < 8; i++) {
          expect(store.get(`k${i}`)).toBe(
            held.find((e) => e.key === `k${i}` && e.expiresAt > now)?.value ?? null,
          );
        }
        store.close();
      }),
      { numRuns: 300 },
    );
  });

  it('sweeps expired entries in bounded batches', () => {
    const clock = manualClock();
    const store = new MemoryCacheStore({ now: clock.now, sweepBatch: 10, sweepIntervalMs: 60_000 });
    for (let i = 0; i < 25; i++) store.set(`short:${i}`, 'v', 100);
    for (let i = 0; i < 5; i++) store.set(`long:${i}`, 'v', 10_000);
    clock.advance(101);
    store.sweep();
    expect(store.size).toBe(20);
    store.sweep();
    store.sweep();
    expect(store.size).toBe(5);
    store.close();
  });

  it('leaves a shared store open when one namespaced view closes', async () => {
    const store = new MemoryCacheStore();
    const a = createMemoryCache({ store, namespace: 'a' });
    const b = createMemoryCache({ store, namespace: 'b' });
    await b.set('k', 'v', { ttlMs: 60_000 });
    await a.close();
    expect(await b.get('k')).toBe('v');
    store.close();
    await expect(b.get('k')).rejects.toMatchObject({ code: 'closed' });
  });

  it('rejects an invalid namespace', () => {
    expect(() => createMemoryCache({ namespace: 'has space' })).toThrow(/namespace/);
  });
});
