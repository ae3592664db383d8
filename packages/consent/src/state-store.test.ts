import { describe, expect, it } from 'vitest';
import { decide } from './decide';
import { normaliseConsent } from './normalise';
import { DEFAULT_CONSENT_REQUIREMENTS } from './requirements';
import type { ConsentState } from './state';
import {
  type ConsentCache,
  createCacheConsentStateStore,
  DEFAULT_CONSENT_TTL_MS,
  resolveLatestConsent,
} from './state-store';

/**
 * An in-process cache typed against the `ConsentCache` port (the shared cache package is not in the tree yet);
 * it records TTLs and can be made to fail, or to hold reads until released so concurrent writers interleave.
 */
class TestCache implements ConsentCache {
  readonly values = new Map<string, string>();
  readonly ttls = new Map<string, number>();
  failing = false;
  private held: Promise<void> | undefined;
  private releaseHeld: (() => void) | undefined;

  holdReads(): void {
    this.held = new Promise((resolve) => {
      this.releaseHeld = resolve;
    });
  }

  releaseReads(): void {
    this.releaseHeld?.();
    this.held = undefined;
  }

  async get(key: string): Promise<string | null> {
    if (this.held !== undefined) await this.held;
    if (this.failing) throw new Error('connection refused');
    return this.values.get(key) ?? null;
  }

  async set(key: string, value: string, options: { ttlMs: number }): Promise<void> {
    if (this.failing) throw new Error('connection refused');
    this.values.set(key, value);
    this.ttls.set(key, options.ttlMs);
  }

  async compareAndSet(key: string, expected: string | null, value: string, ttlMs: number): Promise<boolean> {
    if (this.failing) throw new Error('connection refused');
    if ((this.values.get(key) ?? null) !== expected) return false;
    await this.set(key, value, { ttlMs });
    return true;
  }
}

const marketing = (granted: boolean, observedAt: number): ConsentState =>
  normaliseConsent(
    { categories: { analytics: true, marketing: granted } },
    { observedAt, jurisdiction: 'DE' },
  );

const meta = DEFAULT_CONSENT_REQUIREMENTS.meta;
const de = 'DE';

describe('cache-backed ConsentStateStore', () => {
  it('stores a state under a prefixed key with the retention TTL and reads it back', async () => {
    const cache = new TestCache();
    const store = createCacheConsentStateStore({ cache });
    const state = marketing(true, 1_000);
    expect(await store.set('anon-1', state)).toEqual({ status: 'written' });
    expect(await store.get('anon-1')).toEqual({ status: 'found', state });
    expect([...cache.values.keys()]).toEqual(['consent:v1:anon-1']);
    expect(cache.ttls.get('consent:v1:anon-1')).toBe(DEFAULT_CONSENT_TTL_MS);
    expect(await store.get('anon-2')).toEqual({ status: 'missing' });
  });

  it('keeps the newest state: an older update never overwrites, a replay of the same one is a no-op', async () => {
    const store = createCacheConsentStateStore({ cache: new TestCache(), keyPrefix: 't:' });
    const newer = marketing(false, 2_000);
    const older = marketing(true, 1_000);
    expect(await store.set('a', newer)).toEqual({ status: 'written' });
    expect(await store.set('a', older)).toEqual({ status: 'stale', current: newer });
    expect(await store.set('a', marketing(true, 2_000))).toEqual({ status: 'stale', current: newer });
    expect(await store.get('a')).toEqual({ status: 'found', state: newer });
  });

  it('orders concurrent writers for one visitor: the newest wins whatever the arrival order', async () => {
    const cache = new TestCache();
    const store = createCacheConsentStateStore({ cache });
    const states = [3_000, 1_000, 5_000, 2_000, 4_000].map((t) => marketing(t % 2000 === 0, t));
    // Every write reads first; hold the reads so all five would see "missing" without per-key ordering.
    cache.holdReads();
    const pending = states.map((state) => store.set('a', state));
    await new Promise((resolve) => setTimeout(resolve, 0));
    cache.releaseReads();
    const results = await Promise.all(pending);
    expect(results.map((result) => result.status)).toEqual(['written', 'stale', 'written', 'stale', 'stale']);
    const read = await store.get('a');
    expect(read.status === 'found' && read.state.updatedAt).toBe(5_000);
  });

  it('reports corrupt entries as corrupt, and a newer state replaces them', async () => {
    const cache = new TestCache();
    const warnings: string[] = [];
    const store = createCacheConsentStateStore({
      cache,
      logger: { warn: (_obj, msg) => warnings.push(msg) },
    });
    cache.values.set('consent:v1:a', '{not json');
    expect(await store.get('a')).toEqual({ status: 'corrupt' });
    cache.values.set('consent:v1:a', JSON.stringify({ v: 1, state: { v: 1, categories: 'all' } }));
    expect(await store.get('a')).toEqual({ status: 'corrupt' });
    expect(warnings).toEqual(['stored consent state unreadable', 'stored consent state unreadable']);
    expect(await store.set('a', marketing(false, 1))).toEqual({ status: 'written' });
    expect((await store.get('a')).status).toBe('found');
  });

  it('reports an unreachable cache as unavailable instead of throwing', async () => {
    const cache = new TestCache();
    const store = createCacheConsentStateStore({ cache });
    cache.failing = true;
    expect(await store.get('a')).toEqual({ status: 'unavailable' });
    expect(await store.set('a', marketing(true, 1))).toEqual({ status: 'unavailable' });
  });

  it('refuses something that is not a consent state', async () => {
    const store = createCacheConsentStateStore({ cache: new TestCache() });
    const bogus = { ...marketing(true, 1), updatedAt: -5 };
    await expect(store.set('a', bogus)).rejects.toMatchObject({ code: 'consent_invalid_argument' });
    await expect(store.get('')).rejects.toMatchObject({ code: 'consent_invalid_argument' });
  });
});

describe('resolveLatestConsent', () => {
  it('prefers whichever of the stored and the arrived state is newer', async () => {
    const store = createCacheConsentStateStore({ cache: new TestCache() });
    const stored = marketing(false, 2_000);
    await store.set('a', stored);
    expect(await resolveLatestConsent(store, 'a', marketing(true, 1_000))).toEqual({
      state: stored,
      source: 'store',
    });
    const arrived = marketing(true, 3_000);
    expect(await resolveLatestConsent(store, 'a', arrived)).toEqual({ state: arrived, source: 'event' });
    expect(await resolveLatestConsent(store, 'b', arrived)).toEqual({ state: arrived, source: 'event' });
    expect(await resolveLatestConsent(store, 'b', null)).toEqual({ state: null, source: 'none' });
  });

  it('answers null when the store cannot be read, so stage 2 drops non-essential deliveries', async () => {
    const cache = new TestCache();
    const store = createCacheConsentStateStore({ cache });
    const arrived = marketing(true, 1_000);
    cache.values.set('consent:v1:a', 'garbage');
    const corrupt = await resolveLatestConsent(store, 'a', arrived);
    expect(corrupt).toEqual({ state: null, source: 'none', storeProblem: 'corrupt' });
    cache.failing = true;
    const down = await resolveLatestConsent(store, 'a', arrived);
    expect(down).toEqual({ state: null, source: 'none', storeProblem: 'unavailable' });
    expect(decide(down.state, meta, { stage: 2, jurisdiction: de })).toMatchObject({
      outcome: 'drop',
      reason: 'state_unreadable',
    });
    expect(decide(down.state, { category: 'essential' }, { stage: 2 }).outcome).toBe('allow');
  });
});

describe('revocation between ingestion and delivery', () => {
  it('drops at stage 2 after a later revocation, and a late older update does not re-grant', async () => {
    const store = createCacheConsentStateStore({ cache: new TestCache() });
    const visitor = 'anon-race';

    // Ingestion: the event arrives with marketing granted; the processor allows it and records the state.
    const atIngestion = marketing(true, 1_000);
    expect(decide(atIngestion, meta, { stage: 1, jurisdiction: de })).toMatchObject({ outcome: 'allow' });
    await store.set(visitor, atIngestion);

    // Before delivery, the visitor withdraws marketing consent (a later consent update event).
    expect(await store.set(visitor, marketing(false, 2_000))).toEqual({ status: 'written' });

    // Delivery: stage 2 uses the latest state, not the one the event carried.
    const latest = await resolveLatestConsent(store, visitor, atIngestion);
    expect(latest.source).toBe('store');
    expect(decide(latest.state, meta, { stage: 2, jurisdiction: de })).toMatchObject({
      outcome: 'drop',
      reason: 'category_denied',
      stage: 2,
    });
    // Analytics was not withdrawn: GA4 still gets the event, without personal data.
    expect(
      decide(latest.state, DEFAULT_CONSENT_REQUIREMENTS.ga4, { stage: 2, jurisdiction: de }),
    ).toMatchObject({
      outcome: 'strip',
      reason: 'category_denied',
    });

    // An older grant (observed at 1,500) reaches the processor late, out of order: it must not re-grant.
    const lateOlder = marketing(true, 1_500);
    expect(await store.set(visitor, lateOlder)).toMatchObject({ status: 'stale' });
    const again = await resolveLatestConsent(store, visitor, lateOlder);
    expect(decide(again.state, meta, { stage: 2, jurisdiction: de })).toMatchObject({ outcome: 'drop' });
  });
});
