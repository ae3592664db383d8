import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PiiConfigError } from './errors';
import { createVendorNormalizer, hashFor, normalizeFor } from './vendor-normalizer';
import { VENDOR_IDS } from './vendors/profile';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

describe('createVendorNormalizer', () => {
  it('tells hashed fields from clear-text ones', () => {
    const meta = createVendorNormalizer('meta');
    expect(meta.isHashed('em')).toBe(true);
    expect(meta.isHashed('client_ip_address')).toBe(false);
    expect(meta.isHashed('nope')).toBeUndefined();
    expect(meta.normalize('client_ip_address', ' 203.0.113.9 ')).toEqual({
      ok: true,
      normalized: '203.0.113.9',
      hash: null,
      passthrough: false,
    });
    expect(createVendorNormalizer('google').normalize('country', 'united kingdom')).toMatchObject({
      normalized: 'GB',
      hash: null,
    });
  });

  it('rejects unknown fields, non-strings and blanks with a reason', () => {
    const meta = createVendorNormalizer('meta');
    expect(meta.normalize('email', 'a@x.io')).toEqual({ ok: false, reason: 'unknown_field' });
    expect(meta.normalize('em', { toString: () => 'a@x.io' })).toEqual({ ok: false, reason: 'not_a_string' });
    expect(meta.normalize('ph', 1.5)).toEqual({ ok: false, reason: 'not_a_string' });
    expect(meta.normalize('em', ' \t ')).toEqual({ ok: false, reason: 'empty' });
    expect(meta.normalize('ge', 'unknown')).toEqual({ ok: false, reason: 'invalid' });
    expect(meta.hash('ge', 'unknown')).toBeNull();
  });

  it('accepts safe integers as their digits', () => {
    expect(hashFor('meta', 'ph', 16505551234)).toBe(sha256('16505551234'));
    expect(hashFor('meta', 'zp', 94105)).toBe(sha256('94105'));
  });

  it('never hashes the empty string for any vendor and field', () => {
    const emptyDigest = sha256('');
    fc.assert(
      fc.property(fc.constantFrom(...VENDOR_IDS), fc.string({ maxLength: 12 }), (vendor, input) => {
        const normalizer = createVendorNormalizer(vendor);
        for (const field of normalizer.fields) {
          const result = normalizer.normalize(field, input);
          if (result.ok) {
            expect(result.normalized).not.toBe('');
            expect(result.hash).not.toBe(emptyDigest);
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('hashes to the SHA-256 of the normalised value, lowercase hex', () => {
    fc.assert(
      fc.property(fc.string(), (input) => {
        const result = normalizeFor('snapchat', 'fn', input);
        if (result.ok && !result.passthrough) expect(result.hash).toBe(sha256(result.normalized));
        if (result.ok) expect(result.hash).toMatch(/^[0-9a-f]{64}$/);
      }),
    );
  });

  it('passes pre-hashed values through, lowercased; MD5 only for Meta; can be switched off', () => {
    const digest = sha256('a@x.io');
    const md5 = createHash('md5').update('a@x.io').digest('hex');
    expect(normalizeFor('tiktok', 'email', ` ${digest.toUpperCase()} `)).toEqual({
      ok: true,
      normalized: digest.toUpperCase(),
      hash: digest,
      passthrough: true,
    });
    expect(normalizeFor('meta', 'em', md5)).toMatchObject({ hash: md5, passthrough: true });
    expect(normalizeFor('tiktok', 'email', md5)).toEqual({ ok: false, reason: 'invalid' });
    expect(normalizeFor('meta', 'external_id', digest, { passthroughHashed: false })).toMatchObject({
      hash: sha256(digest),
      passthrough: false,
    });
    expect(normalizeFor('meta', 'em', sha256(''))).toEqual({ ok: false, reason: 'empty_hash' });
  });

  it('validates its options with messages that say what to set', () => {
    expect(() => createVendorNormalizer('snapchat', { snapDefaultCallingCode: '01' })).toThrow(
      PiiConfigError,
    );
    expect(() => createVendorNormalizer('snapchat', { snapDefaultCallingCode: '01' })).toThrow(
      /snapDefaultCallingCode: a country calling code/,
    );
    expect(() => createVendorNormalizer('google', { googleEmailRule: 'dots' as never })).toThrow(
      /googleEmailRule/,
    );
    expect(() => createVendorNormalizer('myspace' as never)).toThrow(/vendor: must be one of meta, google/);
  });
});

describe('phone numbers', () => {
  it('completes national numbers from a country hint', () => {
    expect(normalizeFor('meta', 'ph', '(479) 281-3113', { country: 'US' })).toMatchObject({
      normalized: '14792813113',
    });
    expect(normalizeFor('google', 'phone_number', '020 7031 3000', { country: 'gb' })).toMatchObject({
      normalized: '+442070313000',
    });
    expect(normalizeFor('snapchat', 'ph', '020 7031 3000', { country: 'GB' })).toMatchObject({
      normalized: '442070313000',
    });
    // An international prefix wins over the hint.
    expect(normalizeFor('google', 'phone_number', '+33 1 42 86 83 26', { country: 'US' })).toMatchObject({
      normalized: '+33142868326',
    });
  });

  it('falls back to the vendor rule without a hint or with an unusable one', () => {
    expect(normalizeFor('meta', 'ph', '(479) 281-3113')).toMatchObject({ normalized: '4792813113' });
    expect(normalizeFor('meta', 'ph', '(479) 281-3113', { country: 'USA' })).toMatchObject({
      normalized: '4792813113',
    });
  });

  it('rejects what cannot be E.164 for Google and TikTok', () => {
    expect(normalizeFor('google', 'phone_number', '+1 555 123 4567 890 123')).toEqual({
      ok: false,
      reason: 'invalid',
    });
    expect(normalizeFor('tiktok', 'phone', '0612345678')).toEqual({ ok: false, reason: 'invalid' });
    expect(normalizeFor('tiktok', 'phone', '0033 6 12 34 56 78')).toMatchObject({
      normalized: '+33612345678',
    });
  });

  it('reads a compact +CC number as international for Snap (no second country code)', () => {
    expect(normalizeFor('snapchat', 'ph', '+442070313000')).toMatchObject({ normalized: '442070313000' });
    expect(normalizeFor('snapchat', 'ph', '4472342344', { snapDefaultCallingCode: '44' })).toMatchObject({
      normalized: '444472342344',
    });
  });
});

/** Vendor, field and how each sends the E.164 digits `cc…`: Meta, Pinterest and Snap without "+". */
const PHONE_FIELDS = [
  { vendor: 'meta', field: 'ph', sent: (digits: string) => digits },
  { vendor: 'pinterest', field: 'ph', sent: (digits: string) => digits },
  { vendor: 'snapchat', field: 'ph', sent: (digits: string) => digits },
  { vendor: 'google', field: 'phone_number', sent: (digits: string) => `+${digits}` },
  { vendor: 'tiktok', field: 'phone', sent: (digits: string) => `+${digits}` },
] as const;

describe('phone numbers with a country hint', () => {
  // [input, hint, the E.164 digits every vendor must send]
  const cases: ReadonlyArray<readonly [string, string, string]> = [
    // Germany: with its country code (Meta's documented format), with a prefix, with the trunk 0.
    ['4915112345678', 'DE', '4915112345678'],
    ['49 151 12345678', 'DE', '4915112345678'],
    ['+49 151 12345678', 'DE', '4915112345678'],
    ['0049 151 12345678', 'DE', '4915112345678'],
    ['0151 12345678', 'DE', '4915112345678'],
    ['(0)151 12345678', 'DE', '4915112345678'],
    ['15112345678', 'DE', '4915112345678'], // trunk 0 left out; +1 511… is not a valid number
    ['030 12345678', 'DE', '493012345678'],
    // Ambiguous: +49 30 123456 (Berlin) and the national 04930 123456 are both valid; the code is taken.
    ['4930123456', 'DE', '4930123456'],
    // United Kingdom.
    ['447400123456', 'GB', '447400123456'],
    ['+44 7400 123456', 'GB', '447400123456'],
    ['0044 7400 123456', 'GB', '447400123456'],
    ['07400 123456', 'GB', '447400123456'],
    ['7400 123456', 'GB', '447400123456'], // +7 400… (Russia) is not valid
    ['020 7031 3000', 'GB', '442070313000'],
    ['07700 900123', 'GB', '447700900123'], // Ofcom's drama range: possible, not valid; still completed
    // United States: national numbers carry no trunk prefix, so they are also read as foreign ones.
    ['(479) 281-3113', 'US', '14792813113'], // not +47 92813113 (a valid Norwegian number)
    ['646 555 1234', 'US', '16465551234'], // not +64 6 555 1234 (a valid New Zealand number)
    ['1 479 281 3113', 'US', '14792813113'],
    ['+1 (479) 281-3113', 'US', '14792813113'],
    ['001 479 281 3113', 'US', '14792813113'],
    // France.
    ['33612345678', 'FR', '33612345678'],
    ['33 6 12 34 56 78', 'FR', '33612345678'],
    ['+33 6 12 34 56 78', 'FR', '33612345678'],
    ['0033 6 12 34 56 78', 'FR', '33612345678'],
    ['06 12 34 56 78', 'FR', '33612345678'],
    ['6 12 34 56 78', 'FR', '33612345678'], // +61 2345678 (Australia) is not valid
    ['33142868326', 'FR', '33142868326'],
    // A foreign number with its country code, without "+", for a person of another country.
    ['33612345678', 'DE', '33612345678'], // +49 33612345678 is valid too, but would be written 033612…
    ['447400123456', 'FR', '447400123456'],
    ['4915112345678', 'GB', '4915112345678'],
    ['4915112345678', 'US', '4915112345678'],
  ];

  for (const { vendor, field, sent } of PHONE_FIELDS) {
    it.each(cases)(`${vendor} ${field}: %j with hint %s is sent as %s`, (input, country, digits) => {
      const normalizer = createVendorNormalizer(vendor);
      expect(normalizer.normalize(field, input, { country })).toEqual({
        ok: true,
        normalized: sent(digits),
        hash: sha256(sent(digits)),
        passthrough: false,
      });
    });
  }

  it('hashes the German number from the review the same with and without the hint', () => {
    // The review's case: with the hint DE the country code used to be added twice ("494915112345678").
    for (const { vendor, field } of PHONE_FIELDS.filter((f) => f.vendor !== 'snapchat')) {
      const withHint = hashFor(vendor, field, '4915112345678', { country: 'DE' });
      expect(withHint).toBe(hashFor(vendor, field, '4915112345678'));
      expect(withHint).not.toBe(
        hashFor(
          vendor,
          field,
          vendor === 'meta' || vendor === 'pinterest' ? '494915112345678' : '+494915112345678',
        ),
      );
    }
  });

  it("without a hint, keeps each vendor's own rule", () => {
    const sent = (vendor: (typeof PHONE_FIELDS)[number]['vendor'], input: string) => {
      const entry = PHONE_FIELDS.find((f) => f.vendor === vendor);
      if (entry === undefined) throw new Error(vendor);
      const result = normalizeFor(vendor, entry.field, input);
      return result.ok ? result.normalized : result.reason;
    };
    // With the country code, in any notation: the same everywhere except Snap's SDK default calling code.
    for (const input of ['4915112345678', '+49 151 12345678', '0049 151 12345678']) {
      expect(sent('meta', input)).toBe('4915112345678');
      expect(sent('pinterest', input)).toBe('4915112345678');
      expect(sent('google', input)).toBe('+4915112345678');
      expect(sent('tiktok', input)).toBe('+4915112345678');
    }
    expect(sent('snapchat', '+49 151 12345678')).toBe('4915112345678');
    expect(sent('snapchat', '0049 151 12345678')).toBe('4915112345678');
    expect(sent('snapchat', '4915112345678')).toBe('14915112345678'); // no prefix: the SDK's "1"
    // A national number cannot be completed: digits as given, or refused where E.164 is required.
    expect(sent('meta', '0151 12345678')).toBe('15112345678');
    expect(sent('google', '0151 12345678')).toBe('invalid');
    expect(sent('tiktok', '06 12 34 56 78')).toBe('invalid');
  });

  it('falls back to the vendor rule when neither reading is a possible number', () => {
    expect(normalizeFor('meta', 'ph', '555-0100', { country: 'US' })).toMatchObject({
      normalized: '5550100',
    });
    expect(normalizeFor('google', 'phone_number', '12', { country: 'DE' })).toMatchObject({
      normalized: '+12',
    });
  });
});

describe('vendor specifics', () => {
  it('Google: the documented Gmail rule only touches gmail.com and googlemail.com', () => {
    expect(normalizeFor('google', 'email', 'J.Doe+x@Gmail.com')).toMatchObject({
      normalized: 'jdoe+x@gmail.com',
    });
    expect(normalizeFor('google', 'email', 'j.doe+x@example.com')).toMatchObject({
      normalized: 'j.doe+x@example.com',
    });
    expect(normalizeFor('google', 'email', '...@gmail.com')).toEqual({ ok: false, reason: 'invalid' });
  });

  it('Pinterest: documented gender is f, m or n', () => {
    expect(normalizeFor('pinterest', 'ge', 'Non-Binary')).toMatchObject({
      normalized: 'n',
      hash: sha256('n'),
    });
    expect(normalizeFor('pinterest', 'ge', 'Non-Binary', { pinterestRules: 'rudderstack' })).toMatchObject({
      normalized: 'non-binary',
    });
  });

  it('Meta: the date-of-birth window follows the clock', () => {
    const in2030 = { now: () => new Date('2030-01-01T00:00:00Z') };
    expect(normalizeFor('meta', 'db', '01-01-2028')).toEqual({ ok: false, reason: 'invalid' });
    expect(normalizeFor('meta', 'db', '01-01-2028', in2030)).toMatchObject({ normalized: '20280101' });
  });

  it('Meta: state and country names become two-letter codes', () => {
    expect(normalizeFor('meta', 'st', 'Newfoundland and Labrador')).toMatchObject({ normalized: 'nl' });
    expect(normalizeFor('meta', 'country', "Côte d'Ivoire")).toMatchObject({ normalized: 'ci' });
    expect(normalizeFor('meta', 'st', 'Québec')).toMatchObject({ normalized: 'qc' });
    expect(normalizeFor('meta', 'country', 'Ivory Coast')).toMatchObject({ normalized: 'ci' });
  });
});
