import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseJsonBytes } from './json-body';

/**
 * The depth check runs on the raw text before JSON.parse and skips string contents without reading them
 * character by character. These properties hold it to the depth of the parsed value: strings full of
 * brackets, quotes and backslash runs must neither hide real nesting nor count as nesting.
 */

/** Nesting depth of a parsed JSON value: a scalar is 0, `[]` and `{}` are 1. */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + Math.max(0, ...children.map(depthOf));
}

/** Strings made of what could confuse a text scanner: brackets, quotes, backslashes, escapes. */
const trickyString = fc
  .array(fc.constantFrom('[', ']', '{', '}', '"', '\\', '\\\\', '\\"', 'a', '\u2028', '😀'), {
    maxLength: 12,
  })
  .map((parts) => parts.join(''));

const tricky = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    trickyString,
    fc.integer(),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(trickyString, tie('value'), { maxKeys: 4 }),
  ),
})).value;

describe('parseJsonBytes: nesting depth', () => {
  it('refuses exactly the bodies nested deeper than maxDepth, whatever their strings hold', () => {
    fc.assert(
      fc.property(tricky, fc.integer({ min: 1, max: 6 }), (value, maxDepth) => {
        const text = JSON.stringify(value);
        const result = parseJsonBytes(Buffer.from(text), { maxDepth });
        const tooDeep = !result.ok && result.error.code === 'nesting_too_deep';
        // Texts not longer than maxDepth cannot nest deeper than it and skip the scan.
        expect(tooDeep).toBe(depthOf(value) > maxDepth);
        if (!tooDeep) expect(result).toMatchObject({ ok: true, value });
      }),
      { numRuns: 3000 },
    );
  });

  it('sees nesting after a string that ends in escaped backslashes', () => {
    const deep = `${'['.repeat(5)}${']'.repeat(5)}`;
    for (const s of ['x\\\\', '\\\\\\\\', '\\"\\\\']) {
      const result = parseJsonBytes(Buffer.from(`{"s":"${s}","n":${deep}}`), { maxDepth: 5 });
      expect(result).toMatchObject({ ok: false, error: { code: 'nesting_too_deep' } });
    }
  });
});
