import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isCacheError } from './errors';
import { createMemoryCache, MemoryCacheStore } from './memory.adapter';
import { RateLimiter } from './rate-limiter';

describe('RateLimiter', () => {
  it('allows exactly `limit` requests per window for any request pattern', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 150 }), { minLength: 1, maxLength: 60 }),
        async (limit, gaps) => {
          let now = 0;
          const store = new MemoryCacheStore({ now: () => now });
          const limiter = new RateLimiter(createMemoryCache({ store }), { name: 't', limit, windowMs: 100 });
          let windowStart: number | undefined;
          let inWindow = 0;
          for (const gap of gaps) {
            now += gap;
            if (windowStart === undefined || now >= windowStart + 100) {
              windowStart = now;
              inWindow = 0;
            }
            inWindow += 1;
            const decision = await limiter.check('subject');
            expect(decision.allowed).toBe(inWindow <= limit);
            expect(decision.retryAfterMs).toBe(decision.allowed ? 0 : windowStart + 100 - now);
          }
          store.close();
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses a non-positive limit', () => {
    const cache = createMemoryCache();
    const err = (() => {
      try {
        return new RateLimiter(cache, { name: 'x', limit: 0, windowMs: 1000 });
      } catch (e) {
        return e;
      }
    })();
    expect(isCacheError(err) && err.code).toBe('invalid_config');
  });

  it('passes cache failures through so the caller decides to fail open or closed', async () => {
    const cache = createMemoryCache();
    const limiter = new RateLimiter(cache, { name: 'x', limit: 1, windowMs: 1000 });
    await cache.close();
    await expect(limiter.check('s')).rejects.toMatchObject({ code: 'closed' });
  });
});
