/** Field paths: dotted segments, `*` for any one key or index. */

export const WILDCARD = '*';
export const MAX_PATH_SEGMENTS = 16;
export const MAX_WILDCARDS = 4;

/** Segments that would reach into prototypes if a naive walker followed them; refused in config. */
export const FORBIDDEN_SEGMENTS: ReadonlySet<string> = new Set(['__proto__', 'prototype', 'constructor']);

export function splitPath(path: string): readonly string[] {
  return path.split('.');
}

export type PlainObject = Record<string, unknown>;

/** Objects we descend into and copy: plain (JSON-like) objects only, never class instances or exotic ones. */
export function isPlainObject(value: unknown): value is PlainObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** An own property's value; never one inherited from a prototype (`toString`, an own `__proto__` is fine). */
export function ownValue(object: PlainObject, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

/** Defines an own property — assignment would invoke the `__proto__` setter for that key. */
export function setOwn(object: PlainObject, key: string, value: unknown): void {
  Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
}
