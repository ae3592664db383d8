import { type CanonicalEvent, canonicalEventSchema } from '@signal/events';
import type { z } from 'zod';

/**
 * Re-validates an event after the processor changed it, checking only what changed.
 *
 * Every event is validated in full once, when it is decoded from `raw-events`. The Org Data Layer and the
 * integration pipelines then change a few parts of it (traits hashed, a bot flag in properties, an
 * integration's map step) and never mutate: each step copies what it changes and shares the rest by
 * reference. So a top-level field that is still the same reference as in the decoded event is still valid,
 * and only fields that are new references are parsed again, each with its own field schema, prepared once
 * here (the pino way: work per configuration, not per event).
 *
 * The result is the one `canonicalEventSchema` would give, by construction:
 * - a changed field that takes part in the schema's cross-field rules (type/event/ids), or a key the schema
 *   does not know, falls back to the full parse;
 * - a changed field that fails falls back to the full parse too, so the error (and its paths) is the same;
 * - the output object lists keys in the schema's order, as a full parse would.
 */

type FieldName = keyof CanonicalEvent & string;

const SHAPE = canonicalEventSchema.shape;
const FIELDS = Object.keys(SHAPE) as FieldName[];
const KNOWN: ReadonlySet<string> = new Set(FIELDS);
/** Fields the object-level refinement reads: a change to one needs the whole event checked. */
const CROSS_FIELD: ReadonlySet<string> = new Set(['type', 'event', 'groupId', 'userId', 'anonymousId']);
const FIELD_SCHEMAS: ReadonlyMap<string, z.ZodType> = new Map(
  FIELDS.filter((f) => !CROSS_FIELD.has(f)).map((f) => [f, SHAPE[f] as z.ZodType]),
);

export type DeliveryEventCheck = z.ZodSafeParseResult<CanonicalEvent>;

/**
 * `validated`: the event as decoded (already valid); `candidate`: the same event after processing.
 * Returns what `canonicalEventSchema.safeParse(candidate)` returns.
 */
export function checkChangedEvent(validated: CanonicalEvent, candidate: CanonicalEvent): DeliveryEventCheck {
  if (candidate === validated) return { success: true, data: validated };
  for (const key in candidate) {
    if (!KNOWN.has(key)) return canonicalEventSchema.safeParse(candidate);
  }
  const out: Record<string, unknown> = {};
  const before = validated as unknown as Record<string, unknown>;
  const after = candidate as unknown as Record<string, unknown>;
  for (const key of FIELDS) {
    const value = after[key];
    if (value !== before[key]) {
      const schema = FIELD_SCHEMAS.get(key);
      if (schema === undefined) return canonicalEventSchema.safeParse(candidate);
      const checked = schema.safeParse(value);
      if (!checked.success) return canonicalEventSchema.safeParse(candidate);
      if (checked.data !== undefined) out[key] = checked.data;
    } else if (value !== undefined) {
      out[key] = value;
    }
  }
  return { success: true, data: out as CanonicalEvent };
}
