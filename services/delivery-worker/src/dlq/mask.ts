import type { JsonValue } from '@signal/events';
import { inferFieldType } from '@signal/pii';

/**
 * Masks personal data in a dead letter's original for inspection (Management API, `signal-cli dlq list`):
 * values of `userId`, `ip`, click ids, every trait, and every field whose name reads as personal data
 * (`email`, `phone`, `first_name`, `zip`, …) become `"***"`; digests (64-hex) are kept, they are what
 * was or would be sent; e-mail addresses inside any other string are masked too. Structure, event names and
 * non-personal properties stay readable, which is what a human needs to decide on a replay.
 */
export const MASK = '***';

const ALWAYS_MASKED: ReadonlySet<string> = new Set([
  'userId',
  'user_id',
  'ip',
  'clickIds',
  'traits',
  'client_ip_address',
]);
/**
 * Replaced whole, digests included: a delivery message's `erasureDigests` and `consentSubject` are keyed
 * pseudonyms of the person's ids, for matching an erasure or a consent of record; they are never sent and
 * tell a human nothing.
 */
const HIDDEN: ReadonlySet<string> = new Set(['erasureDigests', 'consentSubject', 'consentVisitor']);
const DIGEST = /^[0-9a-f]{64}$/i;
const EMAIL = /[^\s@"'<>]{1,64}@[^\s@"'<>]{1,253}\.[a-z]{2,24}/gi;
const MAX_DEPTH = 16;

function maskAll(value: JsonValue, depth: number): JsonValue {
  if (depth > MAX_DEPTH) return MASK;
  if (Array.isArray(value)) return value.map((v) => maskAll(v, depth + 1));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, JsonValue> = {};
    for (const [k, v] of Object.entries(value)) out[k] = maskAll(v, depth + 1);
    return out;
  }
  if (typeof value === 'string' && DIGEST.test(value)) return value;
  return value === null || typeof value === 'boolean' ? value : MASK;
}

function walk(value: JsonValue, depth: number): JsonValue {
  if (depth > MAX_DEPTH) return MASK;
  if (typeof value === 'string') return value.replace(EMAIL, MASK);
  if (Array.isArray(value)) return value.map((v) => walk(v, depth + 1));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, JsonValue> = {};
  for (const [key, child] of Object.entries(value)) {
    out[key] = HIDDEN.has(key)
      ? MASK
      : ALWAYS_MASKED.has(key) || inferFieldType([key]) !== 'generic'
        ? maskAll(child, depth + 1)
        : walk(child, depth + 1);
  }
  return out;
}

export function maskPersonalData(value: JsonValue): JsonValue {
  return walk(value, 0);
}
