import type { JsonValue } from '@signal/events';
import { z } from 'zod';

/** Most traits one profile keeps; past this the least recently set ones are dropped. */
export const MAX_TRAITS = 256;

/** Each trait with the server time it was last set: merges keep the latest value per trait (LWW). */
export type StoredTraits = Record<string, { readonly v: JsonValue; readonly t: number }>;

const jsonValue: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([
    z.string(),
    z.number(),
    z.boolean(),
    z.null(),
    z.array(jsonValue),
    z.record(z.string(), jsonValue),
  ]),
);
const storedSchema = z.record(z.string(), z.object({ v: jsonValue, t: z.number() }));

export function parseStoredTraits(plaintext: string): StoredTraits | null {
  let json: unknown;
  try {
    json = JSON.parse(plaintext);
  } catch {
    return null;
  }
  const parsed = storedSchema.safeParse(json);
  return parsed.success ? parsed.data : null;
}

/** An `identify` call's traits, stamped with when the gateway received them. */
export function traitsFromEvent(traits: Readonly<Record<string, JsonValue>>, atMs: number): StoredTraits {
  const out: StoredTraits = {};
  for (const [key, value] of Object.entries(traits)) {
    // Assigning `__proto__` would set the prototype instead of storing a trait.
    if (key !== '__proto__') out[key] = { v: value, t: atMs };
  }
  return out;
}

/**
 * Per trait, the later write wins; equal times are broken by the JSON text, so merging A into B and B into
 * A give the same result (merges are order-independent). `changed` says whether `base` differs afterwards.
 */
export function lwwMerge(
  base: StoredTraits,
  incoming: StoredTraits,
): { traits: StoredTraits; changed: boolean } {
  const out: StoredTraits = { ...base };
  let changed = false;
  for (const [key, entry] of Object.entries(incoming)) {
    const current = out[key];
    if (current === undefined || wins(entry, current)) {
      out[key] = entry;
      changed = true;
    }
  }
  const keys = Object.keys(out);
  if (keys.length <= MAX_TRAITS) return { traits: out, changed };
  const kept = keys
    .sort((a, b) => (out[b]?.t ?? 0) - (out[a]?.t ?? 0) || (a < b ? -1 : 1))
    .slice(0, MAX_TRAITS);
  const bounded: StoredTraits = {};
  for (const key of kept) {
    const entry = out[key];
    if (entry !== undefined) bounded[key] = entry;
  }
  return { traits: bounded, changed: true };
}

function wins(a: { v: JsonValue; t: number }, b: { v: JsonValue; t: number }): boolean {
  if (a.t !== b.t) return a.t > b.t;
  return JSON.stringify(a.v) > JSON.stringify(b.v);
}
