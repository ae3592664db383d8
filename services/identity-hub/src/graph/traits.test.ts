import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { lwwMerge, MAX_TRAITS, type StoredTraits, traitsFromEvent } from './traits';

describe('trait merging', () => {
  it('keeps the later value of each trait', () => {
    const base = { plan: { v: 'free', t: 1 }, city: { v: 'Berlin', t: 5 } };
    const merged = lwwMerge(base, { plan: { v: 'pro', t: 2 }, city: { v: 'Paris', t: 4 } });
    expect(merged).toEqual({
      traits: { plan: { v: 'pro', t: 2 }, city: { v: 'Berlin', t: 5 } },
      changed: true,
    });
    expect(lwwMerge(merged.traits, { plan: { v: 'pro', t: 2 } }).changed).toBe(false);
  });

  it('is order-independent, so merging profiles either way ends the same', () => {
    const traits = fc.dictionary(
      fc.constantFrom('a', 'b', 'c', 'd'),
      fc.record({ v: fc.oneof(fc.string(), fc.integer(), fc.boolean()), t: fc.integer({ min: 0, max: 3 }) }),
    );
    fc.assert(
      fc.property(traits, traits, (x: StoredTraits, y: StoredTraits) => {
        expect(lwwMerge(x, y).traits).toEqual(lwwMerge(y, x).traits);
      }),
    );
  });

  it(`keeps at most ${MAX_TRAITS} traits, the most recently set ones`, () => {
    const old: StoredTraits = {};
    for (let i = 0; i < MAX_TRAITS; i++) old[`old${i}`] = { v: i, t: 1 };
    const merged = lwwMerge(old, { fresh: { v: true, t: 2 } }).traits;
    expect(Object.keys(merged)).toHaveLength(MAX_TRAITS);
    expect(merged.fresh).toEqual({ v: true, t: 2 });
  });

  it('never treats __proto__ as a trait', () => {
    const traits = traitsFromEvent(JSON.parse('{"__proto__":{"admin":true},"plan":"pro"}'), 7);
    expect(Object.keys(traits)).toEqual(['plan']);
    expect(Object.getPrototypeOf(traits)).toBe(Object.prototype);
  });
});
