import { describe, expect, it } from 'vitest';
import { craftTcString } from '../test/bits';
import { tcVectors } from '../test/vectors';
import { decide } from './decide';
import { tcfInForce } from './gates';
import { idSetHas } from './id-set';
import { normaliseConsent } from './normalise';
import { DEFAULT_CONSENT_REQUIREMENTS } from './requirements';
import { decodeTcString, type TcfDecoded } from './tcf';

const vectors = tcVectors();
const decodable = vectors.filter((vector) => vector.decoded !== undefined);
const undecodable = vectors.filter((vector) => vector.decoded === undefined);
const v2 = decodable.filter((vector) => vector.decoded?.version === 2);
const v1 = decodable.filter((vector) => vector.decoded?.version === 1);
const withSourceExpectations = decodable.filter((vector) => vector.expectedBySource !== undefined);
const all = { essential: true, functional: true, analytics: true, marketing: true, personalization: true };

describe('decodeTcString against the shared TC string vectors', () => {
  it('covers all 31 vectors: 22 decodable, 9 that must be rejected', () => {
    expect(vectors).toHaveLength(31);
    expect(decodable).toHaveLength(22);
    expect(undecodable).toHaveLength(9);
  });

  it.each(decodable)('decodes every field of $tcString as the reference decoder did', (vector) => {
    expect(decodeTcString(vector.tcString)).toEqual({ ok: true, value: vector.decoded });
  });

  it.each(withSourceExpectations)(
    'matches what the originating test suite expects for $tcString',
    (vector) => {
      const result = decodeTcString(vector.tcString);
      if (!result.ok) throw new Error(`expected ${vector.tcString} to decode`);
      const decoded = result.value;
      for (const [field, expected] of Object.entries(vector.expectedBySource ?? {})) {
        switch (field) {
          case 'maxVendorId':
            expect(decoded.vendorConsentsMaxId).toBe(expected);
            break;
          case 'created':
            // go-gdpr reads seconds; the string stores deciseconds.
            expect(decoded.created.slice(0, 19)).toBe(String(expected).slice(0, 19));
            break;
          case 'publisherRestrictions_purpose1_type1':
            expect(
              decoded.publisherRestrictions.find((r) => r.purposeId === 1 && r.restrictionType === 1)
                ?.vendors,
            ).toEqual(expected);
            break;
          case 'vendorConsentsNonEmpty':
            expect(decoded.vendorConsents.length > 0).toBe(expected);
            break;
          default:
            expect(decoded[field as keyof TcfDecoded]).toEqual(expected);
        }
      }
    },
  );

  it.each(undecodable)('rejects $tcString without throwing, and consent fails closed', (vector) => {
    const result = decodeTcString(vector.tcString);
    expect(result).toMatchObject({ ok: false, error: { code: 'tcf_undecodable' } });
    if (!result.ok) expect(result.error.message).toBe(vector.decodeError);

    // Even with every category granted alongside, an unreadable TC string means no consent.
    const state = normaliseConsent({ tcf: vector.tcString, categories: all }, { observedAt: 1 });
    expect(state.errors).toEqual(['tcf_undecodable']);
    expect(state.tcf).toMatchObject({ status: 'invalid', error: 'tcf_undecodable' });
    for (const requirement of Object.values(DEFAULT_CONSENT_REQUIREMENTS)) {
      expect(decide(state, requirement, { stage: 1, jurisdiction: 'DE' })).toMatchObject({
        outcome: 'drop',
        reason: 'signal_invalid',
      });
    }
    expect(Object.values(state.googleConsentMode)).toEqual(['denied', 'denied', 'denied', 'denied']);
  });

  it.each(v2)('carries the purposes and vendors of $tcString into the canonical state', (vector) => {
    const summary = vector.summary;
    if (summary === undefined) throw new Error('every decodable vector has a summary');
    const tcf = tcfInForce(normaliseConsent({ tcf: vector.tcString }, { observedAt: 1 }));
    if (tcf === undefined) throw new Error('a valid v2 string puts the TCF in force');
    for (const [purpose, granted] of Object.entries(summary.purposes_1_3_4_7_9_10_consent)) {
      expect(tcf.purposeConsents.includes(Number(purpose))).toBe(granted);
    }
    for (const [purpose, granted] of Object.entries(summary.purposes_2_7_9_10_LI)) {
      expect(tcf.purposeLegitimateInterests.includes(Number(purpose))).toBe(granted);
    }
    expect(idSetHas(tcf.vendorConsents, 755)).toBe(summary.vendor755_google_consent);
    expect(idSetHas(tcf.vendorLegitimateInterests, 755)).toBe(summary.vendor755_google_LI);
    expect(idSetHas(tcf.vendorConsents, 804)).toBe(summary.vendor804_linkedin_consent);
    expect(idSetHas(tcf.vendorConsents, 1126)).toBe(summary.vendor1126_microsoft_consent);
    expect(tcf.policyVersion).toBe(vector.decoded?.tcfPolicyVersion);
    expect(tcf.cmpId).toBe(vector.decoded?.cmpId);
    expect(tcf.lastUpdated).toBe(vector.decoded?.lastUpdated);
  });

  it.each(v2)('keeps every vendor and restriction of $tcString in the compact state', (vector) => {
    const decoded = vector.decoded;
    const tcf = tcfInForce(normaliseConsent({ tcf: vector.tcString }, { observedAt: 1 }));
    if (decoded === undefined || tcf === undefined) throw new Error('decodable v2 vector');
    const maxId = Math.max(decoded.vendorConsentsMaxId, decoded.vendorLegitimateInterestsMaxId, 1200);
    for (let id = 1; id <= maxId; id++) {
      expect(idSetHas(tcf.vendorConsents, id)).toBe(decoded.vendorConsents.includes(id));
      expect(idSetHas(tcf.vendorLegitimateInterests, id)).toBe(
        decoded.vendorLegitimateInterests.includes(id),
      );
    }
    expect(tcf.publisherRestrictions).toHaveLength(decoded.publisherRestrictions.length);
    decoded.publisherRestrictions.forEach((restriction, index) => {
      const stored = tcf.publisherRestrictions[index];
      expect(stored?.purposeId).toBe(restriction.purposeId);
      expect(stored?.restrictionType).toBe(restriction.restrictionType);
      for (const vendor of restriction.vendors) expect(idSetHas(stored?.vendors ?? 'r:', vendor)).toBe(true);
    });
  });

  it.each(v1)('decodes the legacy v1 string $tcString but grants nothing with it', (vector) => {
    expect(decodeTcString(vector.tcString)).toMatchObject({ ok: true, value: { version: 1 } });
    const state = normaliseConsent({ tcf: vector.tcString, categories: all }, { observedAt: 1 });
    expect(state.tcf).toMatchObject({ status: 'invalid', error: 'tcf_unsupported_version' });
    expect(decide(state, DEFAULT_CONSENT_REQUIREMENTS.meta, { stage: 1 })).toMatchObject({
      outcome: 'drop',
      reason: 'signal_invalid',
      detail: { signalError: 'tcf_unsupported_version' },
    });
  });
});

describe('decodeTcString work bounds', () => {
  it('refuses a restriction range the decoder would expand quadratically (seconds for 60 characters)', () => {
    const tcString = craftTcString({
      restrictions: [{ purpose: 1, type: 0, ranges: [{ start: 1, end: 65535 }] }],
    });
    expect(tcString.length).toBeLessThan(80);
    expect(decodeTcString(tcString)).toMatchObject({ ok: false, error: { code: 'tcf_too_complex' } });
    const state = normaliseConsent({ tcf: tcString }, { observedAt: 1 });
    expect(state.errors).toEqual(['tcf_too_complex']);
  });

  it('refuses many restrictions that together cover too many vendors', () => {
    const restrictions = Array.from({ length: 5 }, (_, i) => ({
      purpose: i + 1,
      type: 1,
      ranges: [{ start: 1, end: 4000 }],
    }));
    expect(decodeTcString(craftTcString({ restrictions }))).toMatchObject({
      ok: false,
      error: { code: 'tcf_too_complex' },
    });
  });

  it('refuses vendor consent ranges that expand to hundreds of thousands of ids', () => {
    const consentRanges = Array.from({ length: 5 }, () => ({ start: 1, end: 65535 }));
    expect(decodeTcString(craftTcString({ consentRanges }))).toMatchObject({
      ok: false,
      error: { code: 'tcf_too_complex' },
    });
  });

  it('accepts realistic restrictions: every GVL vendor restricted for each purpose', () => {
    const restrictions = Array.from({ length: 10 }, (_, i) => ({
      purpose: i + 1,
      type: 1,
      ranges: [{ start: 1, end: 1500 }],
    }));
    const result = decodeTcString(
      craftTcString({ consentRanges: [{ start: 1, end: 1500 }], purposeConsents: [1, 2, 7], restrictions }),
    );
    if (!result.ok) throw new Error(result.error.message);
    expect(result.value.publisherRestrictions).toHaveLength(10);
    expect(result.value.publisherRestrictions[0]?.vendors).toHaveLength(1500);
    expect(result.value.vendorConsents).toHaveLength(1500);
    expect(result.value.purposeConsents).toEqual([1, 2, 7]);
  });

  it('refuses over-long strings before decoding', () => {
    expect(decodeTcString(`C${'A'.repeat(9000)}`)).toMatchObject({
      ok: false,
      error: { code: 'tcf_too_long' },
    });
  });

  it.each(['', 'not a tc string', 'C', '////', 'CPSG_8APSG_8ANwAAAENDgCgAAAAAAAAAAAAAAAAAAAA.zzzz'])(
    'returns an error value for %j instead of throwing',
    (input) => {
      expect(decodeTcString(input)).toMatchObject({ ok: false, error: { code: 'tcf_undecodable' } });
    },
  );
});
