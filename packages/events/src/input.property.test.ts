import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkedConsent, consentSchema } from './consent';
import { eventInputSchema } from './event';
import { checkedInput, parseEventInput } from './input';
import { findJsonProblem, isWithinJsonLimits } from './json';
import type { JsonLimits } from './limits';

/**
 * The gateway validates event inputs with `parseEventInput`: a hand-written mirror of `eventInputSchema`
 * with the schema as fallback. These properties hold the mirror to the schema: whenever the fast path
 * accepts, the schema accepts with the same output bytes; whenever the schema refuses, the fast path does
 * too (so the caller gets the schema's own issues); and realistic valid input does take the fast path.
 */

const text = (values: readonly string[]) => fc.constantFrom(...values);
const long = (n: number) => 'x'.repeat(n);
/** Mostly valid values, sometimes a value of the wrong type or out of bounds. */
const field = <T>(valid: fc.Arbitrary<T>, invalid: readonly unknown[]) =>
  fc.oneof({ arbitrary: valid, weight: 12 }, { arbitrary: fc.constantFrom(...invalid), weight: 1 });

const identifier = field(text(['anon-1', 'u', long(256), 'a\ud83d\ude00']), [
  long(257),
  '',
  5,
  {},
  [],
  'a\ud800',
  '\udc00b',
]);
const nullable = <T>(arb: fc.Arbitrary<T>) => fc.oneof(arb, fc.constant(null));
const payload = fc.oneof(
  { arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 })), weight: 10 },
  {
    arbitrary: fc.constantFrom(
      [],
      'text',
      null,
      { deep: { a: { b: { c: { d: { e: { f: { g: { h: 1 } } } } } } } } },
      { big: long(8193) },
      { list: Array.from({ length: 1001 }, () => 0) },
      { [long(257)]: 1 },
      JSON.parse('{"__proto__": {"polluted": true}}'),
    ),
    weight: 1,
  },
);
const consent = fc.record(
  {
    categories: field(
      fc.record(
        {
          essential: fc.boolean(),
          analytics: fc.boolean(),
          marketing: field(fc.boolean(), ['yes', 1]),
          unknownCategory: fc.boolean(),
        },
        { requiredKeys: [] },
      ),
      [null, [], 'all'],
    ),
    tcf: field(text(['CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA', '']), ['has space', long(16_385), 7]),
    gpp: field(text(['DBABMA~CPXxRfAPXxRfAAfKABENB', '']), ['not printable\n']),
    gppSid: field(fc.array(fc.integer({ min: 0, max: 65_535 }), { maxLength: 4 }), [
      [-1],
      [65_536],
      [1.5],
      ['2'],
      Array.from({ length: 33 }, () => 1),
      [Number.MAX_SAFE_INTEGER + 2],
      7,
    ]),
    gpc: field(fc.boolean(), ['1', null]),
    usPrivacy: field(text(['1YNN', '1---']), ['1YN', 'YNNN', 5]),
    extra: fc.string({ maxLength: 3 }),
  },
  { requiredKeys: [] },
);
const context = fc.record(
  {
    ip: field(text(['198.51.100.1', '2001:db8::1']), ['not-an-ip', '300.1.1.1', 5]),
    consent: field(consent, [null, 'granted', []]),
    userAgent: field(text(['Mozilla/5.0', '', long(1024)]), [long(1025), 5]),
    page: field(
      fc.record(
        {
          url: field(text(['https://a.example/?gclid=g', '']), [long(8193), null]),
          referrer: text(['https://r.example/', '']),
          title: field(text(['T']), [long(1025), 1]),
          path: text(['/p']),
          search: text(['?q=1']),
          hash: text(['#x']),
        },
        { requiredKeys: [] },
      ),
      ['https://a.example/', null],
    ),
    clickIds: field(fc.dictionary(text(['gclid', 'fbclid', 'ttclid']), text(['c1', 'c2'])), [
      { 'bad name': 'v' },
      { gclid: '' },
      { gclid: 'has space' },
      { gclid: 5 },
      Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`id${i}`, 'v'])),
    ]),
    library: field(
      fc.record(
        { name: text(['datafly.js']), version: text(['1.0.0', '']), extra: text(['x']) },
        {
          requiredKeys: ['name'],
        },
      ),
      [{ name: '' }, { version: '1' }, 'datafly'],
    ),
    locale: field(text(['de-DE', long(64)]), [long(65), 1]),
    unknown: fc.jsonValue({ maxDepth: 1 }),
  },
  { requiredKeys: [] },
);
const body = fc.record(
  {
    type: field(text(['track', 'page', 'identify', 'group']), ['screen', 'alias', 1, null]),
    event: field(nullable(text(['purchase', long(256)])), ['', long(257), 1]),
    userId: nullable(identifier),
    anonymousId: nullable(identifier),
    groupId: nullable(identifier),
    messageId: field(text(['m-1', long(128)]), ['', 'has space', long(129), null]),
    properties: payload,
    traits: payload,
    context: field(context, [null, 'ctx', []]),
    timestamp: field(text(['2025-01-01T00:00:00Z', '2025-06-01T12:00:00.123+02:00']), [
      '2025-01-01T00:00:00',
      'yesterday',
      0,
    ]),
    pipelineKey: text(['dk_test_abc']),
  },
  { requiredKeys: ['type'] },
);

describe('parseEventInput (the schema without zod for valid input)', () => {
  it('accepts only what eventInputSchema accepts, with the same output bytes, and takes the fast path for most valid input', () => {
    let fast = 0;
    let valid = 0;
    let invalid = 0;
    fc.assert(
      fc.property(
        fc.oneof({ arbitrary: body, weight: 9 }, { arbitrary: fc.anything(), weight: 1 }),
        (raw) => {
          const expected = eventInputSchema.safeParse(raw);
          const checked = checkedInput(raw);
          const actual = parseEventInput(raw);
          expect(actual.success).toBe(expected.success);
          if (expected.success) {
            valid += 1;
            expect(JSON.stringify(actual.data)).toBe(JSON.stringify(expected.data));
            if (checked !== undefined) {
              fast += 1;
              expect(JSON.stringify(checked)).toBe(JSON.stringify(expected.data));
            }
          } else {
            invalid += 1;
            expect(checked).toBeUndefined();
            expect(actual.error?.issues).toEqual(expected.error.issues);
          }
        },
      ),
      { numRuns: 5000 },
    );
    expect(invalid).toBeGreaterThan(500);
    expect(valid).toBeGreaterThan(300);
    // Every valid input of the generator is one the mirror covers.
    expect(fast).toBe(valid);
  });

  it('takes the fast path for what Datafly.js sends', () => {
    const sdkEvent = {
      type: 'track',
      event: 'purchase',
      anonymousId: 'anon-1',
      messageId: '8d1f5c3e-6a53-4c55-9f0a-0a4f6f1b2c3d',
      properties: { value: 42.5, currency: 'EUR', items: [{ item_id: 'sku-1', price: 42.5, quantity: 1 }] },
      context: {
        page: { url: 'https://shop.example/checkout?gclid=abc', referrer: 'https://www.google.com/' },
        consent: { categories: { analytics: true, marketing: false }, gpc: false },
        library: { name: 'datafly.js', version: '1.0.0' },
        locale: 'de-DE',
      },
      timestamp: '2026-12-06T07:00:00.000Z',
      pipelineKey: 'dk_live_x',
    };
    expect(checkedInput(sdkEvent)).toEqual(eventInputSchema.parse(sdkEvent));
  });
});

describe('checkedConsent', () => {
  it('accepts exactly what consentSchema accepts, with the same output bytes', () => {
    fc.assert(
      fc.property(fc.oneof(consent, fc.anything()), (raw) => {
        const expected = consentSchema.safeParse(raw);
        const actual = checkedConsent(raw);
        if (expected.success) expect(JSON.stringify(actual)).toBe(JSON.stringify(expected.data));
        else expect(actual).toBeUndefined();
      }),
      { numRuns: 3000 },
    );
  });
});

describe('isWithinJsonLimits', () => {
  const tight: JsonLimits = {
    maxDepth: 3,
    maxKeysPerObject: 3,
    maxKeyLength: 4,
    maxArrayLength: 3,
    maxStringLength: 5,
    maxNodes: 12,
  };
  it('agrees with findJsonProblem at every limit', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue({ maxDepth: 5 }), fc.anything({ maxDepth: 3 })), (value) => {
        expect(isWithinJsonLimits(value, tight)).toBe(findJsonProblem(value, tight) === null);
      }),
      { numRuns: 5000 },
    );
  });
});
