import { z } from 'zod';
import { checkedConsent, consentSchema } from './consent';
import { boundedJsonObject } from './json';
import { EVENT_LIMITS, PAYLOAD_JSON_LIMITS } from './limits';

/**
 * The four calls of the collection API (`/v1/t`, `/v1/p`, `/v1/i`, `/v1/g`). `screen` and `alias` are left
 * out on purpose: no endpoint accepts them and no vendor formatter maps them; adding one later is an
 * additive change.
 */
export const EVENT_TYPES = ['track', 'page', 'identify', 'group'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/**
 * How the gateway authenticated the request that carried the event: a server source's HMAC signature, a
 * browser's pipeline key, or the tracking pixel (pipeline key in the query string, no JavaScript).
 */
export const PROVENANCES = ['hmac', 'pipeline_key', 'pixel'] as const;
export type Provenance = (typeof PROVENANCES)[number];

const PRINTABLE_NO_SPACE = /^[\x21-\x7e]+$/;
const RESOURCE_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
const CLICK_ID_NAME = /^[A-Za-z0-9_]{1,64}$/;

/** An org or pipeline id as the store issues them (UUIDs, or slugs in fixtures). */
export const resourceIdSchema = z
  .string()
  .regex(RESOURCE_ID, 'must be 1-128 characters of A-Z a-z 0-9 _ . : -');

/** A user, anonymous or group id, as the event carries it on the bus. */
const identifierSchema = z.string().min(1).max(EVENT_LIMITS.identifier);
/**
 * An id as a client may send it: well-formed Unicode only. An unpaired UTF-16 surrogate (a JSON `"\ud800"`
 * escape) encodes to UTF-8 as U+FFFD, so the identity graph's keyed digests, the consent store's keys and
 * every vendor's hash of two different ids (`"a\ud800"`, `"a\udbff"`, and a real `"a\ufffd"`) would be
 * one: one person's profile, erasure or consent of record would reach another's events. Refused at the
 * gateway; consumers still take such an id from the bus (an event accepted before this rule is delivered).
 */
const inputIdentifierSchema = identifierSchema.refine(
  (s) => s.isWellFormed(),
  'must be well-formed Unicode (no unpaired UTF-16 surrogate)',
);
export const messageIdSchema = z
  .string()
  .min(1)
  .max(EVENT_LIMITS.messageId)
  .regex(PRINTABLE_NO_SPACE, 'must be printable ASCII without spaces');
/** ISO 8601 with a zone (`Z` or `±hh:mm`): a timestamp without one is ambiguous by hours. */
export const isoTimestampSchema = z.iso.datetime({ offset: true });
export const ipSchema = z.union([z.ipv4(), z.ipv6()]);

/**
 * `schema.safeParse(value).success` for a string schema, remembering the last string it accepted: the events
 * of one request share their `receivedAt` and client address (and usually their `timestamp` shape), so the
 * gateway's per-event checks re-validate the same string up to `MAX_BATCH_SIZE` times. Only an accepted
 * value is remembered, and only by equality, so a verdict never differs from the schema's.
 */
export function acceptsLast(schema: z.ZodType<string>): (value: string) => boolean {
  let last: string | undefined;
  return (value) => {
    // `last !== undefined`: before any value was accepted, an undefined input must still reach the schema.
    if (last !== undefined && value === last) return true;
    if (!schema.safeParse(value).success) return false;
    last = value;
    return true;
  };
}

/** `isoTimestampSchema` as a predicate, for the hand-written checks that mirror the schemas. */
export const isIsoTimestamp = acceptsLast(isoTimestampSchema);
/** `ipSchema` as a predicate, for the hand-written checks that mirror the schemas. */
export const isIp = acceptsLast(ipSchema);

export const pageContextSchema = z.object({
  url: z.string().max(EVENT_LIMITS.url),
  referrer: z.string().max(EVENT_LIMITS.url).optional(),
  title: z.string().max(EVENT_LIMITS.pageTitle).optional(),
  path: z.string().max(EVENT_LIMITS.pagePath).optional(),
  search: z.string().max(EVENT_LIMITS.url).optional(),
});

/**
 * Advertising click ids captured from the landing URL or first-party cookies (`gclid`, `wbraid`, `gbraid`,
 * `fbclid`, `fbc`, `fbp`, `ttclid`, `msclkid`, `li_fat_id`, `ScCid`, `epik`, …), keyed by their usual name.
 */
export const clickIdsSchema = z
  .record(
    z.string().regex(CLICK_ID_NAME, 'click id names are 1-64 characters of A-Z a-z 0-9 _'),
    z.string().min(1).max(EVENT_LIMITS.clickIdValue).regex(PRINTABLE_NO_SPACE, 'must be printable ASCII'),
  )
  .refine((ids) => Object.keys(ids).length <= EVENT_LIMITS.clickIds, {
    message: `at most ${EVENT_LIMITS.clickIds} click ids`,
  });

export const libraryContextSchema = z.object({
  name: z.string().min(1).max(EVENT_LIMITS.libraryName),
  version: z.string().max(EVENT_LIMITS.libraryVersion).optional(),
});

const optionalContextFields = {
  userAgent: z.string().max(EVENT_LIMITS.userAgent).optional(),
  page: pageContextSchema.optional(),
  clickIds: clickIdsSchema.optional(),
  library: libraryContextSchema.optional(),
  /** BCP 47 tag of the browser's language (GA4 `language`, TikTok `locale`). */
  locale: z.string().max(EVENT_LIMITS.locale).optional(),
};

const payloadSchema = boundedJsonObject(PAYLOAD_JSON_LIMITS);

function requireTypeFields(
  value: { type: EventType; event?: string | null | undefined; groupId?: string | null | undefined },
  ctx: z.RefinementCtx,
): void {
  if (value.type === 'track' && (value.event === undefined || value.event === null)) {
    ctx.addIssue({ code: 'custom', path: ['event'], message: 'a track event needs an event name' });
  }
  if (value.type === 'group' && (value.groupId === undefined || value.groupId === null)) {
    ctx.addIssue({ code: 'custom', path: ['groupId'], message: 'a group call needs a groupId' });
  }
}

/**
 * What a client may send (Datafly.js, a server source, the pixel), before the gateway stamps it. Unknown
 * keys are dropped (the body's `pipelineKey` among them). `null` ids are accepted and mean absent, as
 * Segment-style clients send `userId: null` for anonymous visitors. `context.ip` is honoured only from an
 * HMAC-authenticated server source (see `stampEvent`).
 */
export const eventInputSchema = z
  .object({
    type: z.enum(EVENT_TYPES),
    event: z.string().min(1).max(EVENT_LIMITS.eventName).nullish(),
    userId: inputIdentifierSchema.nullish(),
    anonymousId: inputIdentifierSchema.nullish(),
    /** The account a `group` call ties the user to. */
    groupId: inputIdentifierSchema.nullish(),
    messageId: messageIdSchema.optional(),
    properties: payloadSchema.optional(),
    traits: payloadSchema.optional(),
    context: z
      .object({
        ip: ipSchema.optional(),
        consent: consentSchema.optional(),
        ...optionalContextFields,
      })
      .optional(),
    timestamp: isoTimestampSchema.optional(),
  })
  .superRefine(requireTypeFields);

export type EventInput = z.infer<typeof eventInputSchema>;

export const eventContextSchema = z.object({
  /** The end user's address; absent for a server event whose source did not forward one. */
  ip: ipSchema.optional(),
  /** Always present (possibly empty): consumers never have to ask whether consent was sent. */
  consent: consentSchema,
  provenance: z.enum(PROVENANCES),
  ...optionalContextFields,
});

/**
 * The event as it travels on `raw-events` and, processed, on `delivery-*`: validated, bounded and stamped by
 * the gateway with where and when it arrived. Every consumer parses it with this schema.
 */
export const canonicalEventSchema = z
  .object({
    type: z.enum(EVENT_TYPES),
    event: z.string().min(1).max(EVENT_LIMITS.eventName).optional(),
    userId: identifierSchema.optional(),
    anonymousId: identifierSchema.optional(),
    groupId: identifierSchema.optional(),
    /** Idempotency key end to end: consumers dedup on it and vendors receive it as their event id. */
    messageId: messageIdSchema,
    properties: payloadSchema,
    traits: payloadSchema,
    context: eventContextSchema,
    /** When the event happened, by the client's clock (defaults to `receivedAt`). */
    timestamp: isoTimestampSchema,
    /** When the gateway accepted it, by the server's clock. */
    receivedAt: isoTimestampSchema,
    org: resourceIdSchema,
    pipelineId: resourceIdSchema,
  })
  .superRefine((value, ctx) => {
    requireTypeFields(value, ctx);
    if (value.anonymousId === undefined && value.userId === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['anonymousId'],
        message: 'an event needs an anonymousId or a userId',
      });
    }
  });

export type CanonicalEvent = z.infer<typeof canonicalEventSchema>;
export type EventContext = CanonicalEvent['context'];

/**
 * The partition key of an event: the anonymous id, so one visitor's events stay in order; a server event
 * that only knows the user id is keyed by that (prefixed, so it cannot collide with an anonymous id).
 */
export function eventKey(event: Pick<CanonicalEvent, 'anonymousId' | 'userId'>): string {
  if (event.anonymousId !== undefined) return event.anonymousId;
  if (event.userId !== undefined) return `user:${event.userId}`;
  // The schema guarantees one of the two; this only guards callers that built an event by hand.
  throw new TypeError('an event needs an anonymousId or a userId to be keyed');
}

/** What the gateway knows about the request, independent of what the body claims. */
export interface ServerStamp {
  readonly org: string;
  readonly pipelineId: string;
  readonly provenance: Provenance;
  /** ISO 8601, the gateway's clock. */
  readonly receivedAt: string;
  /** A fresh id (UUID v4/v7), used when the client sent none. */
  readonly messageId: string;
  /** The first-party `_dfid` cookie, when the request carried one. */
  readonly anonymousId?: string;
  /** The client address as the gateway resolved it (socket or trusted proxy header). */
  readonly ip?: string;
  /** The request's `User-Agent` header. */
  readonly userAgent?: string;
}

/**
 * The client's click ids with the ones the gateway found in the page URL (those win on a name clash). Capped
 * at the schema's limit, found ones first: enrichment must never turn a valid event into a refused one.
 */
function mergeClickIds(
  client: Readonly<Record<string, string>> | undefined,
  found: Readonly<Record<string, string>>,
): Readonly<Record<string, string>> {
  if (client === undefined) return found;
  const merged = { ...client, ...found };
  if (Object.keys(merged).length <= EVENT_LIMITS.clickIds) return merged;
  const capped: Record<string, string> = { ...found };
  let count = Object.keys(capped).length;
  for (const [name, value] of Object.entries(client)) {
    if (count >= EVENT_LIMITS.clickIds) break;
    if (Object.hasOwn(capped, name)) continue;
    capped[name] = value;
    count += 1;
  }
  return capped;
}

/**
 * Builds the canonical event from a validated input and the gateway's stamp, and validates the result.
 *
 * Precedence depends on who is speaking. A browser (`pipeline_key`, `pixel`) cannot be trusted about its own
 * address and its script cannot read the HttpOnly `_dfid` cookie, so the request's IP, User-Agent header and
 * cookie win over the body. A server source (`hmac`) is authenticated and forwards *its* visitor's address,
 * user agent and anonymous id in the body, while the request's own address is the source server's: the body
 * wins, and the request IP is never used.
 *
 * `input` must be the output of `eventInputSchema`; the gateway's enrichment (click ids, `Sec-GPC`, a
 * corrected timestamp) comes as `enrichment`, or already applied to `context.clickIds`, `context.consent`
 * and `timestamp` of the input. Validation runs once per event: the parts
 * `eventInputSchema` already checked and that travel unchanged (`properties`, `traits`, `context.page`,
 * `context.library`) are not walked again; everything the stamp or the enrichment may have changed is
 * checked here. When a check fails the whole candidate goes through `canonicalEventSchema`, so errors are
 * exactly the schema's.
 */
export function stampEvent(
  input: EventInput,
  stamp: ServerStamp,
  enrichment?: Enrichment,
): z.ZodSafeParseResult<CanonicalEvent> {
  const fromServerSource = stamp.provenance === 'hmac';
  const ctx = input.context;
  let clickIds = ctx?.clickIds;
  let consent: unknown = ctx?.consent;
  let timestamp = input.timestamp;
  if (enrichment !== undefined) {
    const found = enrichment.clickIds;
    if (found !== undefined && hasKeys(found)) clickIds = mergeClickIds(clickIds, found);
    if (enrichment.gpc) consent = { ...(ctx?.consent ?? {}), gpc: true };
    if (enrichment.timestamp !== undefined) timestamp = enrichment.timestamp;
  }
  const candidate = {
    type: input.type,
    event: definedOf(input.event),
    userId: definedOf(input.userId),
    anonymousId: fromServerSource
      ? firstDefined(input.anonymousId, stamp.anonymousId)
      : firstDefined(stamp.anonymousId, input.anonymousId),
    groupId: definedOf(input.groupId),
    messageId: input.messageId ?? stamp.messageId,
    properties: input.properties ?? {},
    traits: input.traits ?? {},
    context: {
      ip: fromServerSource ? ctx?.ip : stamp.ip,
      userAgent: fromServerSource ? ctx?.userAgent : firstDefined(stamp.userAgent, ctx?.userAgent),
      page: ctx?.page,
      consent: consent ?? {},
      provenance: stamp.provenance,
      clickIds,
      library: ctx?.library,
      locale: ctx?.locale,
    },
    timestamp: timestamp ?? stamp.receivedAt,
    receivedAt: stamp.receivedAt,
    org: stamp.org,
    pipelineId: stamp.pipelineId,
  };
  const checked = checkedCandidate(candidate);
  if (checked !== undefined) return { success: true, data: checked };
  return canonicalEventSchema.safeParse(dropUndefined(candidate));
}

/**
 * What the gateway adds to a validated input before stamping, applied while the candidate is built (no
 * copy of the input): click ids found in the page URL (merged over the client's), `Sec-GPC: 1` (sets
 * `consent.gpc`), a skew-corrected `timestamp`.
 */
export interface Enrichment {
  readonly clickIds?: Readonly<Record<string, string>>;
  readonly gpc?: boolean;
  readonly timestamp?: string;
}

function hasKeys(value: object): boolean {
  for (const _ in value) return true;
  return false;
}

function definedOf<T>(value: T | null | undefined): T | undefined {
  return value === null ? undefined : value;
}

function firstDefined<T>(a: T | null | undefined, b: T | null | undefined): T | undefined {
  if (a !== undefined && a !== null) return a;
  return b === null ? undefined : b;
}

interface Candidate {
  readonly type: EventType;
  readonly event: string | undefined;
  readonly userId: string | undefined;
  readonly anonymousId: string | undefined;
  readonly groupId: string | undefined;
  readonly messageId: string;
  readonly properties: CanonicalEvent['properties'];
  readonly traits: CanonicalEvent['traits'];
  readonly context: {
    readonly ip: string | undefined;
    readonly userAgent: string | undefined;
    readonly page: CanonicalEvent['context']['page'];
    readonly consent: unknown;
    readonly provenance: Provenance;
    readonly clickIds: Record<string, string> | undefined;
    readonly library: CanonicalEvent['context']['library'];
    readonly locale: string | undefined;
  };
  readonly timestamp: string;
  readonly receivedAt: string;
  readonly org: string;
  readonly pipelineId: string;
}

function isIdentifier(value: string | undefined): boolean {
  return value === undefined || (value.length >= 1 && value.length <= EVENT_LIMITS.identifier);
}

function isClickIds(ids: Record<string, string> | undefined): boolean {
  if (ids === undefined) return true;
  let count = 0;
  for (const name in ids) {
    if (!Object.hasOwn(ids, name)) return false;
    count += 1;
    const value = ids[name];
    if (
      !CLICK_ID_NAME.test(name) ||
      typeof value !== 'string' ||
      value.length < 1 ||
      value.length > EVENT_LIMITS.clickIdValue ||
      !PRINTABLE_NO_SPACE.test(value)
    ) {
      return false;
    }
  }
  return count <= EVENT_LIMITS.clickIds;
}

/**
 * The canonical event, in the key order `canonicalEventSchema` outputs, when every part that was not already
 * validated by `eventInputSchema` passes the same rules; undefined when any check fails or cannot be decided
 * cheaply (the caller then runs the full schema for its exact error). The checks mirror the schema's; the
 * property test in event.test.ts holds the two paths to the same bytes and errors.
 */
function checkedCandidate(c: Candidate): CanonicalEvent | undefined {
  if (!EVENT_TYPES.includes(c.type) || !PROVENANCES.includes(c.context.provenance)) return undefined;
  if (c.event !== undefined && (c.event.length < 1 || c.event.length > EVENT_LIMITS.eventName)) {
    return undefined;
  }
  if (!isIdentifier(c.userId) || !isIdentifier(c.anonymousId) || !isIdentifier(c.groupId)) return undefined;
  if (c.anonymousId === undefined && c.userId === undefined) return undefined;
  if ((c.type === 'track' && c.event === undefined) || (c.type === 'group' && c.groupId === undefined)) {
    return undefined;
  }
  const id = c.messageId;
  if (id.length < 1 || id.length > EVENT_LIMITS.messageId || !PRINTABLE_NO_SPACE.test(id)) return undefined;
  if (!RESOURCE_ID.test(c.org) || !RESOURCE_ID.test(c.pipelineId)) return undefined;
  if (!isIsoTimestamp(c.receivedAt)) return undefined;
  if (c.timestamp !== c.receivedAt && !isIsoTimestamp(c.timestamp)) return undefined;
  const ctx = c.context;
  if (ctx.ip !== undefined && !isIp(ctx.ip)) return undefined;
  if (ctx.userAgent !== undefined && ctx.userAgent.length > EVENT_LIMITS.userAgent) return undefined;
  if (ctx.locale !== undefined && ctx.locale.length > EVENT_LIMITS.locale) return undefined;
  if (!isClickIds(ctx.clickIds)) return undefined;
  // Re-parsed rather than trusted: enrichment may add `gpc`, and the schema's output puts it in shape order.
  const consent = checkedConsent(ctx.consent);
  if (consent === undefined) return undefined;

  const context: Record<string, unknown> = {};
  if (ctx.ip !== undefined) context.ip = ctx.ip;
  context.consent = consent;
  context.provenance = ctx.provenance;
  if (ctx.userAgent !== undefined) context.userAgent = ctx.userAgent;
  if (ctx.page !== undefined) context.page = ctx.page;
  if (ctx.clickIds !== undefined) context.clickIds = ctx.clickIds;
  if (ctx.library !== undefined) context.library = ctx.library;
  if (ctx.locale !== undefined) context.locale = ctx.locale;

  const event: Record<string, unknown> = { type: c.type };
  if (c.event !== undefined) event.event = c.event;
  if (c.userId !== undefined) event.userId = c.userId;
  if (c.anonymousId !== undefined) event.anonymousId = c.anonymousId;
  if (c.groupId !== undefined) event.groupId = c.groupId;
  event.messageId = id;
  event.properties = c.properties;
  event.traits = c.traits;
  event.context = context;
  event.timestamp = c.timestamp;
  event.receivedAt = c.receivedAt;
  event.org = c.org;
  event.pipelineId = c.pipelineId;
  return event as CanonicalEvent;
}

/** Removes keys whose value is undefined (exactOptionalPropertyTypes: absent, not undefined). */
function dropUndefined<T extends Record<string, unknown>>(value: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    out[k] =
      v !== null && typeof v === 'object' && !Array.isArray(v) && k === 'context'
        ? dropUndefined(v as Record<string, unknown>)
        : v;
  }
  return out as T;
}
