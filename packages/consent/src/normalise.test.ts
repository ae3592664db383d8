import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { gppVectors, namedTcStrings, tcVectors } from '../test/vectors';
import { ConsentError } from './errors';
import { normaliseConsent } from './normalise';
import { consentStateSchema } from './state';

const at = { observedAt: 1_700_000_000_000 };

describe('normaliseConsent: CMP mappings', () => {
  it('maps OneTrust active groups; listed groups the visitor left off are denied', () => {
    const state = normaliseConsent({ cmp: { onetrust: { activeGroups: ',C0001,C0002,' } } }, at);
    expect(state.categories).toEqual({
      essential: true,
      analytics: true,
      functional: false,
      personalization: false,
      marketing: false,
    });
  });

  it('counts OneTrust Social Media (C0005) only where the banner has it', () => {
    const withoutBannerList = normaliseConsent({ cmp: { onetrust: { activeGroups: 'C0001,C0004' } } }, at);
    expect(withoutBannerList.categories.marketing).toBe(true);
    const withSocialDenied = normaliseConsent(
      {
        cmp: {
          onetrust: {
            activeGroups: ['C0001', 'C0004'],
            groups: ['C0001', 'C0002', 'C0003', 'C0004', 'C0005'],
          },
        },
      },
      at,
    );
    expect(withSocialDenied.categories.marketing).toBe(false);
  });

  it('maps Cookiebot, Didomi and Usercentrics', () => {
    expect(
      normaliseConsent(
        { cmp: { cookiebot: { necessary: true, preferences: true, statistics: false, marketing: true } } },
        at,
      ).categories,
    ).toEqual({
      essential: true,
      functional: true,
      personalization: true,
      analytics: false,
      marketing: true,
    });
    expect(
      normaliseConsent(
        {
          cmp: {
            didomi: {
              measure_content_performance: true,
              select_personalized_ads: true,
              create_ads_profile: false,
              cookies: true,
            },
          },
        },
        at,
      ).categories,
    ).toEqual({ essential: true, analytics: true, marketing: false });
    expect(
      normaliseConsent(
        { cmp: { usercentrics: { essential: true, functional: true, marketing: false, custom: true } } },
        at,
      ).categories,
    ).toEqual({ essential: true, functional: true, marketing: false });
  });

  it('lets a denial from any source win over grants from others', () => {
    const state = normaliseConsent(
      {
        categories: { marketing: true, analytics: true },
        cmp: {
          cookiebot: { marketing: true, statistics: true },
          googleConsentMode: { analytics_storage: 'denied' },
        },
      },
      at,
    );
    expect(state.categories).toMatchObject({ marketing: true, analytics: false });
    expect(state.reportedGoogleConsentMode).toEqual({ analytics_storage: 'denied' });
  });
});

describe('normaliseConsent: GPC and raw strings', () => {
  it('honours Sec-GPC: 1 and navigator.globalPrivacyControl', () => {
    expect(normaliseConsent({}, { ...at, secGpc: '1' }).gpc).toBe(true);
    expect(normaliseConsent({ gpc: true }, at).gpc).toBe(true);
    expect(normaliseConsent({}, { ...at, secGpc: '0' }).gpc).toBe(false);
    expect(normaliseConsent({}, at).gpc).toBe(false);
  });

  it('keeps the raw strings and treats empty or null ones as absent', () => {
    const state = normaliseConsent(
      { tcf: ' ', gpp: null, usPrivacy: '1YNN', cmp: { name: 'OneTrust', id: 28, gdprApplies: null } },
      at,
    );
    expect(state.raw).toEqual({ usPrivacy: '1YNN' });
    expect(state.tcf).toBeUndefined();
    expect(state.cmp).toEqual({ name: 'OneTrust', id: 28 });
    expect(state.errors).toEqual([]);
  });

  it('switches the TCF gate off when the CMP says GDPR does not apply', () => {
    const state = normaliseConsent({ tcf: namedTcStrings().nothing, cmp: { gdprApplies: false } }, at);
    expect(state.tcf).toMatchObject({ status: 'valid', gdprApplies: false });
  });

  it('fails closed on input of the wrong shape', () => {
    for (const input of [
      { tcf: 42 },
      { categories: { marketing: 'yes' } },
      'consent',
      [1, 2],
      { gpp: 'x'.repeat(20_000) },
    ]) {
      const state = normaliseConsent(input, { ...at, secGpc: '1' });
      expect(state.errors).toEqual(['input_invalid']);
      expect(state.gpc).toBe(true);
      expect(Object.values(state.googleConsentMode)).toEqual(['denied', 'denied', 'denied', 'denied']);
    }
  });

  it('records when the choice was observed and for which jurisdiction consent mode was derived', () => {
    const state = normaliseConsent({}, { observedAt: 1234.9, jurisdiction: 'us-ca' });
    expect(state.updatedAt).toBe(1234);
    expect(state.jurisdiction).toBe('US-CA');
  });

  it('refuses an observedAt that is not a time (a caller bug)', () => {
    expect(() => normaliseConsent({}, { observedAt: Number.NaN })).toThrow(ConsentError);
    expect(() => normaliseConsent({}, { observedAt: -1 })).toThrow(ConsentError);
  });
});

describe('normaliseConsent: any input', () => {
  const consentish = fc.record(
    {
      categories: fc.dictionary(
        fc.constantFrom('essential', 'functional', 'analytics', 'marketing', 'personalization', 'other'),
        fc.oneof(fc.boolean(), fc.constant(null)),
      ),
      tcf: fc.oneof(fc.string(), fc.constantFrom(...tcVectors().map((vector) => vector.tcString))),
      gpp: fc.oneof(fc.string(), fc.constantFrom(...gppVectors().map((vector) => vector.gppString))),
      usPrivacy: fc.string({ maxLength: 6 }),
      gpc: fc.boolean(),
      cmp: fc.record(
        {
          gdprApplies: fc.boolean(),
          gppApplicableSections: fc.array(fc.integer({ min: -1, max: 30 })),
          onetrust: fc.record({ activeGroups: fc.string() }),
          cookiebot: fc.dictionary(fc.string(), fc.boolean()),
          googleConsentMode: fc.record(
            {
              gcs: fc.string({ maxLength: 8 }),
              gcd: fc.string({ maxLength: 12 }),
              ad_storage: fc.constantFrom('granted', 'denied'),
            },
            { requiredKeys: [] },
          ),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: [] },
  );

  it('never throws and always yields a state that passes its own schema', () => {
    fc.assert(
      fc.property(
        fc.oneof(consentish, fc.anything()),
        fc.option(fc.string({ maxLength: 3 })),
        (input, secGpc) => {
          const state = normaliseConsent(input, { ...at, secGpc });
          expect(consentStateSchema.safeParse(JSON.parse(JSON.stringify(state))).success).toBe(true);
          if (state.errors.length > 0) {
            expect(Object.values(state.googleConsentMode)).toEqual(['denied', 'denied', 'denied', 'denied']);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
