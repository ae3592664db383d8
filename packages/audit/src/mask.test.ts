import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SECRET_FIELDS, MASK, MASK_CHANGED, maskChanges } from './mask';

describe('maskChanges: secrets by field name', () => {
  it('masks a changed secret as "••••" → "•••• (changed)"', () => {
    expect(maskChanges({ api_secret: { old: 'abc', new: 'def' } })).toEqual({
      api_secret: { old: '••••', new: '•••• (changed)' },
    });
  });

  it('shows whether a secret changed, was set or was cleared, never its value', () => {
    expect(
      maskChanges({
        password: { old: 'hunter2', new: 'hunter2' },
        access_token: { old: null, new: 'tok' },
        hmac_secret: { old: 'old' },
      }),
    ).toEqual({
      password: { old: MASK, new: MASK },
      access_token: { old: null, new: MASK_CHANGED },
      hmac_secret: { old: MASK, new: null },
    });
  });

  it('masks every default secret field', () => {
    for (const field of DEFAULT_SECRET_FIELDS.map((f) => f.replace('.*', ''))) {
      expect(maskChanges({ [field]: { old: 'a', new: 'b' } })[field], field).toEqual({
        old: MASK,
        new: MASK_CHANGED,
      });
    }
  });

  it('masks credentials.* whether written as a path or as a nested object', () => {
    expect(
      maskChanges({
        'credentials.client_id': { old: 'id-1', new: 'id-2' },
        credentials: { old: { pixel_id: '1', token: 'a' }, new: { pixel_id: '1', token: 'b' } },
      }),
    ).toEqual({
      'credentials.client_id': { old: MASK, new: MASK_CHANGED },
      credentials: { old: MASK, new: MASK_CHANGED },
    });
  });

  it('matches secret-looking names in any spelling and leaves ordinary fields alone', () => {
    const out = maskChanges({
      'X-Api-Key': { old: 'a', new: 'b' },
      webhookSigningSecret: { old: 'a', new: 'b' },
      Authorization: { old: 'a', new: 'b' },
      invitee_email: { old: null, new: 'x' },
      contact_phone: { old: '+4470001', new: '+4470000' },
      enabled: { old: true, new: false },
      name: { old: 'Meta', new: 'Meta CAPI' },
      key_id: { old: 'k1', new: 'k2' },
      batch_size: { old: 10, new: 20 },
    });
    for (const field of ['X-Api-Key', 'webhookSigningSecret', 'Authorization', 'contact_phone']) {
      expect(out[field], field).toEqual({ old: MASK, new: MASK_CHANGED });
    }
    expect(out.invitee_email).toEqual({ old: null, new: MASK_CHANGED });
    expect(out.enabled).toEqual({ old: true, new: false });
    expect(out.name).toEqual({ old: 'Meta', new: 'Meta CAPI' });
    expect(out.key_id).toEqual({ old: 'k1', new: 'k2' });
    expect(out.batch_size).toEqual({ old: 10, new: 20 });
  });

  it('takes extra field names and globs, and a replacement pattern', () => {
    const options = { secretFields: ['conversion_label', 'vendor.*'] };
    expect(
      maskChanges(
        {
          conversion_label: { old: 'a', new: 'b' },
          vendor: { old: { region: 'eu' }, new: { region: 'us' } },
          'vendor.region': { old: 'eu', new: 'us' },
          region: { old: 'eu', new: 'us' },
        },
        options,
      ),
    ).toEqual({
      conversion_label: { old: MASK, new: MASK_CHANGED },
      vendor: { old: MASK, new: MASK_CHANGED },
      'vendor.region': { old: MASK, new: MASK_CHANGED },
      region: { old: 'eu', new: 'us' },
    });
    expect(maskChanges({ pin: { old: '1', new: '2' } }, { secretPattern: /^pin$/ })).toEqual({
      pin: { old: MASK, new: MASK_CHANGED },
    });
  });

  it('masks secret keys inside nested objects and arrays, comparing each with its old value', () => {
    expect(
      maskChanges({
        destinations: {
          old: [{ url: 'https://a.example', api_key: 'k1' }],
          new: [
            { url: 'https://a.example', api_key: 'k1' },
            { url: 'https://b.example', api_key: 'k2' },
          ],
        },
      }),
    ).toEqual({
      destinations: {
        old: [{ url: 'https://a.example', api_key: MASK }],
        new: [
          { url: 'https://a.example', api_key: MASK },
          { url: 'https://b.example', api_key: MASK_CHANGED },
        ],
      },
    });
  });
});

describe('maskChanges: secrets by value', () => {
  const keyHex = randomBytes(32).toString('hex');
  const samples = {
    'a 256-bit key in hex': keyHex,
    'a key inside text': `ENCRYPTION_KEY=${keyHex.toUpperCase()}`,
    'a v1 ciphertext': `v1.${randomBytes(90).toString('base64url')}`,
    'a pipeline key': 'dk_live_4f9a8b7c6d5e4f3a',
    'a JWT': 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3JfMSJ9.c2lnbmF0dXJl',
    'a PEM private key': '-----BEGIN RSA PRIVATE KEY-----\nMIIE...',
    'an email address': 'jane.doe@example.com',
  };

  for (const [what, value] of Object.entries(samples)) {
    it(`strips ${what} from an ordinary field`, () => {
      const out = maskChanges({ note: { old: 'plain', new: value }, list: { old: [], new: ['ok', value] } });
      expect(out.note).toEqual({ old: 'plain', new: MASK });
      expect(out.list).toEqual({ old: [], new: ['ok', MASK] });
    });
  }

  it('never records bytes', () => {
    expect(maskChanges({ blob: { old: null, new: randomBytes(32) } })).toEqual({
      blob: { old: null, new: MASK },
    });
  });

  it('keeps ordinary values and their JSON types', () => {
    const value = { a: 1, b: [true, null, 'x'], c: { d: -0.5 }, id: 'int_123', digest: 'abc123' };
    expect(maskChanges({ settings: { old: null, new: value } })).toEqual({
      settings: { old: null, new: value },
    });
  });

  it('stays linear on very long values', () => {
    const long = `${'x'.repeat(1_000_000)}@`;
    expect(maskChanges({ doc: { old: null, new: long } }).doc?.new).toBe(long);
  });
});

describe('maskChanges: properties', () => {
  const secretName = fc.constantFrom('api_secret', 'access_token', 'password', 'hmac_secret', 'clientSecret');
  const secretValue = fc.stringMatching(/^[A-Za-z0-9]{12,24}$/);
  const ordinary = fc.jsonValue({ maxDepth: 2 });

  it('no secret value survives, wherever the secret field sits', () => {
    fc.assert(
      fc.property(
        secretName,
        secretValue,
        secretValue,
        ordinary,
        fc.boolean(),
        (name, old, neu, other, nested) => {
          const changes = nested
            ? { config: { old: { [name]: old, other }, new: { [name]: neu, other } } }
            : { [name]: { old, new: neu }, other: { old: other, new: other } };
          const text = JSON.stringify(maskChanges(changes));
          return !text.includes(old) && !text.includes(neu);
        },
      ),
    );
  });

  it('is idempotent', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ maxLength: 10 }), fc.record({ old: ordinary, new: ordinary })),
        (changes) => {
          const once = maskChanges(changes);
          expect(maskChanges(once)).toEqual(once);
        },
      ),
    );
  });
});
