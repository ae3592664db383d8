import { readVectorJson } from '@signal/testkit';
import { describe, expect, it } from 'vitest';
import { namedTcStrings, tcVectors } from '../test/vectors';
import { deriveGoogleConsentMode, type GcdState, parseGcd, parseGcs } from './google-consent-mode';
import { normaliseConsent } from './normalise';
import type { TcfDecoded } from './tcf';

interface ConsentModeVectors {
  gcs_examples: { gcs: string; ad_storage: string; analytics_storage: string }[];
  gcd_letters: Record<string, string>;
  gcd_examples: { gcd: string; meaning: string }[];
}

const consentMode = readVectorJson<ConsentModeVectors>('consent/google_consent_mode_v2.json');
const v2Vectors = tcVectors().filter((vector) => vector.decoded?.version === 2);
const GCD_SIGNALS = ['ad_storage', 'analytics_storage', 'ad_user_data', 'ad_personalization'] as const;

/** The vector file describes each letter in words ("default denied, update granted"); read them back. */
function letterStates(description: string): { default: GcdState; update: GcdState } {
  const read = (kind: 'default' | 'update'): GcdState => {
    const match = new RegExp(`${kind} (granted|denied)`).exec(description);
    return match?.[1] === 'granted' ? 'granted' : match?.[1] === 'denied' ? 'denied' : 'not_set';
  };
  return { default: read('default'), update: read('update') };
}

describe('Google Consent Mode hit parameters from the shared vectors', () => {
  it.each(consentMode.gcs_examples)('parses gcs $gcs', (example) => {
    expect(parseGcs(example.gcs)).toEqual({
      ok: true,
      value: { ad_storage: example.ad_storage, analytics_storage: example.analytics_storage },
    });
  });

  it.each(consentMode.gcd_examples)('parses gcd $gcd ($meaning) letter by letter', (example) => {
    const result = parseGcd(example.gcd);
    if (!result.ok) throw new Error(result.error.message);
    GCD_SIGNALS.forEach((signal, index) => {
      const letter = example.gcd.charAt(2 + index * 2);
      const description = consentMode.gcd_letters[letter];
      if (description === undefined) throw new Error(`letter ${letter} missing from the vector file`);
      const { default: defaultState, update } = letterStates(description);
      expect(result.value[signal]).toEqual({
        default: defaultState,
        update,
        effective: update === 'not_set' ? defaultState : update,
      });
    });
  });

  // The vector file's own explanation of each example, as effective states (ad, analytics, user data, perso).
  const meanings: Record<string, readonly GcdState[]> = {
    'all four denied by default': ['denied', 'denied', 'denied', 'denied'],
    'all denied by default then granted by user': ['granted', 'granted', 'granted', 'granted'],
    'all granted by default': ['granted', 'granted', 'granted', 'granted'],
    'granted by default, then user withdrew': ['denied', 'denied', 'denied', 'denied'],
    'analytics_storage denied by default, others not set': ['not_set', 'denied', 'not_set', 'not_set'],
  };

  it.each(consentMode.gcd_examples)('reads gcd $gcd as "$meaning"', (example) => {
    const result = parseGcd(example.gcd);
    if (!result.ok) throw new Error(result.error.message);
    expect(GCD_SIGNALS.map((signal) => result.value[signal].effective)).toEqual(meanings[example.meaning]);
  });

  it.each(['G1', 'G102', 'G211', 'g111', ''])('rejects gcs %j', (gcs) => {
    expect(parseGcs(gcs)).toMatchObject({ ok: false, error: { code: 'google_consent_mode_invalid' } });
  });

  it.each(['11p1p1p1p', '11x1p1p1p5', '11p1p1p1', 'abcdefghij', '11P1P1P1P5'])('rejects gcd %j', (gcd) => {
    expect(parseGcd(gcd)).toMatchObject({ ok: false, error: { code: 'google_consent_mode_invalid' } });
  });

  it('turns gcs/gcd from the page into categories, and an unreadable one into a closed state', () => {
    const granted = normaliseConsent(
      { cmp: { googleConsentMode: { gcd: '11r1r1r1r5' } } },
      { observedAt: 1 },
    );
    expect(granted.categories).toEqual({ essential: true, marketing: true, analytics: true });
    expect(granted.googleConsentMode).toEqual({
      ad_storage: 'granted',
      analytics_storage: 'granted',
      ad_user_data: 'granted',
      ad_personalization: 'granted',
    });
    const mixed = normaliseConsent({ cmp: { googleConsentMode: { gcs: 'G101' } } }, { observedAt: 1 });
    expect(mixed.categories).toEqual({ essential: true, marketing: false, analytics: true });
    const broken = normaliseConsent({ cmp: { googleConsentMode: { gcd: '99zz' } } }, { observedAt: 1 });
    expect(broken.errors).toEqual(['google_consent_mode_invalid']);
  });
});

describe('deriveGoogleConsentMode', () => {
  const consentFor = (decoded: TcfDecoded, purposes: number[]): boolean =>
    purposes.every((purpose) => decoded.purposeConsents.includes(purpose)) &&
    decoded.vendorConsents.includes(755) &&
    !decoded.publisherRestrictions.some(
      (r) => purposes.includes(r.purposeId) && r.restrictionType !== 1 && r.vendors.includes(755),
    );

  it.each(v2Vectors)("follows Google's TCF mapping for $tcString", (vector) => {
    const decoded = vector.decoded;
    if (decoded === undefined) throw new Error('decodable vector');
    const state = normaliseConsent({ tcf: vector.tcString }, { observedAt: 1 });
    const value = (granted: boolean) => (granted ? 'granted' : 'denied');
    expect(state.googleConsentMode).toEqual({
      ad_storage: value(consentFor(decoded, [1])),
      ad_user_data: value(consentFor(decoded, [1, 7])),
      ad_personalization: value(consentFor(decoded, [3, 4])),
      // Not driven by TCF in Google's integration; ours reads purposes 1 + 8 (see README).
      analytics_storage: value(
        decoded.purposeConsents.includes(1) &&
          (decoded.purposeConsents.includes(8) || decoded.purposeLegitimateInterests.includes(8)),
      ),
    });
  });

  it('denies ad_personalization when the publisher forbids purpose 3 to Google, leaving the rest granted', () => {
    const state = normaliseConsent({ tcf: namedTcStrings().p3RestrictedFor755 }, { observedAt: 1 });
    expect(state.googleConsentMode).toMatchObject({
      ad_storage: 'granted',
      ad_user_data: 'granted',
      ad_personalization: 'denied',
    });
  });

  it('derives from categories without TCF, and honours a denial the page reported for one signal', () => {
    const state = normaliseConsent(
      {
        categories: { marketing: true, analytics: false },
        cmp: { googleConsentMode: { ad_personalization: 'denied' } },
      },
      { observedAt: 1, jurisdiction: 'DE' },
    );
    expect(state.googleConsentMode).toEqual({
      ad_storage: 'granted',
      analytics_storage: 'denied',
      ad_user_data: 'granted',
      ad_personalization: 'denied',
    });
  });

  it('denies the advertising signals under GPC where US law may apply, not in an opt-in jurisdiction', () => {
    const input = { categories: { marketing: true, analytics: true } };
    const us = normaliseConsent(input, { observedAt: 1, secGpc: '1', jurisdiction: 'US-CA' });
    expect(us.googleConsentMode).toEqual({
      ad_storage: 'denied',
      analytics_storage: 'granted',
      ad_user_data: 'denied',
      ad_personalization: 'denied',
    });
    const eu = normaliseConsent(input, { observedAt: 1, secGpc: '1', jurisdiction: 'FR' });
    expect(eu.googleConsentMode.ad_user_data).toBe('granted');
    expect(deriveGoogleConsentMode(eu, 'US-CA').ad_user_data).toBe('denied');
    expect(deriveGoogleConsentMode(eu).ad_user_data).toBe('denied');
  });

  it('grants nothing without a choice in an opt-in jurisdiction, everything unopposed in the US', () => {
    const eu = normaliseConsent({}, { observedAt: 1, jurisdiction: 'DE' });
    expect(Object.values(eu.googleConsentMode)).toEqual(['denied', 'denied', 'denied', 'denied']);
    const us = normaliseConsent({}, { observedAt: 1, jurisdiction: 'US-TX' });
    expect(Object.values(us.googleConsentMode)).toEqual(['granted', 'granted', 'granted', 'granted']);
  });
});
