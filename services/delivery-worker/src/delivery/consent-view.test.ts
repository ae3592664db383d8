import { type ConsentRequirement, normaliseConsent } from '@signal/consent';
import { describe, expect, it } from 'vitest';
import { stageTwoConsent } from './consent-view';

const analytics: ConsentRequirement = { category: 'analytics' };
const gated: ConsentRequirement = { category: 'analytics', userData: { category: 'marketing' } };

describe('stageTwoConsent', () => {
  it('reports the state stage 2 decided on, not the one the event arrived with', () => {
    const latest = normaliseConsent(
      { categories: { analytics: true, marketing: false, personalization: false }, usPrivacy: '1YNN' },
      { observedAt: 2_000 },
    );
    expect(stageTwoConsent(latest, { outcome: 'allow' }, analytics)).toEqual({
      categories: { essential: true, analytics: true, marketing: false, personalization: false },
      usPrivacy: '1YNN',
      gpc: false,
    });
  });

  it('reports the user-data category as not granted on strip, whatever the categories say', () => {
    const latest = normaliseConsent(
      { categories: { analytics: true, marketing: true }, gpc: true },
      { observedAt: 2_000 },
    );
    const consent = stageTwoConsent(latest, { outcome: 'strip' }, gated);
    expect(consent.categories).toEqual({ essential: true, analytics: true, marketing: false });
    expect(consent.gpc).toBe(true);
  });

  it('fails closed on an unreadable or invalid state: nothing but essential is granted', () => {
    const none = {
      categories: {
        essential: true,
        functional: false,
        analytics: false,
        marketing: false,
        personalization: false,
      },
    };
    expect(stageTwoConsent(null, { outcome: 'allow' }, { category: 'essential' })).toEqual(none);
    const invalid = normaliseConsent(
      { categories: { marketing: true }, tcf: 'not a tc string' },
      { observedAt: 1 },
    );
    expect(invalid.errors.length).toBeGreaterThan(0);
    expect(stageTwoConsent(invalid, { outcome: 'allow' }, { category: 'essential' })).toEqual(none);
  });
});
