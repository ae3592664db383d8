import canonicalize from 'canonicalize';

/** A JSON value as stored in `changes` (jsonb) and hashed into the chain. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Placeholder for byte arrays, which are never recorded (they are keys, ciphertexts or digests). */
export const BINARY_PLACEHOLDER = '••••';
const MAX_DEPTH = 32;

// PostgreSQL text and jsonb cannot hold U+0000, and lone UTF-16 surrogates are not valid JSON text for it (nor
// for RFC 8785). Both are replaced by U+FFFD so a hostile User-Agent or field name cannot make recording fail.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function storableString(value: string): string {
  return value.replaceAll('\u0000', '\uFFFD').replace(LONE_SURROGATE, '\uFFFD');
}

/**
 * Object keys as stored: storable, and never `__proto__`, which JSON.parse keeps as an own key but plain
 * assignment (zod, spread) turns into a prototype change, so a row read back would lose it and fail its hash.
 */
export function storableKey(key: string): string {
  const stored = storableString(key);
  return stored === '__proto__' ? '__proto__\uFFFD' : stored;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Converts what a writer hands over into a JSON value that survives a round trip through jsonb unchanged:
 * `undefined` and non-finite numbers become null, bigints and Dates become strings, byte arrays become a
 * placeholder (never their bytes), functions and symbols are dropped, cycles and excessive depth are cut.
 */
export function toJsonValue(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): JsonValue {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
      return storableString(value);
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'bigint':
      return value.toString();
    case 'function':
    case 'symbol':
      return null;
    default:
      break;
  }
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return BINARY_PLACEHOLDER;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (typeof value !== 'object') return null;
  if (depth >= MAX_DEPTH || seen.has(value)) return null;
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => toJsonValue(item, depth + 1, seen));
    const out: Record<string, JsonValue> = {};
    for (const [key, child] of Object.entries(value)) {
      if (child === undefined || typeof child === 'function' || typeof child === 'symbol') continue;
      out[storableKey(key)] = toJsonValue(child, depth + 1, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

/** RFC 8785 (JCS) canonical JSON: sorted keys, no whitespace, ECMAScript number form. */
export function canonicalJson(value: JsonValue): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value has no JSON form');
  return text;
}
