import { GppModel } from '@iabgpp/cmpapi';
import { describe, expect, it } from 'vitest';
import { BitWriter } from '../test/bits';
import { gppString as gppVector, gppVectors, namedTcStrings } from '../test/vectors';
import { decide } from './decide';
import { tcfInForce } from './gates';
import { decodeGpp, gppUsViews } from './gpp';
import { idSetHas } from './id-set';
import { normaliseConsent } from './normalise';
import { DEFAULT_CONSENT_REQUIREMENTS } from './requirements';

const vectors = gppVectors();
const decodable = vectors.filter((vector) => vector.decoded !== undefined);
const invalid = vectors.filter((vector) => vector.expectedInvalid === true);
const TCF_CA_V1 = 5;

function decodeOrThrow(gppString: string) {
  const result = decodeGpp(gppString);
  if (!result.ok) throw new Error(`${gppString}: ${result.error.message}`);
  return result.value;
}

/** A GPP string built by the IAB library itself, for sections the shared vectors do not cover. */
function encodeGpp(section: string, fields: Record<string, unknown>): string {
  const model = new GppModel();
  for (const [field, value] of Object.entries(fields)) model.setFieldValue(section, field, value);
  return model.encode();
}

describe('decodeGpp against the shared GPP vectors', () => {
  it('covers all 16 vectors: 14 decodable, 2 invalid', () => {
    expect(vectors).toHaveLength(16);
    expect(decodable).toHaveLength(14);
    expect(invalid).toHaveLength(2);
  });

  it.each(decodable)('decodes $gppString ($description) as the reference decoder did', (vector) => {
    const decoded = decodeOrThrow(vector.gppString);
    expect(decoded.sectionIds).toEqual(vector.sectionIds);
    for (const [name, fields] of Object.entries(vector.decoded ?? {})) {
      if (name === 'tcfcav1') {
        // Deliberately not decoded (unbounded range expansion, no decision depends on it): listed as skipped.
        expect(decoded.skippedSections).toContain(TCF_CA_V1);
        expect(decoded.sections[name]).toBeUndefined();
      } else {
        expect(decoded.sections[name]).toEqual(fields);
      }
    }
  });

  it.each(decodable.filter((vector) => vector.expectedBySource !== undefined))(
    'matches what the IAB test suite expects for $gppString',
    (vector) => {
      const decoded = decodeOrThrow(vector.gppString);
      for (const [key, expected] of Object.entries(vector.expectedBySource ?? {})) {
        if (key === 'sectionIds') expect(decoded.sectionIds).toEqual(expected);
        else expect(decoded.sections[key]).toMatchObject(expected as Record<string, unknown>);
      }
    },
  );

  it.each(invalid)('rejects $gppString without throwing, and consent fails closed', (vector) => {
    expect(decodeGpp(vector.gppString)).toMatchObject({ ok: false, error: { code: 'gpp_undecodable' } });
    const state = normaliseConsent(
      { gpp: vector.gppString, categories: { marketing: true } },
      { observedAt: 1 },
    );
    expect(state.errors).toEqual(['gpp_undecodable']);
    expect(
      decide(state, DEFAULT_CONSENT_REQUIREMENTS.meta, { stage: 1, jurisdiction: 'US-CA' }),
    ).toMatchObject({
      outcome: 'drop',
      reason: 'signal_invalid',
    });
  });
});

describe('US opt-out view of GPP sections', () => {
  it.each([
    ['uspv1 only: Notice=Y, OptOutSale=N, LspaCovered=N', 'not_opted_out'],
    ['uspv1: user opted out of sale (OptOutSale=Y)', 'opted_out'],
    ['uspv1 all not-applicable (round-trips to itself)', 'not_applicable'],
  ] as const)('reads the uspv1 sale opt-out of "%s" as %s', (description, sale) => {
    expect(gppUsViews(decodeOrThrow(gppVector(description)))).toEqual([
      {
        section: 'uspv1',
        sale,
        sharing: 'not_applicable',
        targetedAdvertising: 'not_applicable',
        gpc: false,
      },
    ]);
  });

  it('reads usnat opt-outs: 2 = did not opt out, 0 = not applicable', () => {
    expect(gppUsViews(decodeOrThrow(gppVector('usnat v1 sample (opt-out fields set)')))).toEqual([
      {
        section: 'usnat',
        sale: 'not_opted_out',
        sharing: 'not_opted_out',
        targetedAdvertising: 'not_opted_out',
        gpc: false,
      },
    ]);
    expect(gppUsViews(decodeOrThrow(gppVector('usnat v2')))).toEqual([
      {
        section: 'usnat',
        sale: 'not_applicable',
        sharing: 'not_applicable',
        targetedAdvertising: 'not_applicable',
        gpc: false,
      },
    ]);
  });

  it('derives sale and sharing opt-outs and GPC from a California section', () => {
    const gppString = encodeGpp('usca', {
      SaleOptOutNotice: 1,
      SharingOptOutNotice: 1,
      SaleOptOut: 1,
      SharingOptOut: 1,
      Gpc: true,
    });
    expect(gppUsViews(decodeOrThrow(gppString))).toEqual([
      {
        section: 'usca',
        sale: 'opted_out',
        sharing: 'opted_out',
        targetedAdvertising: 'not_applicable',
        gpc: true,
      },
    ]);
    const state = normaliseConsent({ gpp: gppString, categories: { marketing: true } }, { observedAt: 1 });
    expect(state.usOptOut).toEqual({ sale: true, sharing: true, targetedAdvertising: false });
    expect(state.gpc).toBe(true);
    expect(
      decide(state, DEFAULT_CONSENT_REQUIREMENTS.meta, { stage: 1, jurisdiction: 'US-CA' }),
    ).toMatchObject({
      outcome: 'drop',
      reason: 'gpc_opt_out',
    });
  });

  it('derives a targeted-advertising opt-out from a Virginia section', () => {
    const gppString = encodeGpp('usva', { TargetedAdvertisingOptOutNotice: 1, TargetedAdvertisingOptOut: 1 });
    const state = normaliseConsent({ gpp: gppString }, { observedAt: 1 });
    expect(state.usOptOut).toEqual({ sale: false, sharing: false, targetedAdvertising: true });
    expect(
      decide(state, DEFAULT_CONSENT_REQUIREMENTS.tiktok, { stage: 2, jurisdiction: 'US-VA' }),
    ).toMatchObject({
      outcome: 'drop',
      reason: 'us_opt_out',
    });
    // Analytics is not a sale or sharing: allowed in an opt-out jurisdiction.
    expect(decide(state, { category: 'analytics' }, { stage: 2, jurisdiction: 'US-VA' })).toMatchObject({
      outcome: 'allow',
      reason: 'not_opted_out',
    });
  });

  it('honours applicableSections: sections the CMP says do not apply are ignored', () => {
    // The "tcfeuv2 + uspv1" vector with the uspv1 section switched to an opt-out of sale.
    const model = new GppModel(gppVector('tcfeuv2 + uspv1'));
    model.setFieldValue('uspv1', 'OptOutSale', 'Y');
    const gppString = model.encode();
    const all = normaliseConsent({ gpp: gppString }, { observedAt: 1 });
    expect(all.usOptOut.sale).toBe(true);
    expect(all.tcf).toMatchObject({ status: 'valid', source: 'gpp' });
    const onlyTcf = normaliseConsent(
      { gpp: gppString, cmp: { gppApplicableSections: [2] } },
      { observedAt: 1 },
    );
    expect(onlyTcf.usOptOut.sale).toBe(false);
    expect(onlyTcf.gpp).toMatchObject({ status: 'valid', applicableSections: [2], us: [] });
    const onlyUsp = normaliseConsent(
      { gpp: gppString, cmp: { gppApplicableSections: [6] } },
      { observedAt: 1 },
    );
    expect(onlyUsp.tcf).toBeUndefined();
    expect(onlyUsp.usOptOut.sale).toBe(true);
  });
});

describe('the tcfeuv2 section of a GPP string', () => {
  it('stands in for a TC string when the page sends none', () => {
    const gppString = gppVector('tcfeuv2 vendor consents [1,173,722]');
    const tcf = tcfInForce(normaliseConsent({ gpp: gppString }, { observedAt: 1 }));
    if (tcf === undefined) throw new Error('expected the GPP TCF section to be in force');
    expect(tcf.source).toBe('gpp');
    for (const vendor of [1, 173, 722]) expect(idSetHas(tcf.vendorConsents, vendor)).toBe(true);
    expect(idSetHas(tcf.vendorConsents, 755)).toBe(false);
  });

  it('gives way to the standalone TC string', () => {
    const state = normaliseConsent(
      { gpp: gppVector('tcfeuv2 only'), tcf: namedTcStrings().p1p7 },
      { observedAt: 1 },
    );
    expect(state.tcf).toMatchObject({ status: 'valid', source: 'tcf', purposeConsents: [1, 7] });
  });
});

describe('decodeGpp work bounds', () => {
  it('refuses a header whose section range would expand to a million ids', () => {
    const header = new BitWriter().int(3, 6).int(1, 6).int(1, 12).int(1, 1).fibonacci(1).fibonacci(1_000_000);
    const gppString = `${header.toBase64Url()}~1YNN`;
    expect(gppString.length).toBeLessThan(20);
    expect(decodeGpp(gppString)).toMatchObject({
      ok: false,
      error: { code: 'gpp_undecodable', message: 'header lists 1000001 sections, the string carries 1' },
    });
  });

  it('reads a well-formed Fibonacci header the same way the IAB decoder does', () => {
    const header = new BitWriter().int(3, 6).int(1, 6).int(1, 12).int(1, 1).fibonacci(7).fibonacci(1);
    const model = new GppModel();
    model.setFieldValue('usnat', 'SaleOptOut', 2);
    model.setFieldValue('usca', 'SaleOptOut', 1);
    const [, usnat, usca] = model.encode().split('~');
    const decoded = decodeOrThrow(`${header.toBase64Url()}~${usnat}~${usca}`);
    expect(decoded.sectionIds).toEqual([7, 8]);
    expect(decoded.sections.usnat).toMatchObject({ SaleOptOut: 2 });
    expect(decoded.sections.usca).toMatchObject({ SaleOptOut: 1 });
  });

  it('refuses a tcfeuv2 section whose restrictions the TCF decoder could not bound', () => {
    const w = new BitWriter().int(2, 6).int(0, 72).int(10, 12).int(1, 12).int(0, 6).int(4, 6).int(13, 6);
    w.int(1, 12).int(4, 6).int(0, 2).int(0, 12).int(0, 48).int(0, 1).int(3, 6).int(4, 6);
    w.int(0, 16).int(0, 1).int(0, 16).int(0, 1); // no vendors
    w.int(1, 12).int(1, 6).int(0, 2).int(1, 12).int(1, 1).int(1, 16).int(65535, 16);
    const result = decodeGpp(`DBABMA~${w.toBase64Url()}`);
    expect(result).toMatchObject({ ok: false, error: { code: 'gpp_undecodable' } });
    if (!result.ok)
      expect(result.error.message).toMatch(/^tcfeuv2 section: publisher restriction covers 65535/);
  });

  it('refuses over-long strings before decoding', () => {
    expect(decodeGpp(`DBABTA~${'A'.repeat(17_000)}`)).toMatchObject({
      ok: false,
      error: { code: 'gpp_too_long' },
    });
  });
});
