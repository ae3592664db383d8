import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { boundedJsonObject, boundedJsonValue, findJsonProblem } from './json';
import { type JsonLimits, PAYLOAD_JSON_LIMITS } from './limits';

const small: JsonLimits = {
  maxDepth: 3,
  maxKeysPerObject: 4,
  maxKeyLength: 8,
  maxArrayLength: 5,
  maxStringLength: 10,
  maxNodes: 30,
};

function nest(levels: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < levels; i += 1) v = { a: v };
  return v;
}

describe('findJsonProblem', () => {
  it('accepts a realistic e-commerce payload', () => {
    const cart = {
      order_id: 'o-1',
      total: 129.9,
      currency: 'EUR',
      coupon: null,
      gift: false,
      products: Array.from({ length: 200 }, (_, i) => ({
        sku: `sku-${i}`,
        price: 9.99,
        qty: 1,
        tags: ['a'],
      })),
    };
    expect(findJsonProblem(cart, PAYLOAD_JSON_LIMITS)).toBeNull();
  });

  it('reports each bound with the path to the offending value', () => {
    expect(findJsonProblem(nest(3), small)).toBeNull();
    expect(findJsonProblem(nest(4), small)).toEqual({
      path: ['a', 'a', 'a', 'a'],
      message: 'nested deeper than 3 levels',
    });
    expect(findJsonProblem({ a: 1, b: 2, c: 3, d: 4, e: 5 }, small)?.message).toBe(
      'object with more than 4 keys',
    );
    expect(findJsonProblem({ list: [1, 2, 3, 4, 5, 6] }, small)).toEqual({
      path: ['list'],
      message: 'array longer than 5 items',
    });
    expect(findJsonProblem({ x: ['ok', 'much too long'] }, small)).toEqual({
      path: ['x', 1],
      message: 'string longer than 10 characters',
    });
    expect(findJsonProblem({ waytoolongkey: 1 }, small)?.message).toBe('key longer than 8 characters');
  });

  it('counts every value towards the node budget', () => {
    const wide = { a: [1, 2, 3, 4, 5], b: [1, 2, 3, 4, 5], c: [1, 2, 3, 4, 5], d: [1, 2, 3, 4, 5] };
    expect(findJsonProblem(wide, small)).toBeNull(); // 1 + 4 + 20 = 25 values
    const wider = { ...wide, d: [[1, 2, 3], [4, 5], [6], 4, 5] }; // 31 values
    expect(findJsonProblem(wider, small)?.message).toBe('more than 30 values in one tree');
  });

  it('refuses what JSON cannot express and the __proto__ key', () => {
    expect(findJsonProblem({ n: Number.NaN }, small)?.message).toBe('number must be finite');
    expect(findJsonProblem({ n: Number.POSITIVE_INFINITY }, small)?.message).toBe('number must be finite');
    expect(findJsonProblem({ d: new Date(0) }, small)?.message).toBe('non-plain object is not JSON');
    expect(findJsonProblem({ m: new Map() }, small)?.message).toBe('non-plain object is not JSON');
    expect(findJsonProblem({ f: () => 1 }, small)?.message).toBe('function is not JSON');
    expect(findJsonProblem({ u: undefined }, small)?.message).toBe('undefined is not JSON');
    expect(findJsonProblem({ b: 1n }, small)?.message).toBe('bigint is not JSON');
    const hostile = JSON.parse('{"__proto__": {"isAdmin": true}}') as unknown;
    expect(findJsonProblem(hostile, PAYLOAD_JSON_LIMITS)?.message).toBe('key "__proto__" is not allowed');
  });

  it('survives hostile nesting without exhausting the stack', () => {
    const deep = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`) as unknown;
    expect(findJsonProblem(deep, PAYLOAD_JSON_LIMITS)?.message).toBe('nested deeper than 8 levels');
  });

  it('accepts every JSON value within the bounds (property)', () => {
    const limits: JsonLimits = { ...PAYLOAD_JSON_LIMITS, maxDepth: 4 };
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
        // fast-check may produce -0 and keys like "__proto__"; JSON round-trip is what the wire carries.
        const wire = JSON.parse(JSON.stringify(value)) as unknown;
        const problem = findJsonProblem(wire, limits);
        return problem === null || problem.message === 'key "__proto__" is not allowed';
      }),
    );
  });
});

describe('bounded JSON schemas', () => {
  it('an object schema refuses non-objects and reports the path of a violation', () => {
    const schema = boundedJsonObject(small);
    expect(schema.safeParse([]).success).toBe(false);
    expect(schema.safeParse('x').success).toBe(false);
    expect(schema.safeParse(null).success).toBe(false);
    const result = schema.safeParse({ x: ['ok', 'much too long'] });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['x', 1]);
    expect(schema.parse({ a: { b: [1, 'two', null, true] } })).toEqual({ a: { b: [1, 'two', null, true] } });
  });

  it('a value schema takes scalars and arrays but not undefined', () => {
    const schema = boundedJsonValue(small);
    expect(schema.parse('text')).toBe('text');
    expect(schema.parse([1, 2])).toEqual([1, 2]);
    expect(schema.parse(null)).toBeNull();
    expect(schema.safeParse(undefined).success).toBe(false);
  });
});
