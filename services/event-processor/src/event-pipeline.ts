import { type OutgoingMessage, oversize } from '@signal/bus';
import {
  CONSENT_CATEGORIES,
  type ConsentCategory,
  type ConsentStateStore,
  decide,
  type UserConsentStore,
  visitorKey,
} from '@signal/consent';
import { type CanonicalEvent, deliveryMessageSchema, eventKey, topics } from '@signal/events';
import type { ErasedSubjects } from '@signal/identity-hub';
import { carriesConsent, eventConsentState } from './consent/event-consent';
import { checkChangedEvent } from './delivery-event-check';
import type { EventDropReason, IntegrationSkipReason, ProcessorMetrics } from './metrics';
import type { CompiledIntegration, DataLayerDirectory } from './org-data-layer/directory';
import { stripPersonalData } from './org-data-layer/strip';
import type { ProcessorLogger } from './ports';

/** The dedup slice of the cache port. */
export interface DedupCache {
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  get(key: string): Promise<string | null>;
  set(key: string, value: string, options: { readonly ttlMs: number }): Promise<void>;
}

export interface EventPipelineDeps {
  readonly directory: DataLayerDirectory;
  readonly dedup: DedupCache;
  readonly consentStore: ConsentStateStore;
  readonly namespace: string;
  readonly dedupWindowMs: number;
  readonly metrics: ProcessorMetrics;
  readonly logger: ProcessorLogger;
  /**
   * The bus's `maxMessageBytes`: a delivery message must fit it with room for its dead letter
   * (`DEAD_LETTER_RESERVE_BYTES`).
   */
  readonly maxMessageBytes: number;
  /**
   * Erasure records: an erased person's raw events received before the erasure are dropped here, and a
   * delivery message whose ids a rule or pipeline changed carries the erasure digests of the ids it arrived
   * with, so the delivery worker still recognises the person if they are erased while it waits.
   */
  readonly erasures?: Pick<ErasedSubjects, 'erasedBefore' | 'erasureDigestsOf' | 'consentSubjectOf'>;
  /**
   * Consents of record (the identity hub's `createConsentOfRecord`): a signed `consent_update` with a user id is recorded
   * for that person, and every delivery message of an event with a user id names the person's record
   * (`consentSubject`, a pseudonym from `erasures`), which the delivery worker applies at stage 2.
   */
  readonly userConsent?: Pick<UserConsentStore, 'record'>;
}

/** The event name Datafly.js and server sources send a consent choice with (`properties.categories`). */
export const CONSENT_UPDATE_EVENT = 'consent_update';

/**
 * The choices of a consent of record: a `consent_update` the customer's server signed (HMAC), naming a user
 * id, with `properties.categories` of booleans. Null for anything else. A browser's own (pipeline key, user id
 * set by the page) never is: anyone can send one for anyone, and a forged grant must not lift a withdrawal.
 */
function choicesOfRecord(event: CanonicalEvent): Partial<Record<ConsentCategory, boolean>> | null {
  if (event.type !== 'track' || event.event !== CONSENT_UPDATE_EVENT) return null;
  if (event.context.provenance !== 'hmac' || event.userId === undefined) return null;
  const categories = event.properties?.categories;
  if (categories === null || typeof categories !== 'object' || Array.isArray(categories)) return null;
  const choices: Partial<Record<ConsentCategory, boolean>> = {};
  for (const category of CONSENT_CATEGORIES) {
    const value = (categories as Record<string, unknown>)[category];
    if (category !== 'essential' && typeof value === 'boolean') choices[category] = value;
  }
  return Object.keys(choices).length === 0 ? null : choices;
}

/** One decoded raw event and where it sits on the bus (a redelivery has the same position). */
export interface PositionedEvent {
  /**
   * As parsed by `canonicalEventSchema` (the `raw-events` decoder). The pipeline trusts it and re-checks only
   * the fields its steps change, so never pass an event built by hand without parsing it.
   */
  readonly event: CanonicalEvent;
  /** `topic:partition:offset`; marks the dedup entry so a redelivered batch is not taken for duplicates. */
  readonly position: string;
  /**
   * Re-published from the dead-letter queue by an operator (`x-signal-replay`): processed again although its
   * dedup marker says it was seen (it was, and then dead-lettered). Integrations that already accepted it
   * skip it in the worker (the delivery ledger).
   */
  readonly replayed?: boolean;
}

/** Why an event could not be processed, for the DLQ (`error` is a stable code). */
export interface Rejection {
  readonly index: number;
  readonly error: 'pipeline_invalid_event';
  readonly details: string;
}

export interface PipelineResult {
  /** Delivery messages per topic name, in input order (per-visitor order is kept). */
  readonly deliveries: ReadonlyMap<string, OutgoingMessage[]>;
  readonly rejections: readonly Rejection[];
}

type EventOutcome =
  | {
      readonly kind: 'routed';
      readonly messages: readonly { topic: string; message: OutgoingMessage }[];
      /** Integrations whose pipeline made the event invalid: dead-lettered, the others still get it. */
      readonly invalid: readonly string[];
    }
  | { readonly kind: 'dropped'; readonly reason: EventDropReason }
  | { readonly kind: 'rejected'; readonly details: string };

function summarise(issues: readonly { path: PropertyKey[]; message: string }[]): string {
  return issues
    .slice(0, 5)
    .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

/**
 * The Org Data Layer on decoded events, in the order of ARCHITECTURE §1: consent stage 1 → bot filtering →
 * PII hash/redact → deduplication → routing, then each integration's pipeline. Pure except for the two cache
 * calls (consent state, dedup marker); the caller publishes the result and commits. Events are processed
 * concurrently but results keep input order.
 */
export function createEventPipeline(deps: EventPipelineDeps) {
  const { directory, dedup, consentStore, metrics, logger } = deps;
  const topicNames = new Map<string, string>();
  const topicOf = (integrationId: string): string => {
    let name = topicNames.get(integrationId);
    if (name === undefined) {
      name = topics.delivery(deps.namespace, integrationId).name;
      topicNames.set(integrationId, name);
    }
    return name;
  };

  async function isDuplicate(event: CanonicalEvent, position: string, replayed: boolean): Promise<boolean> {
    const key = dedupKey(event);
    if (replayed) {
      // Seen before, and dead-lettered: the replay is processed, and from now on it owns the marker (a
      // redelivery of the replay is recognised by its position like any other).
      await dedup.set(key, position, { ttlMs: deps.dedupWindowMs });
      return false;
    }
    if (await dedup.setIfAbsent(key, position, deps.dedupWindowMs)) return false;
    // The marker names the bus position that set it: the same position means this is our own batch coming
    // back after a crash or a failed publish, which must go through again (downstream is idempotent).
    return (await dedup.get(key)) !== position;
  }

  async function processOne({ event, position, replayed }: PositionedEvent): Promise<EventOutcome> {
    // Erased since it was received (still on raw-events behind the erasure): nothing is made of it, not even
    // its consent state. Checked on the ids as received, before any rule or pipeline could hash or drop them.
    if (deps.erasures?.erasedBefore(event) === true) return { kind: 'dropped', reason: 'erased' };
    // The person's consent of record: written from a signed choice, named on every message of theirs.
    const consentSubject =
      event.userId === undefined ? undefined : deps.erasures?.consentSubjectOf(event.org, event.userId);
    const ofRecord = deps.userConsent === undefined ? null : choicesOfRecord(event);
    if (ofRecord !== null && consentSubject === undefined) {
      // No blind-index key to name the person by (no identity tables here): said, never silent.
      logger.warn(
        { org: event.org },
        'a signed consent_update could not be recorded: the identity tables or their blind-index key are missing',
      );
    } else if (ofRecord !== null && consentSubject !== undefined && deps.userConsent !== undefined) {
      const at = Date.parse(event.receivedAt);
      const write = await deps.userConsent.record(event.org, consentSubject, ofRecord, at);
      if (write.status === 'unavailable') throw new Error('user consent store unavailable');
    }
    const [layer, integrations] = await Promise.all([
      directory.dataLayer(event.org),
      directory.integrations(event.pipelineId),
    ]);

    // Consent, stage 1: the state the event arrived with. The store learns it (last writer wins by time), so
    // stage 2 in the worker sees a revocation that arrives after this event but before its delivery.
    const consent = eventConsentState(event);
    if (carriesConsent(event) && event.anonymousId !== undefined) {
      const write = await consentStore.set(event.org, event.anonymousId, consent);
      if (write.status === 'unavailable') {
        throw new Error('consent state store unavailable');
      }
    }
    const enabled = integrations.filter((i) => i.enabled);
    if (enabled.length === 0) return { kind: 'dropped', reason: 'no_integrations' };
    const targets: { integration: CompiledIntegration; strip: boolean }[] = [];
    for (const integration of enabled) {
      const decision = decide(consent, integration.consent, { stage: 1 });
      metrics.consentDecision(1, decision.outcome);
      if (decision.outcome === 'drop') metrics.skipped('consent');
      else targets.push({ integration, strip: decision.outcome === 'strip' });
    }
    if (targets.length === 0) return { kind: 'dropped', reason: 'consent' };

    let current = event;
    const bot = layer.scoreBot(current);
    if (bot.isBot) {
      if (layer.botAction === 'drop') return { kind: 'dropped', reason: 'bot' };
      current = {
        ...current,
        properties: { ...current.properties, signal_bot: { score: bot.score, signals: [...bot.signals] } },
      };
    }

    current = layer.applyPii(current);

    if (await isDuplicate(current, position, replayed === true)) {
      return { kind: 'dropped', reason: 'duplicate' };
    }

    const messages: { topic: string; message: OutgoingMessage }[] = [];
    const consentMember = consentSubject === undefined ? '' : `,"consentSubject":"${consentSubject}"`;
    // The visitor the consent state was stored for (stage 1 above, by the anonymous id as received), named on
    // a message whose anonymous id a PII rule or a pipeline changed or removed: stage 2 would otherwise look
    // up the changed id, find nothing, and fall back to the consent the event arrived with (missing a
    // withdrawal made since).
    // Computed once per event (a SHA-256), for the first message that needs it.
    const { anonymousId } = event;
    let visitorKeyMember: string | undefined;
    const visitorMember = (shaped: CanonicalEvent): string => {
      if (anonymousId === undefined || shaped.anonymousId === anonymousId) return '';
      visitorKeyMember ??= `,"consentVisitor":"${visitorKey(event.org, anonymousId)}"`;
      return visitorKeyMember;
    };
    // `,"erasureDigests":{…}` for messages whose ids changed, computed once per event (two HMACs per id).
    let digestsMember: string | undefined;
    const erasureMember = (shaped: CanonicalEvent): string => {
      if (shaped.anonymousId === event.anonymousId && shaped.userId === event.userId) return '';
      if (digestsMember === undefined) {
        const digests = deps.erasures?.erasureDigestsOf(event);
        digestsMember =
          digests === undefined || Object.keys(digests).length === 0
            ? ''
            : `,"erasureDigests":${JSON.stringify(digests)}`;
      }
      return digestsMember;
    };
    // Integrations that receive the same processed event (no strip, no pipeline) share one check and one
    // serialisation.
    const serialisedFor = new Map<CanonicalEvent, { key: string; json: string }>();
    const skip = (reason: IntegrationSkipReason): void => metrics.skipped(reason);
    const invalid: string[] = [];
    for (const { integration, strip } of targets) {
      if (!layer.route(current, integration).route) {
        skip('routing');
        continue;
      }
      const base = strip ? stripPersonalData(current) : current;
      if (base === null) {
        skip('strip_unkeyable');
        continue;
      }
      const shaped = integration.pipeline(base);
      if (shaped === null) {
        skip('pipeline_filter');
        continue;
      }
      // The event was validated in full when it was decoded; only what the steps changed is checked again.
      // The integration id was validated when the integration list was compiled, the attempt is a constant.
      let serialised = serialisedFor.get(shaped);
      if (serialised === undefined) {
        const checked = checkChangedEvent(event, shaped);
        if (!checked.success) {
          // The full message parse, for the same error text (paths under `event.`) as ever.
          const full = deliveryMessageSchema.safeParse({
            integrationId: integration.id,
            event: shaped,
            attempt: { number: 1 },
          });
          // Only this integration's copy is refused; the others still get the event. The raw event is
          // dead-lettered naming it, so that after the pipeline is fixed a replay reaches it (and the
          // integrations that already have it skip it in the worker).
          skip('invalid_result');
          invalid.push(
            `integration ${integration.id}: the processed event is not a valid delivery message: ${full.success ? summarise(checked.error.issues) : summarise(full.error.issues)}`,
          );
          continue;
        }
        serialised = { key: eventKey(checked.data), json: JSON.stringify(checked.data) };
        serialisedFor.set(shaped, serialised);
      }
      const message = {
        key: serialised.key,
        // Byte for byte what JSON.stringify of the parsed DeliveryMessage gives (same key order).
        value: `{"integrationId":${JSON.stringify(integration.id)},"event":${serialised.json},"attempt":{"number":1}${erasureMember(shaped)}${consentMember}${visitorMember(shaped)}}`,
      };
      // A message the bus cannot carry would fail the batch's publish every time and stop this partition
      // (rules and pipelines can make an event larger than the gateway let in). Refused like an invalid
      // result: this integration's copy only, the raw event dead-lettered naming it.
      const over = oversize(message, deps.maxMessageBytes);
      if (over !== undefined) {
        skip('invalid_result');
        invalid.push(
          `integration ${integration.id}: the delivery message is ${over.bytes} bytes; the event bus carries at most ${over.room}`,
        );
        continue;
      }
      messages.push({ topic: topicOf(integration.id), message });
    }
    if (messages.length === 0) {
      return invalid.length === 0
        ? { kind: 'dropped', reason: 'not_routed' }
        : { kind: 'rejected', details: invalid.join('; ') };
    }
    return { kind: 'routed', messages, invalid };
  }

  return {
    topicOf,
    async process(items: readonly PositionedEvent[]): Promise<PipelineResult> {
      const outcomes = await Promise.all(items.map(processOne));
      const deliveries = new Map<string, OutgoingMessage[]>();
      const rejections: Rejection[] = [];
      outcomes.forEach((outcome, index) => {
        switch (outcome.kind) {
          case 'routed':
            metrics.event('routed');
            for (const { topic, message } of outcome.messages) {
              const list = deliveries.get(topic);
              if (list === undefined) deliveries.set(topic, [message]);
              else list.push(message);
            }
            if (outcome.invalid.length > 0) {
              const details = outcome.invalid.join('; ');
              logger.warn({ details }, 'processed event is invalid for some integrations; dead-lettered');
              rejections.push({ index, error: 'pipeline_invalid_event', details });
            }
            break;
          case 'dropped':
            metrics.event('dropped', outcome.reason);
            break;
          case 'rejected':
            metrics.event('dead_letter');
            logger.warn({ details: outcome.details }, 'processed event is invalid; dead-lettered');
            rejections.push({ index, error: 'pipeline_invalid_event', details: outcome.details });
            break;
        }
      });
      return { deliveries, rejections };
    },
  };
}

export type EventPipeline = ReturnType<typeof createEventPipeline>;

/**
 * The dedup marker of an event: per pipeline, because `messageId` is chosen by the sender. A browser
 * pipeline's key is public, so a marker shared across pipelines would let anyone suppress another source's
 * events by sending their (often predictable) ids first. v1 markers (org-wide) are ignored after an upgrade:
 * a retry that straddles it may be delivered twice, and downstream handlers are idempotent on messageId.
 */
function dedupKey(event: CanonicalEvent): string {
  return `dedup:v2:${event.org}:${event.pipelineId}:${event.messageId}`;
}
