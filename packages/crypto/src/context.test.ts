import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DATA_CLASSES, type EncryptionContext, encodeContext, MAX_CONTEXT_FIELD_BYTES } from './context';

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

  it('accepts well-formed astral characters (surrogate pairs)', () => {
    expect(() => encode({ purpose: 'emoji 😀 ok' })).not.toThrow();
    expect(encode({ purpose: '😀' })).not.toBe(encode({ purpose: '\uFFFD' }));
  });
});
