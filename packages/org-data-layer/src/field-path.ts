import { z } from 'zod';

/**
 * Dotted paths into an event (`properties.plan`, `context.provenance`, `traits.address.city`), used by routing
 * conditions and integration pipelines. Paths come from configuration, so they are validated once: at most 8
 * segments of word characters, and never a prototype-reaching name. Resolution reads own properties only.
 */
const SEGMENT = /^[A-Za-z0-9_$-]{1,128}$/;
const FORBIDDEN: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
export const MAX_PATH_SEGMENTS = 8;

export const fieldPathSchema = z
  .string()
  .min(1)
  .max(512)
  .refine((path) => {
    const segments = path.split('.');
    return (
      segments.length <= MAX_PATH_SEGMENTS && segments.every((s) => SEGMENT.test(s) && !FORBIDDEN.has(s))
    );
  }, `must be a dotted path of at most ${MAX_PATH_SEGMENTS} segments of A-Z a-z 0-9 _ $ - (no __proto__, constructor, prototype)`);

export type FieldPath = readonly string[];

export function splitPath(path: string): FieldPath {
  return Object.freeze(path.split('.'));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value at `path`, or undefined. Arrays are addressed by numeric segments. */
export function readPath(root: unknown, path: FieldPath): unknown {
  let node: unknown = root;
  for (const segment of path) {
    if (Array.isArray(node)) {
      const index = /^\d+$/.test(segment) ? Number(segment) : Number.NaN;
      node = Number.isInteger(index) ? node[index] : undefined;
    } else if (isRecord(node) && Object.hasOwn(node, segment)) {
      node = node[segment];
    } else {
      return undefined;
    }
    if (node === undefined) return undefined;
  }
  return node;
}
