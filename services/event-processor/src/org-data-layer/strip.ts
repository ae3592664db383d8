import type { CanonicalEvent, JsonObject, JsonValue } from '@signal/events';
import { inferFieldType } from '@signal/pii';

/**
 * Consent `strip`: the delivery gate passed but the user-data gate did not, so the event is delivered without
 * personal data. Removed: `userId`, every trait, `context.ip`, advertising click ids, and every property whose
 * name reads as personal data (`email`, `phone`, `first_name`, `zip`, … — the `@signal/pii` field types other
 * than `generic`), at any depth. What stays: the event name and type, non-personal properties (`value`,
 * `currency`, `products`, …), the page, user agent, locale, consent and the anonymous id, which is what a
 * vendor needs for unattributed measurement.
 *
 * An event known only by its `userId` cannot be keyed without it, so it cannot be stripped: `null`, and the
 * caller drops it for that integration.
 */
export function stripPersonalData(event: CanonicalEvent): CanonicalEvent | null {
  if (event.anonymousId === undefined) return null;
  const { userId: _userId, ...rest } = event;
  const { ip: _ip, clickIds: _clickIds, ...context } = event.context;
  return { ...rest, traits: {}, properties: stripObject(event.properties, 0), context };
}

const MAX_DEPTH = 8;

function stripValue(value: JsonValue, depth: number): JsonValue {
  if (Array.isArray(value)) return value.map((item) => stripValue(item, depth + 1));
  if (value !== null && typeof value === 'object') return stripObject(value, depth + 1);
  return value;
}

function stripObject(object: JsonObject, depth: number): JsonObject {
  if (depth > MAX_DEPTH) return {};
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(object)) {
    if (inferFieldType([key]) !== 'generic') continue;
    out[key] = stripValue(value, depth);
  }
  return out;
}
