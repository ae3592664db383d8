import { createHash, createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PiiError } from '../errors';
import { compilePiiRules, type PiiOutcome } from './compile';
import type { PiiRulesInput } from './config';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const HEX64 = /^[0-9a-f]{64}$/;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Reflect.ownKeys(value)) deepFreeze((value as Record<PropertyKey, unknown>)[key]);
  }
  return value;
}

describe('hash_fields', () => {
  it('normalises by the type the field name implies, then hashes with SHA-256 hex', () => {
    const transform = compilePiiRules({
      hash_fields: [
        'traits.email',
        'traits.phone',
        'traits.first_name',
        'context.traits.gender',
        'traits.nickname',
      ],
    });
    const out = transform({
      traits: {
        email: '  John.Doe@Example.COM ',
        phone: '+1 (650) 555-1234',
        first_name: "Mary-Jane O'Neil",
        nickname: ' JD ',
      },
      context: { traits: { gender: 'Female' } },
    });
    expect(out).toEqual({
      traits: {
        email: sha256('john.doe@example.com'),
        phone: sha256('16505551234'),
        first_name: sha256('maryjaneoneil'),
        nickname: sha256('jd'),
      },
      context: { traits: { gender: sha256('f') } },
    });
  });

  it('uses an explicit type over the inferred one', () => {
    const transform = compilePiiRules({ hash_fields: [{ field: 'properties.contact', type: 'phone' }] });
    expect(transform({ properties: { contact: '00 44 20 7031 3000' } })).toEqual({
      properties: { contact: sha256('442070313000') },
    });
  });

  it('passes 64-hex values through lowercased, and drops the digest of the empty string', () => {
    const digest = sha256('john@example.com');
    const transform = compilePiiRules({ hash_fields: ['traits.email', 'traits.email2'] });
    const out = transform({ traits: { email: ` ${digest.toUpperCase()} `, email2: sha256('') } });
    expect(out).toEqual({ traits: { email: digest } });
  });

  it('hashes numbers as their digits, keeps booleans and nulls, and drops values it cannot hash', () => {
    const transform = compilePiiRules({
      hash_fields: [
        'traits.phone',
        'traits.vip',
        'traits.email',
        'traits.address',
        'traits.score',
        'traits.blank',
      ],
    });
    const out = transform({
      traits: {
        phone: 16505551234,
        vip: true,
        email: null,
        address: { street: '1 Main St' },
        score: 1.5,
        blank: '  ',
      },
    });
    expect(out).toEqual({ traits: { phone: sha256('16505551234'), vip: true, email: null } });
  });

  it('hashes what a type rule refuses in its generic form instead of leaving it in clear', () => {
    const transform = compilePiiRules({ hash_fields: ['traits.gender', 'traits.birthday'] });
    expect(transform({ traits: { gender: 'Prefer Not To Say', birthday: 'sometime in May' } })).toEqual({
      traits: { gender: sha256('prefer not to say'), birthday: sha256('sometime in may') },
    });
  });

  it('matches one level with "*" (object keys and array indices) and hashes each element of a leaf array', () => {
    const transform = compilePiiRules({
      hash_fields: ['*.email', 'properties.products.*.email', 'traits.emails'],
    });
    const out = transform({
      traits: { email: 'a@x.io', emails: ['B@x.io', 7, { nested: true }] },
      properties: { email: 'c@x.io', products: [{ email: 'd@x.io', sku: 'S1' }, { sku: 'S2' }, 'loose'] },
      context: { ip: '203.0.113.9' },
    });
    expect(out).toEqual({
      traits: { email: sha256('a@x.io'), emails: [sha256('b@x.io'), sha256('7'), null] },
      properties: {
        email: sha256('c@x.io'),
        products: [{ email: sha256('d@x.io'), sku: 'S1' }, { sku: 'S2' }, 'loose'],
      },
      context: { ip: '203.0.113.9' },
    });
  });

  it('ignores paths that do not exist and shares untouched subtrees with the input', () => {
    const transform = compilePiiRules({ hash_fields: ['traits.email', 'properties.missing.deep'] });
    const event = { traits: { email: 'a@x.io' }, properties: { cart: { total: 3 } }, context: { page: {} } };
    const out = transform(event);
    expect(out).not.toBe(event);
    expect(out.properties).toBe(event.properties);
    expect(out.context).toBe(event.context);
    expect(out.traits).not.toBe(event.traits);
  });
});

describe('redact_fields', () => {
  const transform = compilePiiRules({
    redact_fields: [
      'properties.card',
      { field: 'traits.phone', mode: 'partial' },
      { field: 'traits.pin', mode: 'partial' },
      { field: 'traits.email', mode: 'hash' },
      { field: 'context.ip', mode: 'null' },
      { field: 'traits.address', mode: 'full' },
    ],
  });

  it('applies each masking mode', () => {
    const out = transform({
      properties: { card: '4111 1111 1111 1111' },
      traits: {
        phone: '+1 (650) 555-1234',
        pin: '1234',
        email: ' A@X.io ',
        address: { street: '1 Main St' },
      },
      context: { ip: '203.0.113.9' },
    });
    expect(out).toEqual({
      properties: { card: '***' },
      traits: { phone: '***1234', pin: '***', email: sha256('a@x.io'), address: '***' },
      context: { ip: null },
    });
  });

  it('hash mode gives the same digest as hash_fields (join consistency)', () => {
    const hashed = compilePiiRules({ hash_fields: ['traits.email'] })({ traits: { email: 'A@X.io' } });
    expect(transform({ traits: { email: 'A@X.io' } })).toEqual(hashed);
  });
});

describe('hash_algorithm: hmac-sha256', () => {
  const key = randomBytes(32);
  const config: PiiRulesInput = { hash_fields: ['traits.email'], hash_algorithm: 'hmac-sha256' };

  it('is keyed HMAC-SHA-256 of the normalised value, unlike plain SHA-256', () => {
    const out = compilePiiRules(config, { hmacKey: key })({ traits: { email: ' A@X.io' } });
    const expected = createHmac('sha256', key).update('a@x.io').digest('hex');
    expect(out).toEqual({ traits: { email: expected } });
    expect(expected).not.toBe(sha256('a@x.io'));
  });

  it('depends on the key', () => {
    const a = compilePiiRules(config, { hmacKey: randomBytes(32) })({ traits: { email: 'a@x.io' } });
    const b = compilePiiRules(config, { hmacKey: randomBytes(32) })({ traits: { email: 'a@x.io' } });
    expect(a).not.toEqual(b);
  });

  it('copies the key, so changing the caller buffer afterwards changes nothing', () => {
    const mine = Buffer.from(key);
    const transform = compilePiiRules(config, { hmacKey: mine });
    const before = transform({ traits: { email: 'a@x.io' } });
    mine.fill(0);
    expect(transform({ traits: { email: 'a@x.io' } })).toEqual(before);
  });

  it('refuses to compile without a key or with a short one', () => {
    expect(() => compilePiiRules(config)).toThrow(expect.objectContaining({ code: 'pii.hmac_key_required' }));
    expect(() => compilePiiRules(config, { hmacKey: randomBytes(16) })).toThrow(
      expect.objectContaining({ code: 'pii.hmac_key_invalid' }),
    );
    expect(() => compilePiiRules(config)).toThrow(PiiError);
  });
});

describe('safety', () => {
  it('never mutates the input (deep-frozen input works; result is a new object)', () => {
    const event = deepFreeze({
      traits: { email: 'a@x.io', phone: '123456789', list: ['x@y.io'] },
      properties: { products: [{ email: 'p@x.io' }] },
    });
    const snapshot = structuredClone(event);
    const transform = compilePiiRules({
      hash_fields: ['traits.email', 'traits.list', 'properties.products.*.email'],
      redact_fields: [{ field: 'traits.phone', mode: 'partial' }],
    });
    const out = transform(event);
    expect(event).toEqual(snapshot);
    expect(out).not.toBe(event);
    expect(out.traits).toEqual({ email: sha256('a@x.io'), phone: '***6789', list: [sha256('x@y.io')] });
  });

  it('treats "__proto__" keys in events as plain data and never touches prototypes', () => {
    const event = JSON.parse(
      '{"traits":{"__proto__":{"email":"evil@x.io","isAdmin":true},"email":"a@x.io"},"__proto__":{"polluted":1}}',
    ) as Record<string, unknown>;
    const transform = compilePiiRules({
      hash_fields: ['traits.*.email', 'traits.email'],
      redact_fields: ['*.isAdmin'],
    });
    const out = transform(event);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    const traits = out.traits as Record<string, unknown>;
    expect(Object.getPrototypeOf(traits)).toBe(Object.prototype);
    expect(Object.hasOwn(traits, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(traits, '__proto__')?.value).toEqual({
      email: sha256('evil@x.io'),
      isAdmin: true,
    });
    expect(traits.email).toBe(sha256('a@x.io'));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).email).toBeUndefined();
  });

  it('refuses prototype paths in the configuration', () => {
    for (const field of ['__proto__.email', 'traits.constructor.prototype', 'traits.prototype']) {
      expect(() => compilePiiRules({ hash_fields: [field] })).toThrow(/is not allowed/);
    }
  });

  it('handles very deep events without recursing into them', () => {
    let deep: Record<string, unknown> = { leaf: 'x' };
    for (let i = 0; i < 100_000; i += 1) deep = { next: deep };
    const out = compilePiiRules({ hash_fields: ['traits.email'] })({ traits: { email: 'a@x.io' }, deep });
    expect(out.deep).toBe(deep);
  });

  it('does not descend into class instances or follow inherited properties', () => {
    class Profile {
      email = 'a@x.io';
    }
    const transform = compilePiiRules({ hash_fields: ['traits.profile.email', 'traits.toString'] });
    const profile = new Profile();
    const out = transform({ traits: { profile } });
    expect((out.traits as Record<string, unknown>).profile).toBe(profile);
    expect(Object.keys(out.traits as object)).toEqual(['profile']);
  });

  it('returns an empty object for a non-object event', () => {
    const transform = compilePiiRules({ hash_fields: ['traits.email'] });
    expect(transform(['a@x.io'] as unknown as Record<string, unknown>)).toEqual({});
  });
});

describe('enabled and reporting', () => {
  it('enabled: false leaves every field as it is (in a new top-level object)', () => {
    const event = { traits: { email: 'a@x.io' } };
    const out = compilePiiRules({ enabled: false, hash_fields: ['traits.email'] })(event);
    expect(out).toEqual(event);
    expect(out).not.toBe(event);
  });

  it('reports one bounded outcome per touched value, never the value', () => {
    const outcomes: PiiOutcome[] = [];
    const transform = compilePiiRules(
      { hash_fields: ['traits.email', 'traits.id', 'traits.obj'], redact_fields: ['context.ip'] },
      { onOutcome: (o) => outcomes.push(o) },
    );
    transform({ traits: { email: 'a@x.io', id: sha256('x'), obj: {} }, context: { ip: '203.0.113.9' } });
    expect(outcomes).toEqual(['hashed', 'passthrough', 'dropped', 'masked']);
  });
});

describe('properties', () => {
  const key = fc.constantFrom('email', 'phone', 'name', '__proto__', 'constructor', 'toString', 'a', 'b');
  const leaf = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.double());
  const tree = fc.letrec((tie) => ({
    node: fc.oneof(
      { depthSize: 'small' },
      leaf,
      fc.array(tie('node'), { maxLength: 4 }),
      fc.dictionary(key, tie('node'), { maxKeys: 5 }),
    ),
  })).node;
  const event = fc.record({ traits: tree, properties: tree, context: tree });
  const transform = compilePiiRules({
    hash_fields: ['traits.email', 'traits.*.phone', 'properties.*.*.name', '*.a'],
    redact_fields: [
      { field: 'context.b', mode: 'null' },
      { field: 'traits.b', mode: 'full' },
    ],
  });

  it('never mutates the input and never pollutes Object.prototype', () => {
    fc.assert(
      fc.property(event, (e) => {
        const before = structuredClone(e);
        transform(e);
        expect(e).toEqual(before);
        expect(Object.keys(Object.prototype)).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it('is idempotent: hashed output passes through a second run unchanged', () => {
    fc.assert(
      fc.property(event, (e) => {
        const once = transform(e);
        expect(transform(once)).toEqual(once);
      }),
      { numRuns: 300 },
    );
  });

  it('leaves no plaintext at a hashed path: a string there is 64-hex or the field is gone', () => {
    const emailOnly = compilePiiRules({ hash_fields: ['traits.email'] });
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.integer(), fc.object()), (value) => {
        const out = emailOnly({ traits: { email: value } });
        const hashed = (out.traits as Record<string, unknown>).email;
        expect(hashed === undefined || (typeof hashed === 'string' && HEX64.test(hashed))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
