import { z } from 'zod';
import type { JsonLimits } from './limits';

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Why a tree is not acceptable, and where. Messages never quote the offending value (it may be PII). */
export interface JsonProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

interface Frame {
  readonly value: unknown;
  readonly depth: number;
  readonly parent: Frame | null;
  readonly key: string | number | null;
}

function pathOf(frame: Frame): (string | number)[] {
  const path: (string | number)[] = [];
  for (let f: Frame | null = frame; f !== null && f.key !== null; f = f.parent) path.push(f.key);
  return path.reverse();
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Walks `value` iteratively (an explicit stack, so hostile nesting cannot overflow the call stack) and
 * returns the first violation of `limits`, or null. Only what JSON can express passes: plain objects, arrays,
 * strings, finite numbers, booleans and null. The key `__proto__` is refused so a later spread or merge of
 * the tree cannot reach an object's prototype.
 */
export function findJsonProblem(value: unknown, limits: JsonLimits): JsonProblem | null {
  const stack: Frame[] = [{ value, depth: 0, parent: null, key: null }];
  let nodes = 0;
  for (let frame = stack.pop(); frame !== undefined; frame = stack.pop()) {
    nodes += 1;
    if (nodes > limits.maxNodes) {
      return { path: [], message: `more than ${limits.maxNodes} values in one tree` };
    }
    if (frame.depth > limits.maxDepth) {
      return { path: pathOf(frame), message: `nested deeper than ${limits.maxDepth} levels` };
    }
    const v = frame.value;
    if (v === null || typeof v === 'boolean') continue;
    if (typeof v === 'string') {
      if (v.length > limits.maxStringLength) {
        return { path: pathOf(frame), message: `string longer than ${limits.maxStringLength} characters` };
      }
      continue;
    }
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return { path: pathOf(frame), message: 'number must be finite' };
      continue;
    }
    if (Array.isArray(v)) {
      if (v.length > limits.maxArrayLength) {
        return { path: pathOf(frame), message: `array longer than ${limits.maxArrayLength} items` };
      }
      for (let i = v.length - 1; i >= 0; i -= 1) {
        stack.push({ value: v[i], depth: frame.depth + 1, parent: frame, key: i });
      }
      continue;
    }
    if (isPlainObject(v)) {
      const keys = Object.keys(v);
      if (keys.length > limits.maxKeysPerObject) {
        return { path: pathOf(frame), message: `object with more than ${limits.maxKeysPerObject} keys` };
      }
      for (let i = keys.length - 1; i >= 0; i -= 1) {
        const key = keys[i] as string;
        if (key.length > limits.maxKeyLength) {
          return { path: pathOf(frame), message: `key longer than ${limits.maxKeyLength} characters` };
        }
        if (key === '__proto__') return { path: pathOf(frame), message: 'key "__proto__" is not allowed' };
        stack.push({ value: v[key], depth: frame.depth + 1, parent: frame, key });
      }
      continue;
    }
    return {
      path: pathOf(frame),
      message: `${typeof v === 'object' ? 'non-plain object' : typeof v} is not JSON`,
    };
  }
  return null;
}

/**
 * `findJsonProblem(value, limits) === null`, without building frames or paths: the check of every accepted
 * payload, so it allocates nothing. Recursion is bounded by `limits.maxDepth` (checked before descending).
 */
export function isWithinJsonLimits(value: unknown, limits: JsonLimits): boolean {
  return walkWithinLimits(value, 0, limits, { nodes: 0 });
}

// A top-level function, not a closure: tsx/esbuild names every closure at creation (`__name`), a cost paid
// per call on this hot path.
function walkWithinLimits(v: unknown, depth: number, limits: JsonLimits, count: { nodes: number }): boolean {
  count.nodes += 1;
  if (count.nodes > limits.maxNodes || depth > limits.maxDepth) return false;
  if (v === null || typeof v === 'boolean') return true;
  if (typeof v === 'string') return v.length <= limits.maxStringLength;
  if (typeof v === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) {
    if (v.length > limits.maxArrayLength) return false;
    for (let i = 0; i < v.length; i += 1) if (!walkWithinLimits(v[i], depth + 1, limits, count)) return false;
    return true;
  }
  if (!isPlainObject(v)) return false;
  const keys = Object.keys(v);
  if (keys.length > limits.maxKeysPerObject) return false;
  for (let i = 0; i < keys.length; i += 1) {
    const key = keys[i] as string;
    if (key.length > limits.maxKeyLength || key === '__proto__') return false;
    if (!walkWithinLimits(v[key], depth + 1, limits, count)) return false;
  }
  return true;
}

/** Any JSON value within `limits`. */
export function boundedJsonValue(limits: JsonLimits): z.ZodType<JsonValue> {
  return z.custom<JsonValue>().superRefine((value, ctx) => {
    if (value === undefined) {
      ctx.addIssue({ code: 'custom', message: 'expected a JSON value' });
      return;
    }
    const problem = findJsonProblem(value, limits);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem.message, path: [...problem.path] });
  });
}

/** A JSON object (the shape of `properties` and `traits`) within `limits`. */
export function boundedJsonObject(limits: JsonLimits): z.ZodType<JsonObject> {
  return z.custom<JsonObject>().superRefine((value, ctx) => {
    if (!isPlainObject(value)) {
      ctx.addIssue({ code: 'custom', message: 'expected a JSON object' });
      return;
    }
    const problem = findJsonProblem(value, limits);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem.message, path: [...problem.path] });
  });
}
