/**
 * PostgreSQL refuses U+0000 in `text` and `jsonb` (SQLSTATE 22021 / 22P05), and an unpaired UTF-16 surrogate
 * in `jsonb` (22P02; `text` silently turns it into U+FFFD). The gateway accepts both in any string of an event
 * (properties, traits, the anonymous id that becomes the partition key), so whatever the worker stores from
 * an event must check for them: a refused row fails its batch, which is redelivered and refused forever.
 */
export function storableText(text: string): boolean {
  return !text.includes('\u0000') && text.isWellFormed();
}
