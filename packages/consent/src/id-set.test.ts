import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeIdSet, encodeIdSet, ID_SET_PATTERN, idSetHas } from './id-set';

describe('IdSet', () => {
  it('round-trips any set of vendor ids and answers membership exactly', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 3000 }), { maxLength: 400 }),
        fc.integer({ min: -2, max: 3100 }),
        (ids, probe) => {
          const set = encodeIdSet(ids);
          expect(set).toMatch(ID_SET_PATTERN);
          expect(decodeIdSet(set)).toEqual([...ids].sort((a, b) => a - b));
          expect(idSetHas(set, probe)).toBe(ids.includes(probe));
        },
      ),
    );
  });

  it('uses ranges for sparse or contiguous sets and a bitfield for dense scattered ones', () => {
    expect(encodeIdSet([])).toBe('r:');
    expect(encodeIdSet([755])).toBe('r:755');
    expect(encodeIdSet(Array.from({ length: 101 }, (_, i) => 100 + i).concat([755]))).toBe('r:100-200,755');
    expect(encodeIdSet([1, 2, 3, 4, 10])).toBe('b:8E'); // 10 bits beat 'r:1-4,10'
    const everyOther = Array.from({ length: 500 }, (_, i) => i * 2 + 1);
    const encoded = encodeIdSet(everyOther);
    expect(encoded.startsWith('b:')).toBe(true);
    expect(encoded.length).toBeLessThan(200);
  });

  it('ignores ids that are not positive integers', () => {
    expect(encodeIdSet([0, -1, 1.5, 3])).toBe('r:3');
    expect(idSetHas('r:1-10', 0)).toBe(false);
    expect(idSetHas('b:_', 1.5)).toBe(false);
  });
});
