import { z } from 'zod';
import { canonicalEventSchema, eventKey, isoTimestampSchema } from './event';
import { boundedJsonValue } from './json';
import { ORIGINAL_JSON_LIMITS } from './limits';

/**
 * `SIGNAL_NAMESPACE`: prefixes every topic and consumer group so several deployments (or test runs) can share
 * one Kafka cluster. Empty means no prefix. Dots are not allowed so a topic name splits unambiguously.
 */
const NAMESPACE = /^(?:[A-Za-z0-9][A-Za-z0-9_-]{0,47})?$/;
/** Integration ids become part of a topic name, so they keep to Kafka's topic alphabet minus the dot. */
const INTEGRATION_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
/** Kafka's own rule for topic names. */
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

export const integrationIdSchema = z
  .string()
  .regex(
    INTEGRATION_ID,
    'integration ids are 1-128 characters of A-Z a-z 0-9 _ - (starting with a letter or digit)',
  );
export const topicNameSchema = z
  .string()
  .regex(TOPIC_NAME, 'topic names are 1-249 characters of A-Z a-z 0-9 . _ -');

export class TopicNameError extends Error {
  readonly code = 'invalid_topic_name';
  constructor(message: string) {
    super(message);
    this.name = 'TopicNameError';
  }
}

function checkNamespace(namespace: string): void {
  if (!NAMESPACE.test(namespace)) {
    throw new TopicNameError(
      'SIGNAL_NAMESPACE must be empty or 1-48 characters of A-Z a-z 0-9 _ - starting with a letter or digit',
    );
  }
}

function checkIntegrationId(integrationId: string): void {
  if (!INTEGRATION_ID.test(integrationId)) {
    throw new TopicNameError(
      'integration ids used in topic names are 1-128 characters of A-Z a-z 0-9 _ - starting with a letter or digit',
    );
  }
}

/** `<namespace>.<base>`, or `<base>` alone when the namespace is empty. */
export function namespaced(namespace: string, base: string): string {
  checkNamespace(namespace);
  return namespace === '' ? base : `${namespace}.${base}`;
}

/** A consumer group id in the deployment's namespace (`signal.event-processor`). */
export function consumerGroup(namespace: string, name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/.test(name)) {
    throw new TopicNameError('consumer group names are 1-128 characters of A-Z a-z 0-9 _ -');
  }
  return namespaced(namespace, name);
}

/**
 * Header of a message an operator re-published from the dead-letter queue (`replayDlq`): the processor lets
 * a replayed raw event past its dedup marker, the worker treats a vendor's age-window refusal of a replay as a
 * drop. Only Signal's own replay sets it (the gateway publishes no headers).
 */
export const REPLAY_HEADER = 'x-signal-replay';

export const TOPIC_KINDS = ['raw-events', 'delivery', 'dlq-events'] as const;
export type TopicKind = (typeof TOPIC_KINDS)[number];

/**
 * One topic of the catalog: its full name, the zod schema of its values, how a value is keyed (same key →
 * same partition → order kept) and where its poison messages go. Producers and consumers both take the
 * definition from here, so they cannot disagree on a name, a shape or a key.
 */
export interface TopicDef<T> {
  readonly kind: TopicKind;
  readonly name: string;
  readonly schema: z.ZodType<T>;
  key(value: T): string;
  /** The dead-letter topic for messages of this topic; null for the dead-letter topic itself. */
  readonly dlq: TopicDef<DlqMessage> | null;
}

/** A keyed digest (HMAC-SHA-256, hex) standing for an id: erasure digests, the consent subject. */
const keyedDigestSchema = z.string().regex(/^[0-9a-f]{64}$/, 'a keyed digest is 64 lower-case hex digits');
export const erasureDigestsSchema = z.object({
  anonymousId: keyedDigestSchema.optional(),
  userId: keyedDigestSchema.optional(),
});
export type ErasureDigests = z.infer<typeof erasureDigestsSchema>;

/**
 * The value on `delivery-{integration_id}`: an event after the Org Data Layer (consent, bot filter, PII
 * hashing/redaction, routing), addressed to one integration, with the delivery worker's attempt bookkeeping.
 */
export const deliveryMessageSchema = z.object({
  integrationId: integrationIdSchema,
  event: canonicalEventSchema,
  attempt: z.object({
    /** 1 for the first try; a re-published retry carries the next number. */
    number: z.int().min(1).max(1000),
    /** When the first try happened; the retry budget spans from here. */
    firstAttemptAt: isoTimestampSchema.optional(),
    /** Do not try before this instant (a retry's backoff, or a vendor's Retry-After). */
    notBefore: isoTimestampSchema.optional(),
    /** Stable error code of the previous try, e.g. `vendor_5xx`; never a response body. */
    lastError: z.string().max(128).optional(),
  }),
  /**
   * The identity graph's erasure digests (`identity_erasures.digest`) of the ids the event arrived with, set
   * by the processor when a rule or pipeline changed them (a hashed `userId`, a stripped one): the delivery
   * worker matches an erasure made while the message waited on these, since the event's own ids no longer
   * name the person. Keyed digests, never an id; absent when the ids are unchanged or no erasure can exist yet.
   */
  erasureDigests: erasureDigestsSchema.optional(),
  /**
   * The key of the person's consent of record (`@signal/consent` user consent store), set by the processor
   * for an event that arrived with a user id: stage 2 applies the person's withdrawals of record by it, since
   * the event's own `userId` may have been hashed by then. A keyed pseudonym, never the id.
   */
  consentSubject: keyedDigestSchema.optional(),
  /**
   * The key of the visitor's consent state (`@signal/consent` `visitorKey`: SHA-256 of the org and the
   * anonymous id the event arrived with), set by the processor when a rule or pipeline changed or removed the
   * anonymous id: stage 2 looks the visitor's latest consent up by it, since the event's own `anonymousId` no
   * longer names the visitor the state was stored for. Absent when the anonymous id is unchanged.
   */
  consentVisitor: z
    .string()
    .regex(/^[A-Za-z0-9_-]{43}$/, 'a visitor key is a base64url SHA-256 (43 characters)')
    .optional(),
});
export type DeliveryMessage = z.infer<typeof deliveryMessageSchema>;

/**
 * The value on `dlq-events`: what failed, why, and the original message verbatim so it can be inspected and
 * replayed onto `topic` with `originalKey` (which keeps it in its visitor's partition).
 */
export const dlqMessageSchema = z.object({
  /** Stable error code (`validation_failed`, `vendor_rejected`, `retries_exhausted`, …). */
  error: z.string().min(1).max(128),
  /** Human-readable explanation; never secrets, credentials or raw PII. */
  details: z.string().max(4096),
  /** The original message value: parsed JSON when it parsed, else the raw text. */
  original: boundedJsonValue(ORIGINAL_JSON_LIMITS),
  /** The original message's key, so a replay lands in the same partition. */
  originalKey: z.string().max(1024).optional(),
  /** The topic the message was consumed from (where a replay publishes it). */
  topic: topicNameSchema,
  integrationId: integrationIdSchema.optional(),
  attempts: z.int().min(0).max(1000).optional(),
  /** The vendor's last answer, truncated: HTTP status and the start of the body, or a network error code. */
  lastResponse: z
    .object({
      status: z.int().min(100).max(599).optional(),
      body: z.string().max(4096).optional(),
      errorCode: z.string().max(128).optional(),
    })
    .optional(),
  failedAt: isoTimestampSchema,
});
export type DlqMessage = z.infer<typeof dlqMessageSchema>;

function dlqEvents(namespace: string): TopicDef<DlqMessage> {
  return Object.freeze({
    kind: 'dlq-events' as const,
    name: namespaced(namespace, 'dlq-events'),
    schema: dlqMessageSchema,
    key: (value: DlqMessage) => value.originalKey ?? value.topic,
    dlq: null,
  });
}

function rawEvents(namespace: string): TopicDef<z.infer<typeof canonicalEventSchema>> {
  return Object.freeze({
    kind: 'raw-events' as const,
    name: namespaced(namespace, 'raw-events'),
    schema: canonicalEventSchema,
    key: eventKey,
    dlq: dlqEvents(namespace),
  });
}

function delivery(namespace: string, integrationId: string): TopicDef<DeliveryMessage> {
  checkIntegrationId(integrationId);
  return Object.freeze({
    kind: 'delivery' as const,
    name: namespaced(namespace, `delivery-${integrationId}`),
    schema: deliveryMessageSchema,
    key: (value: DeliveryMessage) => eventKey(value.event),
    dlq: dlqEvents(namespace),
  });
}

/** What a topic name means in a namespace, or null when it is not one of the catalog's topics. */
export type ParsedTopicName =
  | { readonly kind: 'raw-events' }
  | { readonly kind: 'dlq-events' }
  | { readonly kind: 'delivery'; readonly integrationId: string };

function parse(namespace: string, name: string): ParsedTopicName | null {
  checkNamespace(namespace);
  const prefix = namespace === '' ? '' : `${namespace}.`;
  if (!name.startsWith(prefix)) return null;
  const base = name.slice(prefix.length);
  if (base === 'raw-events') return { kind: 'raw-events' };
  if (base === 'dlq-events') return { kind: 'dlq-events' };
  if (base.startsWith('delivery-')) {
    const integrationId = base.slice('delivery-'.length);
    return INTEGRATION_ID.test(integrationId) ? { kind: 'delivery', integrationId } : null;
  }
  return null;
}

/**
 * The topic catalog. Every function validates its arguments and throws `TopicNameError` on a bad namespace
 * or integration id; results are frozen and cheap to build, so callers build them once at start-up.
 */
export const topics = Object.freeze({
  /** `<ns>.raw-events`: canonical events from the gateway, keyed by visitor. */
  rawEvents,
  /** `<ns>.delivery-<integrationId>`: processed events for one integration, keyed by visitor. */
  delivery,
  /** `<ns>.dlq-events`: dead letters of every topic. */
  dlqEvents,
  /** Inverse of the above for a name seen on the wire (DLQ replay, CLI). */
  parse,
});
