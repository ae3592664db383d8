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
