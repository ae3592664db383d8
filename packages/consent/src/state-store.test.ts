import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { decide } from './decide';
import { normaliseConsent } from './normalise';
import { DEFAULT_CONSENT_REQUIREMENTS } from './requirements';
import { type ConsentState, consentStateSchema } from './state';
import {
  type ConsentCache,
  type ConsentStateStore,
  createCacheConsentStateStore,
  DEFAULT_CONSENT_TTL_MS,
  decideLatest,
  resolveLatestConsent,
  visitorKey,
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

const ORG = 'org_1';
const marketing = (granted: boolean, observedAt: number): ConsentState =>
  normaliseConsent(
    { categories: { analytics: true, marketing: granted } },
    { observedAt, jurisdiction: 'DE' },
  );

const meta = DEFAULT_CONSENT_REQUIREMENTS.meta;
const de = 'DE';

/** The key visitor `a` of ORG is stored under (written once to find it). */
async function keyOf(cache: TestCache, store: ConsentStateStore): Promise<string> {
  await store.set(ORG, 'a', marketing(true, 1));
  const [key] = [...cache.values.keys()];
  if (key === undefined) throw new Error('nothing was written');
  return key;
}

describe('cache-backed ConsentStateStore', () => {
  it('stores a state under a prefixed key with the retention TTL and reads it back', async () => {
    const cache = new TestCache();
    const store = createCacheConsentStateStore({ cache });
    const state = marketing(true, 1_000);
    expect(await store.set(ORG, 'anon-1', state)).toEqual({ status: 'written' });
    expect(await store.get(ORG, 'anon-1')).toEqual({ status: 'found', state });
    const keys = [...cache.values.keys()];
    expect(keys).toEqual([expect.stringMatching(/^consent:v2:[A-Za-z0-9_-]{43}$/)]);
    // The key is a digest: no visitor id in the cache's key space.
    expect(keys[0]).not.toContain('anon-1');
    expect(cache.ttls.get(keys[0] ?? '')).toBe(DEFAULT_CONSENT_TTL_MS);
    expect(await store.get(ORG, 'anon-2')).toEqual({ status: 'missing' });
  });

  it('finds a visitor by its visitor key, for an event whose anonymous id a rule changed since', async () => {
    const store = createCacheConsentStateStore({ cache: new TestCache() });
    const withdrawn = marketing(false, 2_000);
    await store.set(ORG, 'anon-1', withdrawn);
    const key = visitorKey(ORG, 'anon-1');
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await store.getByVisitorKey(key)).toEqual({ status: 'found', state: withdrawn });
    expect(await store.getByVisitorKey(visitorKey('org_other', 'anon-1'))).toEqual({ status: 'missing' });
    // The event carries a hashed id now; the withdrawal made after it was received still wins.
    expect(await resolveLatestConsent(store, ORG, { visitorKey: key }, marketing(true, 1_000))).toEqual({
      state: withdrawn,
      source: 'store',
    });
    await expect(store.getByVisitorKey('anon-1')).rejects.toThrow(/not a visitor key/);
  });

  it('a "no state" copy reads as missing, never replaces a state, and is replaced by the next state', async () => {
    const cache = new TestCache();
    const store = createCacheConsentStateStore({ cache });
    const key = visitorKey(ORG, 'anon-quiet');
    await store.markAbsent(key);
    expect(await store.isKnownAbsent(key)).toBe(true);
    expect(await store.get(ORG, 'anon-quiet')).toEqual({ status: 'missing' });
    const state = marketing(false, 1_000);
    expect(await store.set(ORG, 'anon-quiet', state)).toEqual({ status: 'written' });
    expect(await store.isKnownAbsent(key)).toBe(false);
    await store.markAbsent(key);
    expect(await store.get(ORG, 'anon-quiet')).toEqual({ status: 'found', state });
  });

  it('the "no state" copy decides, for a release that does not know it, exactly as a missing state', async () => {
    const cache = new TestCache();
    const store = createCacheConsentStateStore({ cache });
    await store.markAbsent(visitorKey(ORG, 'anon-old-reader'));
    const [raw] = [...cache.values.values()];
    // What the previous release parses a stored value with.
    const previous = z.object({ v: z.literal(1), state: consentStateSchema }).parse(JSON.parse(raw ?? ''));
    expect(previous.state.updatedAt).toBe(0);
    // Any consent an event carries is newer; an event without any is judged on nothing granted.
    expect(decide(previous.state, meta, { stage: 2 }).outcome).toBe(decide(null, meta, { stage: 2 }).outcome);
  });

  it("keeps each org's visitors apart: the same anonymous id in another org is another visitor", async () => {
    const store = createCacheConsentStateStore({ cache: new TestCache() });
    const withdrawn = marketing(false, 1_000);
    expect(await store.set('org_a', 'shared-id', withdrawn)).toEqual({ status: 'written' });
    // A later grant in org B (another controller) neither overwrites nor shows through A's withdrawal.
    expect(await store.set('org_b', 'shared-id', marketing(true, 2_000))).toEqual({ status: 'written' });
    expect(await store.get('org_a', 'shared-id')).toEqual({ status: 'found', state: withdrawn });
    expect(await resolveLatestConsent(store, 'org_a', 'shared-id', marketing(true, 500))).toEqual({
      state: withdrawn,
      source: 'store',
    });
    expect(await store.get('org_c', 'shared-id')).toEqual({ status: 'missing' });
    // Fields are length-delimited: ("org_a", "b") and ("org_", "ab") are different visitors.
    await store.set('org_a', 'b', marketing(true, 1));
    expect(await store.get('org_', 'ab')).toEqual({ status: 'missing' });
  });

  it('treats a state stored before org scoping as a veto only, until the visitor has a newer one', async () => {
    const cache = new TestCache();
    const store = createCacheConsentStateStore({ cache });
    const withdrawnBefore = marketing(false, 5_000);
    cache.values.set('consent:v1:anon-old', JSON.stringify({ v: 1, state: withdrawnBefore }));
    expect(await store.get(ORG, 'anon-old')).toEqual({ status: 'missing', legacy: withdrawnBefore });
    // An event ingested before the withdrawal, delivered after the upgrade: the withdrawal still holds.
    const grantedEarlier = marketing(true, 4_000);
    const latest = await resolveLatestConsent(store, ORG, 'anon-old', grantedEarlier);
    expect(latest).toEqual({ state: grantedEarlier, source: 'event', veto: withdrawnBefore });
    expect(decideLatest(latest, meta, { stage: 2, jurisdiction: de }).outcome).toBe('drop');
    // Nothing older is written over it; a newer choice is, and then rules alone.
    expect(await store.set(ORG, 'anon-old', grantedEarlier)).toEqual({
      status: 'stale',
      current: withdrawnBefore,
    });
    const regranted = marketing(true, 6_000);
    expect(await store.set(ORG, 'anon-old', regranted)).toEqual({ status: 'written' });
    expect(await store.get(ORG, 'anon-old')).toEqual({ status: 'found', state: regranted });
    // Turned off: legacy states are ignored.
    cache.values.set('consent:v1:anon-older', JSON.stringify({ v: 1, state: withdrawnBefore }));
    const strict = createCacheConsentStateStore({ cache, legacyKeyPrefix: null });
    expect(await strict.get(ORG, 'anon-older')).toEqual({ status: 'missing' });
  });

  it("never lets a pre-upgrade grant (maybe another org's) grant anything", async () => {
    const cache = new TestCache();
    const store = createCacheConsentStateStore({ cache });
    cache.values.set('consent:v1:shared', JSON.stringify({ v: 1, state: marketing(true, 9_000) }));
    const deniedHere = marketing(false, 1_000);
    const latest = await resolveLatestConsent(store, ORG, 'shared', deniedHere);
    expect(decideLatest(latest, meta, { stage: 2, jurisdiction: de }).outcome).toBe('drop');
    // And with nothing arrived, the legacy grant does not stand in for consent either.
    const none = await resolveLatestConsent(store, ORG, 'shared', null);
    expect(none.state).toBeNull();
    expect(decideLatest(none, meta, { stage: 2, jurisdiction: de }).outcome).toBe('drop');
  });

  it('keeps the newest state: an older update never overwrites, a replay of the same one is a no-op', async () => {
    const store = createCacheConsentStateStore({ cache: new TestCache(), keyPrefix: 't:' });
    const newer = marketing(false, 2_000);
    const older = marketing(true, 1_000);
    expect(await store.set(ORG, 'a', newer)).toEqual({ status: 'written' });
    expect(await store.set(ORG, 'a', older)).toEqual({ status: 'stale', current: newer });
    expect(await store.set(ORG, 'a', marketing(true, 2_000))).toEqual({ status: 'stale', current: newer });
    expect(await store.get(ORG, 'a')).toEqual({ status: 'found', state: newer });
  });

  it('orders concurrent writers for one visitor: the newest wins whatever the arrival order', async () => {
    const cache = new TestCache();
    const store = createCacheConsentStateStore({ cache });
    const states = [3_000, 1_000, 5_000, 2_000, 4_000].map((t) => marketing(t % 2000 === 0, t));
    // Every write reads first; hold the reads so all five would see "missing" without per-key ordering.
    cache.holdReads();
    const pending = states.map((state) => store.set(ORG, 'a', state));
    await new Promise((resolve) => setTimeout(resolve, 0));
    cache.releaseReads();
    const results = await Promise.all(pending);
    expect(results.map((result) => result.status)).toEqual(['written', 'stale', 'written', 'stale', 'stale']);
    const read = await store.get(ORG, 'a');
    expect(read.status === 'found' && read.state.updatedAt).toBe(5_000);
  });

  it('reports corrupt entries as corrupt, and a newer state replaces them', async () => {
    const cache = new TestCache();
    const warnings: string[] = [];
    const store = createCacheConsentStateStore({
      cache,
      logger: { warn: (_obj, msg) => warnings.push(msg) },
    });
    const key = await keyOf(cache, store);
    cache.values.set(key, '{not json');
    expect(await store.get(ORG, 'a')).toEqual({ status: 'corrupt' });
    cache.values.set(key, JSON.stringify({ v: 1, state: { v: 1, categories: 'all' } }));
    expect(await store.get(ORG, 'a')).toEqual({ status: 'corrupt' });
    expect(warnings).toEqual(['stored consent state unreadable', 'stored consent state unreadable']);
    expect(await store.set(ORG, 'a', marketing(false, 1))).toEqual({ status: 'written' });
    expect((await store.get(ORG, 'a')).status).toBe('found');
  });

  it('reports an unreachable cache as unavailable instead of throwing', async () => {
    const cache = new TestCache();
    const store = createCacheConsentStateStore({ cache });
    cache.failing = true;
    expect(await store.get(ORG, 'a')).toEqual({ status: 'unavailable' });
    expect(await store.set(ORG, 'a', marketing(true, 1))).toEqual({ status: 'unavailable' });
  });

  it('refuses something that is not a consent state', async () => {
    const store = createCacheConsentStateStore({ cache: new TestCache() });
    const bogus = { ...marketing(true, 1), updatedAt: -5 };
    await expect(store.set(ORG, 'a', bogus)).rejects.toMatchObject({ code: 'consent_invalid_argument' });
    await expect(store.get(ORG, '')).rejects.toMatchObject({ code: 'consent_invalid_argument' });
  });
});

describe('resolveLatestConsent', () => {
  it('prefers whichever of the stored and the arrived state is newer', async () => {
    const store = createCacheConsentStateStore({ cache: new TestCache() });
    const stored = marketing(false, 2_000);
    await store.set(ORG, 'a', stored);
    expect(await resolveLatestConsent(store, ORG, 'a', marketing(true, 1_000))).toEqual({
      state: stored,
      source: 'store',
    });
    const arrived = marketing(true, 3_000);
    expect(await resolveLatestConsent(store, ORG, 'a', arrived)).toEqual({ state: arrived, source: 'event' });
    expect(await resolveLatestConsent(store, ORG, 'b', arrived)).toEqual({ state: arrived, source: 'event' });
    expect(await resolveLatestConsent(store, ORG, 'b', null)).toEqual({ state: null, source: 'none' });
  });

  it('answers null when the store cannot be read, so stage 2 drops non-essential deliveries', async () => {
    const cache = new TestCache();
    const store = createCacheConsentStateStore({ cache });
    const arrived = marketing(true, 1_000);
    cache.values.set(await keyOf(cache, store), 'garbage');
    const corrupt = await resolveLatestConsent(store, ORG, 'a', arrived);
    expect(corrupt).toEqual({ state: null, source: 'none', storeProblem: 'corrupt' });
    cache.failing = true;
    const down = await resolveLatestConsent(store, ORG, 'a', arrived);
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
    await store.set(ORG, visitor, atIngestion);

    // Before delivery, the visitor withdraws marketing consent (a later consent update event).
    expect(await store.set(ORG, visitor, marketing(false, 2_000))).toEqual({ status: 'written' });

    // Delivery: stage 2 uses the latest state, not the one the event carried.
    const latest = await resolveLatestConsent(store, ORG, visitor, atIngestion);
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
    expect(await store.set(ORG, visitor, lateOlder)).toMatchObject({ status: 'stale' });
    const again = await resolveLatestConsent(store, ORG, visitor, lateOlder);
    expect(decide(again.state, meta, { stage: 2, jurisdiction: de })).toMatchObject({ outcome: 'drop' });
  });
});
