import { createMemoryCache } from '@signal/cache';
import { describe, expect, it } from 'vitest';
import { decide } from './decide';
import { normaliseConsent } from './normalise';
import { DEFAULT_CONSENT_REQUIREMENTS } from './requirements';
import { DEFAULT_CONSENT_TTL_MS } from './state-store';
import {
  applyUserConsent,
  createCacheUserConsentStore,
  DEFAULT_WITHDRAWAL_TTL_MS,
  withdrawnCategories,
} from './user-consent';

/** A person's consent of record, kept by a pseudonym of their user id, merged per category by time. */

const ORG = 'org_1';
const SUBJECT = 'a'.repeat(64);

function store() {
  const cache = createMemoryCache({ namespace: `t${Math.random().toString(36).slice(2)}` });
  return { users: createCacheUserConsentStore({ cache, ttlMs: 60_000 }) };
}

describe('the user consent store', () => {
  it('keeps the latest choice per category, whatever order the choices arrive in', async () => {
    const { users } = store();
    expect(await users.get(ORG, SUBJECT)).toEqual({ status: 'missing' });
    expect(await users.record(ORG, SUBJECT, { marketing: false, analytics: true }, 2_000)).toEqual({
      status: 'written',
    });
    // Older (a redelivery, another replica's late write): changes nothing it is older than.
    expect(await users.record(ORG, SUBJECT, { marketing: true }, 1_000)).toEqual({ status: 'stale' });
    expect(await users.record(ORG, SUBJECT, { marketing: true, personalization: false }, 1_500)).toEqual({
      status: 'written',
    });
    expect(await users.get(ORG, SUBJECT)).toEqual({
      status: 'found',
      record: {
        categories: {
          marketing: { granted: false, at: 2_000 },
          analytics: { granted: true, at: 2_000 },
          personalization: { granted: false, at: 1_500 },
        },
      },
    });
    // Another org's person of the same subject is someone else.
    expect(await users.get('org_2', SUBJECT)).toEqual({ status: 'missing' });
  });

  it('keeps a withdrawal far longer than grants, and lets it win a tie', async () => {
    const ttls: number[] = [];
    let stored: string | null = null;
    const users = createCacheUserConsentStore({
      cache: {
        get: async () => stored,
        compareAndSet: async (_key, expected, value, ttlMs) => {
          if (expected !== stored) return false;
          stored = value;
          ttls.push(ttlMs);
          return true;
        },
      },
    });
    await users.record(ORG, SUBJECT, { analytics: true, marketing: true }, 1_000);
    // The same instant, a conflicting withdrawal (two sources at once): the stricter choice stands.
    await users.record(ORG, SUBJECT, { marketing: false }, 1_000);
    expect(await users.record(ORG, SUBJECT, { marketing: true }, 1_000)).toEqual({ status: 'stale' });
    expect(withdrawnCategories(await users.get(ORG, SUBJECT))).toEqual(['marketing']);
    // An objection does not lapse with the 13 months of a visitor's state: 10 years after its last choice.
    expect(ttls).toEqual([DEFAULT_CONSENT_TTL_MS, DEFAULT_WITHDRAWAL_TTL_MS]);
    expect(DEFAULT_WITHDRAWAL_TTL_MS).toBeGreaterThanOrEqual(10 * 365 * 86_400_000);
  });

  it('fails closed on an unreadable record, says so when the cache is down, and refuses bad arguments', async () => {
    const { users } = store();
    const corrupt = createCacheUserConsentStore({
      cache: { get: async () => 'not json', compareAndSet: async () => true },
    });
    expect(await corrupt.get(ORG, SUBJECT)).toEqual({ status: 'corrupt' });
    expect(withdrawnCategories({ status: 'corrupt' })).toEqual([
      'functional',
      'analytics',
      'marketing',
      'personalization',
    ]);
    // A write over an unreadable record replaces it: these choices are the only ones known to be theirs.
    expect(await corrupt.record(ORG, SUBJECT, { marketing: false }, 5)).toEqual({ status: 'written' });

    const down = createCacheUserConsentStore({
      cache: {
        get: () => Promise.reject(new Error('connection refused')),
        compareAndSet: () => Promise.reject(new Error('connection refused')),
      },
    });
    expect(await down.get(ORG, SUBJECT)).toEqual({ status: 'unavailable' });
    expect(await down.record(ORG, SUBJECT, { marketing: false }, 5)).toEqual({ status: 'unavailable' });
    await expect(users.record(ORG, '', { marketing: false }, 5)).rejects.toMatchObject({
      code: 'consent_invalid_argument',
    });
    await expect(users.record(ORG, SUBJECT, { marketing: false }, -1)).rejects.toMatchObject({
      code: 'consent_invalid_argument',
    });
  });
});

describe('a consent of record at stage 2', () => {
  const meta = DEFAULT_CONSENT_REQUIREMENTS.meta;
  const granted = normaliseConsent(
    { categories: { analytics: true, marketing: true } },
    { observedAt: 10, jurisdiction: 'DE' },
  );

  it('withdraws what the person withdrew of record, and grants nothing the event did not', () => {
    const withdrawn = withdrawnCategories({
      status: 'found',
      record: { categories: { marketing: { granted: false, at: 1 }, functional: { granted: true, at: 1 } } },
    });
    expect(withdrawn).toEqual(['marketing']);
    expect(decide(granted, meta, { stage: 2 }).outcome).toBe('allow');
    const vetoed = applyUserConsent(granted, withdrawn);
    expect(vetoed?.categories).toMatchObject({ marketing: false, analytics: true });
    expect(decide(vetoed, meta, { stage: 2 })).toMatchObject({ outcome: 'drop', reason: 'category_denied' });
    // A grant of record on a category the event never granted stays ungranted there.
    const functionalGrant = withdrawnCategories({
      status: 'found',
      record: { categories: { functional: { granted: true, at: 1 } } },
    });
    expect(applyUserConsent(granted, functionalGrant)).toBe(granted);
    expect(applyUserConsent(null, withdrawn)).toBeNull();
  });
});
