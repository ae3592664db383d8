import { describe, expect, it } from 'vitest';
import { namedTcStrings } from '../test/vectors';
import { type ConsentOutcome, decide } from './decide';
import type { ConsentReason } from './gates';
import { type ConsentInput, normaliseConsent } from './normalise';
import { type ConsentRequirement, DEFAULT_CONSENT_REQUIREMENTS as D } from './requirements';

// TC strings from the shared vectors (consent/tcf_v2_tc_strings.json), picked by what they encode.
const TC = namedTcStrings();

const ALL = { functional: true, analytics: true, marketing: true, personalization: true };

interface Row {
  name: string;
  input: ConsentInput;
  secGpc?: string;
  jurisdiction?: string;
  requirement: ConsentRequirement;
  outcome: ConsentOutcome;
  reason: ConsentReason;
}

const rows: Row[] = [
  // Categories and jurisdictions
  {
    name: 'no signal, EU: opt-in needs a choice',
    input: {},
    jurisdiction: 'DE',
    requirement: D.meta,
    outcome: 'drop',
    reason: 'category_not_set',
  },
  {
    name: 'no signal, unknown jurisdiction: treated as opt-in',
    input: {},
    requirement: D.meta,
    outcome: 'drop',
    reason: 'category_not_set',
  },
  {
    name: 'no signal, US: opt-out regime allows',
    input: {},
    jurisdiction: 'US-CA',
    requirement: D.meta,
    outcome: 'allow',
    reason: 'not_opted_out',
  },
  {
    name: 'marketing granted, EU',
    input: { categories: { marketing: true } },
    jurisdiction: 'DE',
    requirement: D.meta,
    outcome: 'allow',
    reason: 'granted',
  },
  {
    name: 'marketing denied, even in the US',
    input: { categories: { marketing: false } },
    jurisdiction: 'US',
    requirement: D.tiktok,
    outcome: 'drop',
    reason: 'category_denied',
  },
  {
    name: 'essential needs nothing',
    input: { categories: { marketing: false } },
    jurisdiction: 'DE',
    requirement: { category: 'essential' },
    outcome: 'allow',
    reason: 'essential',
  },
  {
    name: 'functional from Cookiebot preferences',
    input: { cmp: { cookiebot: { preferences: true } } },
    jurisdiction: 'DE',
    requirement: { category: 'functional' },
    outcome: 'allow',
    reason: 'granted',
  },

  // GPC and US opt-outs
  {
    name: 'GPC in California blocks marketing',
    input: { categories: ALL },
    secGpc: '1',
    jurisdiction: 'US-CA',
    requirement: D.meta,
    outcome: 'drop',
    reason: 'gpc_opt_out',
  },
  {
    name: 'GPC with unknown jurisdiction blocks marketing',
    input: { categories: ALL },
    secGpc: '1',
    requirement: D.meta,
    outcome: 'drop',
    reason: 'gpc_opt_out',
  },
  {
    name: 'GPC in the EU changes nothing (consent came from the CMP)',
    input: { categories: ALL },
    secGpc: '1',
    jurisdiction: 'FR',
    requirement: D.meta,
    outcome: 'allow',
    reason: 'granted',
  },
  {
    name: 'GPC does not touch analytics',
    input: { categories: ALL },
    secGpc: '1',
    jurisdiction: 'US-CA',
    requirement: { category: 'analytics' },
    outcome: 'allow',
    reason: 'granted',
  },
  {
    name: 'GPC strips user data from GA4',
    input: { categories: ALL },
    secGpc: '1',
    jurisdiction: 'US-CA',
    requirement: D.ga4,
    outcome: 'strip',
    reason: 'gpc_opt_out',
  },
  {
    name: 'US Privacy opt-out of sale',
    input: { usPrivacy: '1YYN' },
    jurisdiction: 'US-CA',
    requirement: D.pinterest,
    outcome: 'drop',
    reason: 'us_opt_out',
  },
  {
    name: 'US Privacy opt-out, GA4 (no TCF): analytics stays, PII goes',
    input: { usPrivacy: '1YYN' },
    jurisdiction: 'US',
    requirement: D.ga4,
    outcome: 'strip',
    reason: 'us_opt_out',
  },
  {
    name: 'US Privacy opt-out blocks a non-marketing sale when declared',
    input: { usPrivacy: '1YYN' },
    jurisdiction: 'US',
    requirement: { category: 'analytics', saleOrSharing: true },
    outcome: 'drop',
    reason: 'us_opt_out',
  },

  // Strip: delivery allowed, personal data not
  {
    name: 'GA4: analytics granted, marketing denied',
    input: { categories: { analytics: true, marketing: false } },
    jurisdiction: 'DE',
    requirement: D.ga4,
    outcome: 'strip',
    reason: 'category_denied',
  },
  {
    name: 'GA4: analytics and marketing granted',
    input: { categories: { analytics: true, marketing: true } },
    jurisdiction: 'DE',
    requirement: D.ga4,
    outcome: 'allow',
    reason: 'granted',
  },
  {
    name: 'GA4: analytics denied',
    input: { categories: { analytics: false, marketing: true } },
    jurisdiction: 'DE',
    requirement: D.ga4,
    outcome: 'drop',
    reason: 'category_denied',
  },

  // TCF
  {
    name: 'TCF all granted: Google Ads',
    input: { tcf: TC.allGranted },
    jurisdiction: 'DE',
    requirement: D.google_ads,
    outcome: 'allow',
    reason: 'granted',
  },
  {
    name: 'TCF all granted: LinkedIn',
    input: { tcf: TC.allGranted },
    jurisdiction: 'DE',
    requirement: D.linkedin,
    outcome: 'allow',
    reason: 'granted',
  },
  {
    name: 'TCF all granted: Microsoft',
    input: { tcf: TC.allGranted },
    jurisdiction: 'DE',
    requirement: D.microsoft_ads,
    outcome: 'allow',
    reason: 'granted',
  },
  {
    name: 'TCF all granted: Meta by purposes',
    input: { tcf: TC.allGranted },
    jurisdiction: 'DE',
    requirement: D.meta,
    outcome: 'allow',
    reason: 'granted',
  },
  {
    name: 'TCF nothing: Google Ads',
    input: { tcf: TC.nothing },
    jurisdiction: 'DE',
    requirement: D.google_ads,
    outcome: 'drop',
    reason: 'tcf_purpose_denied',
  },
  {
    name: 'TCF nothing: Meta',
    input: { tcf: TC.nothing },
    jurisdiction: 'DE',
    requirement: D.meta,
    outcome: 'drop',
    reason: 'tcf_purpose_denied',
  },
  {
    name: 'TCF nothing, CMP category granted: Google Ads still blocked',
    input: { tcf: TC.nothing, categories: { marketing: true } },
    jurisdiction: 'DE',
    requirement: D.google_ads,
    outcome: 'drop',
    reason: 'tcf_purpose_denied',
  },
  {
    name: 'TCF purposes but not vendor 755: Google Ads',
    input: { tcf: TC.adsNot755 },
    jurisdiction: 'DE',
    requirement: D.google_ads,
    outcome: 'drop',
    reason: 'tcf_vendor_denied',
  },
  {
    name: 'TCF purposes, 804 but no P7 LI: LinkedIn',
    input: { tcf: TC.adsNot755 },
    jurisdiction: 'DE',
    requirement: D.linkedin,
    outcome: 'drop',
    reason: 'tcf_purpose_denied',
  },
  {
    name: 'TCF purposes, non-IAB Meta',
    input: { tcf: TC.adsNot755 },
    jurisdiction: 'DE',
    requirement: D.meta,
    outcome: 'allow',
    reason: 'granted',
  },
  {
    name: 'TCF P1 + 755: Google Ads without user data (ad_user_data needs P7)',
    input: { tcf: TC.p1Google },
    jurisdiction: 'DE',
    requirement: D.google_ads,
    outcome: 'strip',
    reason: 'tcf_purpose_denied',
  },
  {
    name: 'TCF P1 + P7 + 755: Google Ads with user data',
    input: { tcf: TC.p1p7 },
    jurisdiction: 'DE',
    requirement: D.google_ads,
    outcome: 'allow',
    reason: 'granted',
  },
  {
    name: 'TCF P3 not allowed for 755: Google Ads still fine',
    input: { tcf: TC.p3RestrictedFor755 },
    jurisdiction: 'DE',
    requirement: D.google_ads,
    outcome: 'allow',
    reason: 'granted',
  },
  {
    name: 'TCF P3 not allowed for 755: a P3 requirement',
    input: { tcf: TC.p3RestrictedFor755 },
    jurisdiction: 'DE',
    requirement: {
      category: 'marketing',
      iabVendorId: 755,
      requiredPurposes: [{ purpose: 3, basis: 'consent' }],
    },
    outcome: 'drop',
    reason: 'tcf_publisher_restriction',
  },
  {
    name: 'TCF LI only: P7 on LI for 755',
    input: { tcf: TC.googleLiOnly },
    jurisdiction: 'DE',
    requirement: {
      category: 'analytics',
      iabVendorId: 755,
      requiredPurposes: [{ purpose: 7, basis: 'legitimate_interest' }],
    },
    outcome: 'allow',
    reason: 'granted',
  },
  {
    name: 'TCF LI only: P7 on consent for 755',
    input: { tcf: TC.googleLiOnly },
    jurisdiction: 'DE',
    requirement: {
      category: 'analytics',
      iabVendorId: 755,
      requiredPurposes: [{ purpose: 7, basis: 'consent' }],
    },
    outcome: 'drop',
    reason: 'tcf_purpose_denied',
  },
  {
    name: 'LI can never cover purpose 3',
    input: { tcf: TC.allGranted },
    jurisdiction: 'DE',
    requirement: {
      category: 'marketing',
      iabVendorId: 755,
      requiredPurposes: [{ purpose: 3, basis: 'legitimate_interest' }],
    },
    outcome: 'drop',
    reason: 'tcf_legal_basis_invalid',
  },
  {
    name: 'restriction switches a flexible LI purpose to consent',
    input: { tcf: TC.restrictions },
    jurisdiction: 'DE',
    requirement: {
      category: 'marketing',
      iabVendorId: 7,
      requiredPurposes: [{ purpose: 2, basis: 'legitimate_interest', flexible: true }],
    },
    outcome: 'allow',
    reason: 'granted',
  },
  {
    name: 'restriction on a purpose the vendor cannot switch',
    input: { tcf: TC.restrictions },
    jurisdiction: 'DE',
    requirement: {
      category: 'marketing',
      iabVendorId: 7,
      requiredPurposes: [{ purpose: 2, basis: 'legitimate_interest' }],
    },
    outcome: 'drop',
    reason: 'tcf_publisher_restriction',
  },
  {
    name: 'restriction switches a flexible consent purpose to LI',
    input: { tcf: TC.restrictions },
    jurisdiction: 'DE',
    requirement: {
      category: 'marketing',
      iabVendorId: 730,
      requiredPurposes: [{ purpose: 7, basis: 'consent', flexible: true }],
    },
    outcome: 'allow',
    reason: 'granted',
  },
  {
    name: 'restriction demanding LI for purpose 1',
    input: { tcf: TC.restrictions },
    jurisdiction: 'DE',
    requirement: {
      category: 'marketing',
      iabVendorId: 730,
      requiredPurposes: [{ purpose: 1, basis: 'consent', flexible: true }],
    },
    outcome: 'drop',
    reason: 'tcf_legal_basis_invalid',
  },
  {
    name: 'vendor without consent in a rich string',
    input: { tcf: TC.restrictions },
    jurisdiction: 'DE',
    requirement: D.microsoft_ads,
    outcome: 'drop',
    reason: 'tcf_vendor_denied',
  },
  {
    name: 'GDPR does not apply: TCF off, categories decide',
    input: { tcf: TC.nothing, categories: { marketing: true }, cmp: { gdprApplies: false } },
    jurisdiction: 'DE',
    requirement: D.google_ads,
    outcome: 'allow',
    reason: 'granted',
  },
  {
    name: 'TCF v1 string: no valid consent',
    input: { tcf: TC.v1, categories: ALL },
    jurisdiction: 'DE',
    requirement: D.meta,
    outcome: 'drop',
    reason: 'signal_invalid',
  },

  // Unreadable signals
  {
    name: 'garbage TC string with every category granted',
    input: { tcf: 'garbage', categories: ALL },
    jurisdiction: 'DE',
    requirement: D.meta,
    outcome: 'drop',
    reason: 'signal_invalid',
  },
  {
    name: 'garbage GPP string, analytics',
    input: { gpp: 'DBABTA~zz', categories: ALL },
    jurisdiction: 'US',
    requirement: { category: 'analytics' },
    outcome: 'drop',
    reason: 'signal_invalid',
  },
  {
    name: 'invalid input shape',
    input: { categories: { marketing: 'yes' } } as unknown as ConsentInput,
    jurisdiction: 'US',
    requirement: D.meta,
    outcome: 'drop',
    reason: 'signal_invalid',
  },
];

describe('decide', () => {
  it.each(rows)('$name → $outcome ($reason)', (row) => {
    const state = normaliseConsent(row.input, {
      observedAt: 1,
      ...(row.secGpc === undefined ? {} : { secGpc: row.secGpc }),
    });
    for (const stage of [1, 2] as const) {
      expect(decide(state, row.requirement, { stage, jurisdiction: row.jurisdiction })).toMatchObject({
        outcome: row.outcome,
        reason: row.reason,
        stage,
        category: row.requirement.category,
      });
    }
  });

  it('fails closed on an unreadable state, except for essential deliveries', () => {
    expect(decide(null, D.meta, { stage: 2 })).toEqual({
      outcome: 'drop',
      reason: 'state_unreadable',
      stage: 2,
      category: 'marketing',
    });
    expect(decide(null, { category: 'essential' }, { stage: 2 })).toMatchObject({ outcome: 'allow' });
  });

  it('says what failed without any personal data', () => {
    const state = normaliseConsent({ tcf: TC.adsNot755 }, { observedAt: 1 });
    expect(decide(state, D.google_ads, { stage: 1, jurisdiction: 'DE' }).detail).toEqual({
      purpose: 1,
      vendorId: 755,
    });
  });
});
