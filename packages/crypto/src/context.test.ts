import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ContextEncoder,
  DATA_CLASSES,
  type EncryptionContext,
  encodeContext,
  MAX_CONTEXT_FIELD_BYTES,
} from './context';

const KEY_ID = Buffer.alloc(16, 0x42);
const encode = (context: EncryptionContext): string => encodeContext(1, KEY_ID, context).toString('hex');

// A tiny alphabet (with NUL and a multi-byte character) makes equal and nearly-equal pairs common.
const text = fc.string({ minLength: 1, maxLength: 3, unit: fc.constantFrom('a', 'b', '\u0000', 'é') });
const contextArbitrary: fc.Arbitrary<EncryptionContext> = fc.record(
  {
    purpose: text,
    dataClass: fc.constantFrom(...DATA_CLASSES),
    table: text,
    column: text,
    rowId: fc.oneof(text, fc.integer({ min: 0, max: 1000 })),
    extra: fc.dictionary(text, text, { maxKeys: 3 }),
  },
  { requiredKeys: ['purpose'] },
);

/** The facts a context binds, in a form whose equality is the intended one (row ids by decimal string). */
function canonical(context: EncryptionContext): string {
  const extra = Object.entries(context.extra ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([
    context.purpose,
    context.dataClass ?? null,
    context.table ?? null,
    context.column ?? null,
    context.rowId === undefined ? null : String(context.rowId),
    extra,
  ]);
}

describe('encodeContext', () => {
  it('writes the documented bytes (stored ciphertexts depend on them)', () => {
    const pinned: [EncryptionContext, string][] = [
      [
        {
          purpose: 'integration-credential',
          dataClass: 'credentials',
          table: 'integration_credentials',
          column: 'secret',
          rowId: '0b9d3c62-6f0e-4d8a-9a51-3f1c2b7e8d40',
        },
        '01' +
          '42'.repeat(16) +
          '010016696e746567726174696f6e2d63726564656e7469616c' +
          '02000b63726564656e7469616c73' +
          '030017696e746567726174696f6e5f63726564656e7469616c73' +
          '04000673656372657405002430623964336336322d366630652d346438612d396135312d336631633262376538643430',
      ],
      [
        {
          purpose: 'xdomain-token',
          dataClass: 'tokens',
          rowId: 42n,
          extra: { ü: '😀 ok', aud: 'shop.example' },
        },
        '01' +
          '42'.repeat(16) +
          '01000d78646f6d61696e2d746f6b656e' +
          '020006746f6b656e73' +
          '0500023432' +
          '100003617564000c73686f702e6578616d706c65' +
          '100002c3bc0007f09f9880206f6b',
      ],
      [
        { purpose: 'identity-trait', dataClass: 'identity', table: 'traits', column: 'value', rowId: 7 },
        '01' +
          '42'.repeat(16) +
          '01000e6964656e746974792d7472616974020008' +
          '6964656e7469747903000674726169747304000576616c756505000137',
      ],
    ];
    for (const [context, bytes] of pinned) expect(encode(context)).toBe(bytes);
  });

  it('encodes two contexts to the same bytes exactly when they bind the same facts', () => {
    fc.assert(
      fc.property(contextArbitrary, contextArbitrary, (a, b) => {
        expect(encode(a) === encode(b)).toBe(canonical(a) === canonical(b));
      }),
      { numRuns: 3000 },
    );
  });

  it('encodes a context the same however its row id and extra entries are written', () => {
    fc.assert(
      fc.property(contextArbitrary, (a) => {
        const reordered: EncryptionContext = {
          ...a,
          ...(a.rowId === undefined ? {} : { rowId: String(a.rowId) }),
          ...(a.extra === undefined ? {} : { extra: Object.fromEntries(Object.entries(a.extra).reverse()) }),
        };
        expect(encode(reordered)).toBe(encode(a));
      }),
      { numRuns: 300 },
    );
  });

  it('keeps apart contexts that naive concatenation would merge', () => {
    const pairs: [EncryptionContext, EncryptionContext][] = [
      [
        { purpose: 'a', table: 'bc' },
        { purpose: 'ab', table: 'c' },
      ],
      [
        { purpose: 'p', table: 'x' },
        { purpose: 'p', column: 'x' },
      ],
      [
        { purpose: 'p', table: 't', column: 'c' },
        { purpose: 'p', table: 'c', column: 't' },
      ],
      [{ purpose: 'p', rowId: '1' }, { purpose: 'p' }],
      [
        { purpose: 'p', extra: { a: 'bc' } },
        { purpose: 'p', extra: { ab: 'c' } },
      ],
      [
        { purpose: 'p', extra: { table: 't' } },
        { purpose: 'p', table: 't' },
      ],
      [{ purpose: 'p', dataClass: 'identity' }, { purpose: 'p' }],
    ];
    for (const [a, b] of pairs) expect(encode(a)).not.toBe(encode(b));
  });

  it('binds the version and the key id', () => {
    const context = { purpose: 'p' };
    expect(encodeContext(1, KEY_ID, context).equals(encodeContext(2, KEY_ID, context))).toBe(false);
    expect(encodeContext(1, KEY_ID, context).equals(encodeContext(1, Buffer.alloc(16, 0x43), context))).toBe(
      false,
    );
  });

  it('encodes numeric, bigint and string row ids alike, and extra entries in any insertion order', () => {
    expect(encode({ purpose: 'p', rowId: 42 })).toBe(encode({ purpose: 'p', rowId: '42' }));
    expect(encode({ purpose: 'p', rowId: 42n })).toBe(encode({ purpose: 'p', rowId: '42' }));
    expect(encode({ purpose: 'p', extra: { b: '2', a: '1' } })).toBe(
      encode({ purpose: 'p', extra: { a: '1', b: '2' } }),
    );
  });

  it('refuses contexts that are incomplete, ambiguous or unbounded', () => {
    const bad: unknown[] = [
      {},
      { purpose: '' },
      { purpose: 42 },
      { purpose: 'p', table: '' },
      { purpose: 'p', dataClass: 'payments' },
      { purpose: 'p', rowId: 1.5 },
      { purpose: 'p', rowId: Number.MAX_SAFE_INTEGER + 1 },
      { purpose: 'p', column: 'x'.repeat(MAX_CONTEXT_FIELD_BYTES + 1) },
      { purpose: 'é'.repeat(MAX_CONTEXT_FIELD_BYTES / 2 + 1) },
      { purpose: 'lone \uD800 surrogate' },
      { purpose: 'p', extra: { k: '\uDC00' } },
      { purpose: 'p', extra: { '': 'v' } },
      { purpose: 'p', extra: { k: '' } },
      { purpose: 'p', extra: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) },
    ];
    for (const context of bad) {
      expect(() => encodeContext(1, KEY_ID, context as EncryptionContext)).toThrow(
        expect.objectContaining({ code: 'invalid_context' }),
      );
    }
  });

  it('counts a field in UTF-8 bytes, not characters', () => {
    const atLimit = 'é'.repeat(MAX_CONTEXT_FIELD_BYTES / 2);
    expect(encodeContext(1, KEY_ID, { purpose: atLimit })).toHaveLength(1 + 16 + 3 + MAX_CONTEXT_FIELD_BYTES);
    expect(
      encodeContext(1, KEY_ID, { purpose: 'p', rowId: 'x'.repeat(MAX_CONTEXT_FIELD_BYTES) }),
    ).toHaveLength(1 + 16 + 4 + 3 + MAX_CONTEXT_FIELD_BYTES);
    expect(() => encodeContext(1, KEY_ID, { purpose: `${atLimit}a` })).toThrow(
      expect.objectContaining({ code: 'invalid_context' }),
    );
  });

  it('accepts well-formed astral characters (surrogate pairs)', () => {
    expect(() => encode({ purpose: 'emoji 😀 ok' })).not.toThrow();
    expect(encode({ purpose: '😀' })).not.toBe(encode({ purpose: '\uFFFD' }));
  });
});

describe('ContextEncoder (the cached hot path)', () => {
  const keyIds = [KEY_ID, Buffer.alloc(16, 0x43)];
  // Few distinct fixed parts, many row ids: the shape real traffic has, so the cache hits and evicts.
  const repeating: fc.Arbitrary<EncryptionContext> = fc.record(
    {
      purpose: fc.constantFrom('a', 'b', 'é'),
      dataClass: fc.constantFrom(...DATA_CLASSES),
      table: fc.constantFrom('t', 'u'),
      column: fc.constantFrom('c', '\u0000'),
      rowId: fc.oneof(text, fc.integer({ min: 0, max: 1000 }), fc.bigInt({ min: 0n, max: 1000n })),
      extra: fc.dictionary(text, text, { maxKeys: 3 }),
    },
    { requiredKeys: ['purpose'] },
  );

  it('produces exactly the bytes of encodeContext, call after call, through cache hits and evictions', () => {
    for (const capacity of [0, 1, 2, 256]) {
      const encoder = new ContextEncoder(capacity);
      fc.assert(
        fc.property(fc.array(fc.tuple(repeating, fc.constantFrom(0, 1)), { maxLength: 30 }), (calls) => {
          for (const [context, which] of calls) {
            const keyId = keyIds[which] ?? KEY_ID;
            expect(encoder.encode(1, keyId, context).toString('hex')).toBe(
              encodeContext(1, keyId, context).toString('hex'),
            );
          }
        }),
        { numRuns: 150 },
      );
      expect(encoder.size).toBeLessThanOrEqual(capacity + 1);
    }
  });

  it('still refuses a bad field when the rest of the context is cached', () => {
    const encoder = new ContextEncoder();
    const good: EncryptionContext = {
      purpose: 'p',
      dataClass: 'identity',
      table: 't',
      column: 'c',
      rowId: 1,
    };
    encoder.encode(1, KEY_ID, good);
    const bad: unknown[] = [
      { ...good, rowId: 1.5 },
      { ...good, rowId: '' },
      { ...good, rowId: 'lone \uD800' },
      { ...good, rowId: 'x'.repeat(MAX_CONTEXT_FIELD_BYTES + 1) },
      { ...good, table: '' },
      { ...good, column: 42 },
      { ...good, dataClass: 'payments' },
      { ...good, purpose: undefined },
      { ...good, extra: { k: '' } },
    ];
    for (const context of bad) {
      expect(() => encoder.encode(1, KEY_ID, context as EncryptionContext)).toThrow(
        expect.objectContaining({ code: 'invalid_context' }),
      );
    }
    // A failure leaves the encoder usable and correct.
    expect(encoder.encode(1, KEY_ID, good).equals(encodeContext(1, KEY_ID, good))).toBe(true);
  });

  it('keeps its cache bounded however many distinct contexts pass through', () => {
    const encoder = new ContextEncoder(8);
    for (let i = 0; i < 1000; i++) encoder.encode(1, KEY_ID, { purpose: `p${i}`, table: 't', rowId: i });
    expect(encoder.size).toBeLessThanOrEqual(8);
    expect(new ContextEncoder(0).size).toBe(0);
    expect(() => new ContextEncoder(-1)).toThrow(RangeError);
  });

  it('grows its scratch for the largest contexts the limits allow', () => {
    const encoder = new ContextEncoder();
    const big = 'x'.repeat(MAX_CONTEXT_FIELD_BYTES);
    const extra = Object.fromEntries(
      Array.from({ length: 16 }, (_, i) => [`${i}`.padEnd(MAX_CONTEXT_FIELD_BYTES, 'k'), big]),
    );
    const context: EncryptionContext = { purpose: big, table: big, column: big, rowId: big, extra };
    expect(encoder.encode(1, KEY_ID, context).equals(encodeContext(1, KEY_ID, context))).toBe(true);
    expect(
      encoder.encode(1, KEY_ID, { purpose: 'p' }).equals(encodeContext(1, KEY_ID, { purpose: 'p' })),
    ).toBe(true);
  });
});
