import type { z } from 'zod';
import { type Consent, checkedConsent } from './consent';
import { type EventInput, eventInputSchema, isIp, isIsoTimestamp } from './event';
import { isPlainObject, isWithinJsonLimits } from './json';
import { EVENT_LIMITS, PAYLOAD_JSON_LIMITS } from './limits';

/**
 * `eventInputSchema`, validated once and without zod for the inputs real clients send. The gateway checks
 * every event it receives; on the single-event and batch endpoints the zod walk was the largest part of its
 * own CPU per event (`pnpm bench gateway`). `checkedInput` mirrors the schema rule for rule and builds the
 * same output (unknown keys dropped, keys in the schema's order, the same object for `properties` and
 * `traits`); whenever a check fails, or a field is unusual enough not to be worth mirroring, it gives up and
 * `parseEventInput` runs the schema itself, so a refused event gets exactly the schema's issues. The
 * property test in input.property.test.ts holds the two paths to the same bytes and the same verdicts.
 */
export function parseEventInput(raw: unknown): z.ZodSafeParseResult<EventInput> {
  const checked = checkedInput(raw);
  if (checked !== undefined) return { success: true, data: checked };
  return eventInputSchema.safeParse(raw);
}

const EVENT_TYPES_SET: ReadonlySet<unknown> = new Set(['track', 'page', 'identify', 'group']);
const PRINTABLE_NO_SPACE = /^[\x21-\x7e]+$/;
const CLICK_ID_NAME = /^[A-Za-z0-9_]{1,64}$/;

/** A string within [min, max] UTF-16 units, as `z.string().min(min).max(max)` counts. */
function isText(value: unknown, min: number, max: number): value is string {
  return typeof value === 'string' && value.length >= min && value.length <= max;
}

/** `.nullish()` of an identifier or name: absent, null, or a string within bounds. */
function isNullishText(value: unknown, max: number): boolean {
  return value === undefined || value === null || isText(value, 1, max);
}

/** `.nullish()` of an identifier: as `isNullishText`, and well-formed Unicode (event.ts, `identifierSchema`). */
function isNullishIdentifier(value: unknown): boolean {
  return (
    value === undefined ||
    value === null ||
    (isText(value, 1, EVENT_LIMITS.identifier) && value.isWellFormed())
  );
}

/** The schema's output for a valid input; undefined when anything fails or is not mirrored here. */
export function checkedInput(raw: unknown): EventInput | undefined {
  if (!isPlainObject(raw)) return undefined;
  const { type, event, userId, anonymousId, groupId, messageId, properties, traits, context, timestamp } =
    raw;
  if (!EVENT_TYPES_SET.has(type)) return undefined;
  if (!isNullishText(event, EVENT_LIMITS.eventName)) return undefined;
  if (!isNullishIdentifier(userId)) return undefined;
  if (!isNullishIdentifier(anonymousId)) return undefined;
  if (!isNullishIdentifier(groupId)) return undefined;
  if (type === 'track' && (event === undefined || event === null)) return undefined;
  if (type === 'group' && (groupId === undefined || groupId === null)) return undefined;
  if (
    messageId !== undefined &&
    !(isText(messageId, 1, EVENT_LIMITS.messageId) && PRINTABLE_NO_SPACE.test(messageId))
  ) {
    return undefined;
  }
  if (properties !== undefined && !isPayload(properties)) return undefined;
  if (traits !== undefined && !isPayload(traits)) return undefined;
  let checkedContext: EventInput['context'];
  if (context !== undefined) {
    checkedContext = checkedInputContext(context);
    if (checkedContext === undefined) return undefined;
  }
  if (timestamp !== undefined && !(typeof timestamp === 'string' && isIsoTimestamp(timestamp)))
    return undefined;

  // The schema's output: its keys in shape order, only those the input had.
  const out: Record<string, unknown> = { type };
  if (event !== undefined) out.event = event;
  if (userId !== undefined) out.userId = userId;
  if (anonymousId !== undefined) out.anonymousId = anonymousId;
  if (groupId !== undefined) out.groupId = groupId;
  if (messageId !== undefined) out.messageId = messageId;
  if (properties !== undefined) out.properties = properties;
  if (traits !== undefined) out.traits = traits;
  if (checkedContext !== undefined) out.context = checkedContext;
  if (timestamp !== undefined) out.timestamp = timestamp;
  return out as EventInput;
}

function isPayload(value: unknown): boolean {
  return isPlainObject(value) && isWithinJsonLimits(value, PAYLOAD_JSON_LIMITS);
}

function checkedInputContext(raw: unknown): EventInput['context'] | undefined {
  if (!isPlainObject(raw)) return undefined;
  const { ip, consent, userAgent, page, clickIds, library, locale } = raw;
  if (ip !== undefined && !(typeof ip === 'string' && isIp(ip))) return undefined;
  let checkedConsentValue: Consent | undefined;
  if (consent !== undefined) {
    checkedConsentValue = checkedConsent(consent);
    if (checkedConsentValue === undefined) return undefined;
  }
  if (userAgent !== undefined && !isText(userAgent, 0, EVENT_LIMITS.userAgent)) return undefined;
  let checkedPage: Record<string, unknown> | undefined;
  if (page !== undefined) {
    checkedPage = checkedPageContext(page);
    if (checkedPage === undefined) return undefined;
  }
  let checkedClickIds: Record<string, string> | undefined;
  if (clickIds !== undefined) {
    checkedClickIds = checkedClickIdRecord(clickIds);
    if (checkedClickIds === undefined) return undefined;
  }
  let checkedLibrary: Record<string, unknown> | undefined;
  if (library !== undefined) {
    if (!isPlainObject(library)) return undefined;
    const { name, version } = library;
    if (!isText(name, 1, EVENT_LIMITS.libraryName)) return undefined;
    if (version !== undefined && !isText(version, 0, EVENT_LIMITS.libraryVersion)) return undefined;
    checkedLibrary = version === undefined ? { name } : { name, version };
  }
  if (locale !== undefined && !isText(locale, 0, EVENT_LIMITS.locale)) return undefined;

  const out: Record<string, unknown> = {};
  if (ip !== undefined) out.ip = ip;
  if (checkedConsentValue !== undefined) out.consent = checkedConsentValue;
  if (userAgent !== undefined) out.userAgent = userAgent;
  if (checkedPage !== undefined) out.page = checkedPage;
  if (checkedClickIds !== undefined) out.clickIds = checkedClickIds;
  if (checkedLibrary !== undefined) out.library = checkedLibrary;
  if (locale !== undefined) out.locale = locale;
  return out as EventInput['context'];
}

const PAGE_FIELDS = [
  ['url', EVENT_LIMITS.url],
  ['referrer', EVENT_LIMITS.url],
  ['title', EVENT_LIMITS.pageTitle],
  ['path', EVENT_LIMITS.pagePath],
  ['search', EVENT_LIMITS.url],
] as const;

function checkedPageContext(raw: unknown): Record<string, unknown> | undefined {
  if (!isPlainObject(raw) || raw.url === undefined) return undefined;
  const out: Record<string, unknown> = {};
  for (const [name, max] of PAGE_FIELDS) {
    const value = raw[name];
    if (value === undefined) continue;
    if (!isText(value, 0, max)) return undefined;
    out[name] = value;
  }
  return out;
}

function checkedClickIdRecord(raw: unknown): Record<string, string> | undefined {
  if (!isPlainObject(raw)) return undefined;
  const out: Record<string, string> = {};
  let count = 0;
  for (const name of Object.keys(raw)) {
    const value = raw[name];
    if (
      !CLICK_ID_NAME.test(name) ||
      !isText(value, 1, EVENT_LIMITS.clickIdValue) ||
      !PRINTABLE_NO_SPACE.test(value)
    ) {
      return undefined;
    }
    out[name] = value;
    count += 1;
  }
  return count <= EVENT_LIMITS.clickIds ? out : undefined;
}
