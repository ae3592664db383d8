import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileCondition, conditionSchema, globMatch } from './condition';

const event = {
  type: 'track',
  event: 'Order Completed',
  properties: { value: 42, currency: 'EUR', tags: ['a', 'b'] },
  context: { provenance: 'hmac', page: { url: 'https://shop.example/checkout/done' } },
};

function check(raw: unknown, input: unknown = event): boolean {
  return compileCondition(conditionSchema.parse(raw))(input);
}

describe('routing condition language', () => {
  it('compares scalars strictly, without coercion', () => {
    expect(check({ field: 'context.provenance', op: 'eq', value: 'hmac' })).toBe(true);
    expect(check({ field: 'properties.value', op: 'eq', value: '42' })).toBe(false);
    expect(check({ field: 'properties.value', op: 'eq', value: 42 })).toBe(true);
    expect(check({ field: 'properties.missing', op: 'neq', value: 'x' })).toBe(true);
  });

  it('supports in, exists, matches and array indexes', () => {
    expect(check({ field: 'event', op: 'in', value: ['Refund', 'Order Completed'] })).toBe(true);
    expect(check({ field: 'properties.currency', op: 'exists' })).toBe(true);
    expect(check({ field: 'properties.coupon', op: 'exists' })).toBe(false);
    expect(
      check({ field: 'context.page.url', op: 'matches', value: 'https://shop.example/checkout/*' }),
    ).toBe(true);
    expect(check({ field: 'properties.tags.1', op: 'eq', value: 'b' })).toBe(true);
  });

  it('combines with all, any and not', () => {
    const serverOrders = {
      all: [
        { field: 'context.provenance', op: 'eq', value: 'hmac' },
        {
          any: [
            { field: 'event', op: 'eq', value: 'Order Completed' },
            { field: 'event', op: 'eq', value: 'Refund' },
          ],
        },
        { not: { field: 'properties.test', op: 'exists' } },
      ],
    };
    expect(check(serverOrders)).toBe(true);
    expect(check(serverOrders, { ...event, context: { provenance: 'pipeline_key' } })).toBe(false);
  });

  it('never reads prototypes and refuses prototype paths in configuration', () => {
    expect(conditionSchema.safeParse({ field: '__proto__.x', op: 'exists' }).success).toBe(false);
    expect(conditionSchema.safeParse({ field: 'properties.constructor', op: 'exists' }).success).toBe(false);
    expect(check({ field: 'properties.toString', op: 'exists' })).toBe(false);
  });

  it('refuses unknown operators, code-like values and excessive nesting', () => {
    expect(conditionSchema.safeParse({ field: 'event', op: 'eval', value: '1' }).success).toBe(false);
    let deep: unknown = { field: 'event', op: 'exists' };
    for (let i = 0; i < 9; i += 1) deep = { not: deep };
    expect(conditionSchema.safeParse(deep).success).toBe(false);
  });

  it('globs match like an anchored regular expression, in bounded time', () => {
    const toRegex = (glob: string) =>
      new RegExp(
        `^${glob
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '.*')
          .replace(/\?/g, '.')}$`,
        's',
      );
    fc.assert(
      fc.property(fc.stringMatching(/^[ab*?]{0,8}$/), fc.stringMatching(/^[ab]{0,12}$/), (glob, text) => {
        expect(globMatch(glob, text)).toBe(toRegex(glob).test(text));
      }),
    );
    // A pattern that makes a backtracking regex engine explode stays linear-ish here.
    expect(globMatch('*a*a*a*a*a*a*a*b', 'a'.repeat(5000))).toBe(false);
  });
});
