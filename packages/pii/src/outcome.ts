/** Why a value was not turned into something to send. Stable strings, safe for metric labels. */
export type RejectReason =
  /** Nothing left after normalisation (or blank input): the field is dropped, `""` is never hashed. */
  | 'empty'
  /** The value does not satisfy the field's format (e.g. not an email, unknown gender word). */
  | 'invalid'
  /** An already-hashed input that is the digest of the empty string. */
  | 'empty_hash'
  /** Not a string (or a safe integer, which is accepted as its decimal digits). */
  | 'not_a_string'
  /** The vendor profile has no such field. */
  | 'unknown_field';

/** Result of one field rule: the normalised plain value, or why there is none. */
export type Outcome =
  | { readonly ok: true; readonly value: string }
  | { readonly ok: false; readonly reason: RejectReason };

export function accept(value: string): Outcome {
  return value === '' ? { ok: false, reason: 'empty' } : { ok: true, value };
}

export function reject(reason: RejectReason): Outcome {
  return { ok: false, reason };
}

/**
 * Accepts strings, and safe integers as their decimal digits (phone numbers and ZIP codes often arrive as
 * JSON numbers). Everything else, including other numbers, booleans and objects, is refused rather than
 * stringified: `String({})` is "[object Object]" and must never be hashed and sent.
 */
export function asText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  if (typeof value === 'bigint') return value.toString();
  return undefined;
}
