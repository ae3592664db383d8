import { type Cache, isCacheError, RateLimiter } from '@signal/cache';
import { loadConfig } from '@signal/config';
import { afterEach, describe, expect, it } from 'vitest';
import { EMBEDDED_CACHE_LIMITS, type EmbeddedCacheLimits, openCache } from './infrastructure';

const DAY_MS = 24 * 60 * 60 * 1000;
const CONSENT = JSON.stringify({ v: 1, state: 'denied' });

function recordingLogger() {
  const warnings: object[] = [];
  const ignore = () => {};
  return {
    warnings,
    logger: { debug: ignore, info: ignore, error: ignore, warn: (obj: object) => warnings.push(obj) },
  };
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => 'succeeded',
    (err: unknown) => (isCacheError(err) ? err.code : err),
  );
}

describe('openCache, embedded (the all-in-one, no REDIS_URL)', () => {
  let cache: Cache | undefined;
  afterEach(async () => {
    await cache?.close();
    cache = undefined;
  });

  async function embedded(embeddedLimits?: Partial<EmbeddedCacheLimits>, env: Record<string, string> = {}) {
    const { warnings, logger } = recordingLogger();
    const config = loadConfig({ env: { SIGNAL_NAMESPACE: 'signal', ...env }, cwd: '/nonexistent' });
    cache = await openCache(config, logger, {
      allowEmbedded: true,
      ...(embeddedLimits === undefined ? {} : { embeddedLimits }),
    });
    return { cache, warnings };
  }

  /** As the event processor marks each event it has seen (24 h). */
  async function markEvents(c: Cache, count: number): Promise<void> {
    let marked = 0;
    for (let i = 0; i < count; i++) {
      if (await c.setIfAbsent(`dedup:v2:org-1:pl-1:evt-${i}`, `signal.raw-events:0:${i}`, DAY_MS)) marked++;
    }
    expect(marked).toBe(count);
  }

  it('keeps consent state, rate limits and token claims working past a dedup budget of events', async () => {
    const { cache } = await embedded();
    const limiter = new RateLimiter(cache, { name: 'gateway-1', limit: 1, windowMs: 60_000 });
    expect(await cache.compareAndSet('consent:v1:anon-1', null, CONSENT, 395 * DAY_MS)).toBe(true);
    expect((await limiter.check('pk_1')).allowed).toBe(true);
    expect(await cache.setIfAbsent('xdt:jti:used', '1', 120_000)).toBe(true);

    // More events than the dedup budget, and than the 100 000 entries the whole store once held.
    const events = 250_000;
    await markEvents(cache, events);

    expect(await cache.get('consent:v1:anon-1')).toBe(CONSENT);
    expect(await cache.compareAndSet('consent:v1:anon-2', null, CONSENT, 395 * DAY_MS)).toBe(true);
    expect((await limiter.check('pk_1')).allowed).toBe(false);
    expect(await cache.setIfAbsent('xdt:jti:used', '1', 120_000)).toBe(false);
    expect(await cache.setIfAbsent('xdt:jti:new', '1', 120_000)).toBe(true);
    // The most recent events are still recognised as duplicates.
    expect(await cache.setIfAbsent(`dedup:v2:org-1:pl-1:evt-${events - 1}`, 'again', DAY_MS)).toBe(false);
    expect(EMBEDDED_CACHE_LIMITS.dedupMarkers).toBeLessThan(events);
  }, 60_000);

  it('bounds each kind of state by its own budget: dedup markers evict their own oldest, claims fail closed', async () => {
    const { cache, warnings } = await embedded({
      dedupMarkers: 100,
      consentStates: 50,
      claims: 20,
      values: 10,
      counters: 20,
    });
    const limiter = new RateLimiter(cache, { name: 'login', limit: 3, windowMs: 60_000 });
    for (let i = 0; i < 10; i++) {
      expect(await cache.compareAndSet(`consent:v1:anon-${i}`, null, CONSENT, 395 * DAY_MS)).toBe(true);
      expect(await cache.setIfAbsent(`xdt:jti:${i}`, '1', 120_000)).toBe(true);
      await cache.set(`login-lock:${i}`, '1', { ttlMs: 60_000 });
    }
    for (let i = 0; i < 4; i++) await limiter.check('attacker');

    await markEvents(cache, 1_000);

    // The dedup window is the last 100 events; older markers were evicted, nothing else was.
    expect(await cache.setIfAbsent('dedup:v2:org-1:pl-1:evt-999', 'x', DAY_MS)).toBe(false);
    expect(await cache.setIfAbsent('dedup:v2:org-1:pl-1:evt-900', 'x', DAY_MS)).toBe(false);
    expect(await cache.setIfAbsent('dedup:v2:org-1:pl-1:evt-0', 'x', DAY_MS)).toBe(true);
    expect(warnings).toContainEqual({ pool: 'dedup:', maxEntries: 100, times: 1 });
    for (let i = 0; i < 10; i++) {
      expect(await cache.get(`consent:v1:anon-${i}`)).toBe(CONSENT);
      expect(await cache.setIfAbsent(`xdt:jti:${i}`, 'replay', 120_000)).toBe(false);
      expect(await cache.get(`login-lock:${i}`)).toBe('1');
    }
    expect((await limiter.check('attacker')).allowed).toBe(false);

    // Claims (token ids, HMAC replay markers) are never evicted: once their budget is full they fail closed,
    // and only they do.
    for (let i = 10; i < 20; i++) expect(await cache.setIfAbsent(`hmac-seen:${i}`, '1', 660_000)).toBe(true);
    expect(await failure(cache.setIfAbsent('xdt:jti:one-too-many', '1', 120_000))).toBe('capacity');
    expect(await cache.setIfAbsent('xdt:jti:0', 'replay', 120_000)).toBe(false);
    expect(await cache.compareAndSet('consent:v1:anon-new', null, CONSENT, 395 * DAY_MS)).toBe(true);
    expect((await limiter.check('someone-else')).allowed).toBe(true);
    expect(await cache.setIfAbsent('dedup:v2:org-1:pl-1:evt-1000', 'p', DAY_MS)).toBe(true);
  });

  it('takes its budgets from EMBEDDED_DEDUP_MARKERS, EMBEDDED_CONSENT_STATES and EMBEDDED_CLAIMS', async () => {
    const { cache, warnings } = await embedded(undefined, {
      EMBEDDED_DEDUP_MARKERS: '1000',
      EMBEDDED_CONSENT_STATES: '1000',
      EMBEDDED_CLAIMS: '1000',
    });
    await markEvents(cache, 1_500);
    // The dedup window is the last 1,000 events.
    expect(await cache.setIfAbsent('dedup:v2:org-1:pl-1:evt-1499', 'x', DAY_MS)).toBe(false);
    expect(await cache.setIfAbsent('dedup:v2:org-1:pl-1:evt-500', 'x', DAY_MS)).toBe(false);
    expect(await cache.setIfAbsent('dedup:v2:org-1:pl-1:evt-0', 'x', DAY_MS)).toBe(true);
    expect(warnings).toContainEqual({ pool: 'dedup:', maxEntries: 1_000, times: 1 });
    for (let i = 0; i < 1_000; i++)
      expect(await cache.setIfAbsent(`hmac-seen:${i}`, '1', 660_000)).toBe(true);
    expect(await failure(cache.setIfAbsent('hmac-seen:one-too-many', '1', 660_000))).toBe('capacity');
  });

  it('refuses a budget out of range at start-up, naming the setting', () => {
    expect(() =>
      loadConfig({ env: { SIGNAL_NAMESPACE: 'signal', EMBEDDED_DEDUP_MARKERS: '10' }, cwd: '/nonexistent' }),
    ).toThrow(/EMBEDDED_DEDUP_MARKERS/);
  });
});
