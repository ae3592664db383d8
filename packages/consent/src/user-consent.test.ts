import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide } from './decide';
import { normaliseConsent } from './normalise';
import { DEFAULT_CONSENT_REQUIREMENTS } from './requirements';
import { CONSENT_CATEGORIES, type ConsentCategory } from './state';
import {
  applyUserConsent,
  mergeChoices,
  mergeRecords,
  recordWithdraws,
  type UserChoice,
  withdrawnCategories,
} from './user-consent';

/** A person's consent of record, merged per category by time (the store is the identity hub's). */

type Categories = Partial<Record<ConsentCategory, UserChoice>>;

describe('merging choices of record', () => {
  it('keeps the latest choice per category, whatever order the choices arrive in', () => {
    let record: Categories = {};
    const first = mergeChoices(record, { marketing: false, analytics: true }, 2_000);
    expect(first.changed).toBe(true);
    record = { ...first.categories };
    // Older (a redelivery, another replica's late write): changes nothing it is older than.
    expect(mergeChoices(record, { marketing: true }, 1_000)).toEqual({ categories: record, changed: false });
    const third = mergeChoices(record, { marketing: true, personalization: false }, 1_500);
    expect(third).toEqual({
      changed: true,
      categories: {
        marketing: { granted: false, at: 2_000 },
        analytics: { granted: true, at: 2_000 },
        personalization: { granted: false, at: 1_500 },
      },
    });
  });

  it('lets a withdrawal win a tie, and says whether a record withdraws anything', () => {
    const granted = mergeChoices({}, { analytics: true, marketing: true }, 1_000).categories;
    expect(recordWithdraws(granted)).toBe(false);
    // The same instant, a conflicting withdrawal (two sources at once): the stricter choice stands.
    const withdrawn = mergeChoices(granted, { marketing: false }, 1_000);
    expect(withdrawn.changed).toBe(true);
    expect(mergeChoices(withdrawn.categories, { marketing: true }, 1_000).changed).toBe(false);
    expect(recordWithdraws(withdrawn.categories)).toBe(true);
    expect(withdrawnCategories({ status: 'found', record: withdrawn })).toEqual(['marketing']);
  });

  it('gives one record whatever order, and however often, copies and choices are merged', () => {
    const choice = fc.record({
      category: fc.constantFrom(...CONSENT_CATEGORIES),
      granted: fc.boolean(),
      at: fc.integer({ min: 0, max: 20 }),
    });
    const apply = (choices: readonly { category: ConsentCategory; granted: boolean; at: number }[]) =>
      choices.reduce<Categories>(
        (record, c) => ({ ...mergeChoices(record, { [c.category]: c.granted }, c.at).categories }),
        {},
      );
    fc.assert(
      fc.property(fc.array(choice, { maxLength: 12 }), fc.array(choice, { maxLength: 12 }), (a, b) => {
        const all = apply([...a, ...b]);
        expect(apply([...b, ...a])).toEqual(all);
        expect(apply([...a, ...b, ...a])).toEqual(all);
        // Two stores that each saw part of the choices merge into what one store seeing all would hold.
        expect(mergeRecords(apply(a), apply(b)).categories).toEqual(all);
        expect(mergeRecords(all, apply(a)).changed).toBe(false);
      }),
    );
  });

  it('fails closed on an unreadable record and refuses a time that is not whole milliseconds', () => {
    expect(withdrawnCategories({ status: 'corrupt' })).toEqual([
      'functional',
      'analytics',
      'marketing',
      'personalization',
    ]);
    expect(withdrawnCategories({ status: 'unavailable' })).toEqual([]);
    for (const at of [-1, 1.5, Number.NaN]) {
      expect(() => mergeChoices({}, { marketing: false }, at)).toThrow(
        expect.objectContaining({ code: 'consent_invalid_argument' }),
      );
    }
  });
});

describe('a consent of record at stage 2', () => {
  const meta = DEFAULT_CONSENT_REQUIREMENTS.meta;
  const granted = normaliseConsent(
    { categories: { analytics: true, marketing: true } },
    { observedAt: 10, jurisdiction: 'DE' },
  );

  it('withdraws what the person withdrew of record, and grants nothing the event did not', () => {
    const withdrawn = withdrawnCategories({
      status: 'found',
      record: { categories: { marketing: { granted: false, at: 1 }, functional: { granted: true, at: 1 } } },
    });
    expect(withdrawn).toEqual(['marketing']);
    expect(decide(granted, meta, { stage: 2 }).outcome).toBe('allow');
    const vetoed = applyUserConsent(granted, withdrawn);
    expect(vetoed?.categories).toMatchObject({ marketing: false, analytics: true });
    expect(decide(vetoed, meta, { stage: 2 })).toMatchObject({ outcome: 'drop', reason: 'category_denied' });
    // A grant of record on a category the event never granted stays ungranted there.
    const functionalGrant = withdrawnCategories({
      status: 'found',
      record: { categories: { functional: { granted: true, at: 1 } } },
    });
    expect(applyUserConsent(granted, functionalGrant)).toBe(granted);
    expect(applyUserConsent(null, withdrawn)).toBeNull();
  });
});
