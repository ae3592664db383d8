import { z } from 'zod';
import { type FieldPath, fieldPathSchema, readPath, splitPath } from './field-path';

/**
 * A small, safe condition language for routing rules and pipeline filters — data, never code (no eval, no
 * regular expressions from configuration):
 *
 *   { field: 'context.provenance', op: 'eq', value: 'hmac' }
 *   { field: 'event', op: 'in', value: ['Order Completed', 'Refund'] }
 *   { field: 'traits.email', op: 'exists' }               // present and not null
 *   { field: 'context.page.url', op: 'matches', value: 'https://shop.example/checkout/*' }   // glob: * and ?
 *   { all: [...] } · { any: [...] } · { not: {...} }
 *
 * `eq`/`neq`/`in` compare JSON scalars strictly (no type coercion: `'1'` is not `1`). `matches` is a glob
 * matched in O(n·m) time by a two-pointer scan (no backtracking blow-up). A missing field is never equal to
 * anything, so `neq` on a missing field is true. Nesting is bounded (depth 8, 64 nodes).
 */

const scalarSchema = z.union([z.string().max(1024), z.number(), z.boolean(), z.null()]);
export type Scalar = z.infer<typeof scalarSchema>;

export type Condition =
  | { readonly field: string; readonly op: 'eq' | 'neq'; readonly value: Scalar }
  | { readonly field: string; readonly op: 'in'; readonly value: readonly Scalar[] }
  | { readonly field: string; readonly op: 'exists' }
  | { readonly field: string; readonly op: 'matches'; readonly value: string }
  | { readonly all: readonly Condition[] }
  | { readonly any: readonly Condition[] }
  | { readonly not: Condition };

export const MAX_CONDITION_DEPTH = 8;
export const MAX_CONDITION_NODES = 64;

const conditionShape: z.ZodType<Condition> = z.lazy(() =>
  z.union([
    z.strictObject({ field: fieldPathSchema, op: z.enum(['eq', 'neq']), value: scalarSchema }),
    z.strictObject({
      field: fieldPathSchema,
      op: z.literal('in'),
      value: z.array(scalarSchema).min(1).max(200),
    }),
    z.strictObject({ field: fieldPathSchema, op: z.literal('exists') }),
    z.strictObject({
      field: fieldPathSchema,
      op: z.literal('matches'),
      value: z
        .string()
        .min(1)
        .max(1024)
        .refine((glob) => (glob.match(/\*/g)?.length ?? 0) <= 8, 'at most 8 * wildcards'),
    }),
    z.strictObject({ all: z.array(conditionShape).min(1).max(32) }),
    z.strictObject({ any: z.array(conditionShape).min(1).max(32) }),
    z.strictObject({ not: conditionShape }),
  ]),
);

function measure(condition: Condition, depth: number): { depth: number; nodes: number } {
  if ('all' in condition || 'any' in condition) {
    const children = 'all' in condition ? condition.all : condition.any;
    let maxDepth = depth;
    let nodes = 1;
    for (const child of children) {
      const m = measure(child, depth + 1);
      maxDepth = Math.max(maxDepth, m.depth);
      nodes += m.nodes;
    }
    return { depth: maxDepth, nodes };
  }
  if ('not' in condition) {
    const m = measure(condition.not, depth + 1);
    return { depth: m.depth, nodes: m.nodes + 1 };
  }
  return { depth, nodes: 1 };
}

export const conditionSchema: z.ZodType<Condition> = conditionShape.superRefine((condition, ctx) => {
  const { depth, nodes } = measure(condition, 1);
  if (depth > MAX_CONDITION_DEPTH) {
    ctx.addIssue({ code: 'custom', message: `conditions nest at most ${MAX_CONDITION_DEPTH} levels deep` });
  }
  if (nodes > MAX_CONDITION_NODES) {
    ctx.addIssue({ code: 'custom', message: `a condition has at most ${MAX_CONDITION_NODES} parts` });
  }
});

/** A compiled condition: a closure over prepared paths and values. */
export type Predicate = (event: unknown) => boolean;

/**
 * Glob match (`*` any run, `?` one character) by the classic greedy two-pointer scan with one backtrack
 * point: O(|text|·|glob|) worst case, no recursion, no regular expression built from configuration.
 */
export function globMatch(glob: string, text: string): boolean {
  let g = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    const c = glob[g];
    if (c === '?' || (c !== undefined && c !== '*' && c === text[t])) {
      g += 1;
      t += 1;
    } else if (c === '*') {
      star = g;
      mark = t;
      g += 1;
    } else if (star >= 0) {
      g = star + 1;
      mark += 1;
      t = mark;
    } else {
      return false;
    }
  }
  while (glob[g] === '*') g += 1;
  return g === glob.length;
}

function isScalar(value: unknown): value is Scalar {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value);
}

/** Compiles a validated condition once; the returned predicate never throws. */
export function compileCondition(condition: Condition): Predicate {
  if ('all' in condition) {
    const parts = condition.all.map(compileCondition);
    return (event) => parts.every((p) => p(event));
  }
  if ('any' in condition) {
    const parts = condition.any.map(compileCondition);
    return (event) => parts.some((p) => p(event));
  }
  if ('not' in condition) {
    const inner = compileCondition(condition.not);
    return (event) => !inner(event);
  }
  const path: FieldPath = splitPath(condition.field);
  switch (condition.op) {
    case 'eq': {
      const expected = condition.value;
      return (event) => readPath(event, path) === expected;
    }
    case 'neq': {
      const expected = condition.value;
      return (event) => readPath(event, path) !== expected;
    }
    case 'in': {
      const set = new Set<Scalar>(condition.value);
      return (event) => {
        const value = readPath(event, path);
        return isScalar(value) && set.has(value);
      };
    }
    case 'exists':
      return (event) => {
        const value = readPath(event, path);
        return value !== undefined && value !== null;
      };
    case 'matches': {
      const glob = condition.value;
      return (event) => {
        const value = readPath(event, path);
        return typeof value === 'string' && globMatch(glob, value);
      };
    }
  }
}
