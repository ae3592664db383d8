import { readVectorJson } from '@signal/testkit';
import { describe, expect, it } from 'vitest';
import { decide } from './decide';
import { normaliseConsent } from './normalise';
import { DEFAULT_CONSENT_REQUIREMENTS } from './requirements';
import { parseUsPrivacy } from './us-privacy';

interface UsPrivacyVector {
  usprivacy: string;
  version: number;
  notice_given: string;
  opted_out_of_sale: string;
  lspa_covered: string;
  sale_allowed: boolean;
}

const vectors = readVectorJson<UsPrivacyVector[]>('consent/us_privacy_strings.json');

describe('parseUsPrivacy against the shared US Privacy vectors', () => {
  it('covers all 5 vectors', () => {
    expect(vectors).toHaveLength(5);
  });

  it.each(vectors)('parses $usprivacy', (vector) => {
    expect(parseUsPrivacy(vector.usprivacy)).toEqual({
      ok: true,
      value: {
        version: vector.version,
        notice: vector.notice_given,
        optOutSale: vector.opted_out_of_sale,
        lspaCovered: vector.lspa_covered,
        saleAllowed: vector.sale_allowed,
      },
    });
  });

  it.each(vectors)(
    'lets $usprivacy block sales in a US jurisdiction exactly when sale is not allowed',
    (vector) => {
      const state = normaliseConsent({ usPrivacy: vector.usprivacy }, { observedAt: 1 });
      expect(state.usOptOut.sale).toBe(!vector.sale_allowed);
      const decision = decide(state, DEFAULT_CONSENT_REQUIREMENTS.meta, { stage: 1, jurisdiction: 'US-CA' });
      expect(decision.outcome).toBe(vector.sale_allowed ? 'allow' : 'drop');
      if (!vector.sale_allowed) expect(decision.reason).toBe('us_opt_out');
    },
  );

  it('accepts lowercase letters, as some CMPs send them', () => {
    expect(parseUsPrivacy('1yyn')).toMatchObject({
      ok: true,
      value: { optOutSale: 'Y', saleAllowed: false },
    });
  });

  it.each(['', '1', '1YN', '1YNNN', '2YNN', '1XNN', 'Y1NN', ' 1YNN'])('rejects %j', (value) => {
    expect(parseUsPrivacy(value)).toMatchObject({ ok: false, error: { code: 'us_privacy_invalid' } });
  });

  it('fails the state closed on an invalid string', () => {
    const state = normaliseConsent({ usPrivacy: '1XYZ', categories: { marketing: true } }, { observedAt: 1 });
    expect(state.errors).toEqual(['us_privacy_invalid']);
    expect(decide(state, DEFAULT_CONSENT_REQUIREMENTS.meta, { stage: 1, jurisdiction: 'US' }).outcome).toBe(
      'drop',
    );
  });
});
