import { type Bus, type ConsumedMessage, type Decoded, deadLetter, publishTo } from '@signal/bus';
import {
  applyUserConsent,
  type ConsentStateStore,
  decideLatest,
  type LatestConsent,
  resolveLatestConsent,
  type UserConsentRead,
  type UserConsentStore,
  type WithdrawableCategory,
  withdrawnCategories,
} from '@signal/consent';
import { eventConsentState, stripPersonalData } from '@signal/event-processor';
import { type CanonicalEvent, type DeliveryMessage, type DlqMessage, eventKey, topics } from '@signal/events';
import type { ErasedSubjects } from '@signal/identity-hub';
import type { DeliveryOutcome } from '@signal/vendors';
import { publishableLetter } from '../dlq/publishable-letter';
import { REPLAY_HEADER } from '../dlq/replay';
import type { DeliveryLedger } from '../ledger/delivery-ledger';
import type { WorkerMetrics } from '../metrics';
import type { WorkerLogger } from '../ports';
import type { RetryEntry, RetryStore } from '../retry/retry-store';
import { type BackoffPolicy, planRetry } from './backoff';
import { CircuitBreaker } from './circuit-breaker';
import { withStageTwoConsent } from './consent-view';
import type { IntegrationRuntime, RuntimeDirectory } from './integration-runtime';
import { TokenBucket } from './token-bucket';

export interface BreakerSettings {
  readonly failureThreshold: number;
  readonly openMs: number;
  readonly maxOpenMs: number;
}

export interface BatchDelivererDeps {
  readonly runtimes: RuntimeDirectory;
  readonly ledger: DeliveryLedger;
  readonly retries: RetryStore;
  readonly consentStore: ConsentStateStore;
  /**
   * Consents of record (the identity hub's `createConsentOfRecord`): withdrawals of record, named by a delivery
   * message's `consentSubject`, veto those categories for every event of theirs at stage 2.
   */
  readonly userConsent?: Pick<UserConsentStore, 'get'>;
  /** Erasure records: an erased person's events received before the erasure are dropped, never sent. */
  readonly erasures?: Pick<ErasedSubjects, 'erasedBefore'>;
  readonly bus: Bus;
  readonly namespace: string;
  readonly policy: BackoffPolicy;
  /** RATE_LIMIT_PER_SECOND: deliveries per second per integration. */
  readonly rateLimitPerSecond: number;
  readonly breaker: BreakerSettings;
  /** Per vendor request (headers and body); a slow vendor times out into `retry(timeout)`. */
  readonly requestTimeoutMs: number;
  /** Delay before an event deferred without consuming an attempt (circuit open, consent store down). */
  readonly deferMs: number;
  readonly metrics: WorkerMetrics;
  readonly logger: WorkerLogger;
  /** Told when an integration's circuit opens, so its consumers can pause until the half-open probe. */
  readonly onCircuitOpen?: (integrationId: string, retryInMs: number) => void;
  /**
   * Longest wait (rate limiter) between two `heartbeat` calls. Default 1 s; keep it well under the bus
   * session timeout (30 s by default, 2 s in tests).
   */
  readonly heartbeatIntervalMs?: number;
  readonly now?: () => number;
  readonly random?: () => number;
}

/** What one batch came to, for tests and logs (counts only). */
export interface BatchSummary {
  readonly delivered: number;
  readonly alreadyDelivered: number;
  readonly retried: number;
  readonly deferred: number;
  readonly deadLettered: number;
  readonly dropped: number;
}

/** How the bus batch being delivered is driven: its abort signal and its liveness heartbeat. */
export interface BatchControl {
  /** Aborted when the partition is lost or the stop deadline passed: wind down, the rest is redelivered. */
  readonly signal?: AbortSignal;
  /**
   * `Batch.heartbeat` of the bus: called after every vendor request and every consent lookup, and at least
   * every `heartbeatIntervalMs` while waiting on the rate limiter. A batch that runs longer than the bus
   * session timeout without it loses its partition, and another member sends it again.
   */
  readonly heartbeat?: () => Promise<void>;
}

interface Pending {
  readonly message: ConsumedMessage;
  readonly value: DeliveryMessage;
}

/** Events whose vendor request should not count against the breaker: the vendor answered. */
const INFRASTRUCTURE_RETRIES: ReadonlySet<string> = new Set([
  'rate_limited',
  'vendor_unavailable',
  'timeout',
  'network_error',
]);

/** The vendors' age-window guard: for a replayed event it means "too late now", a drop rather than a new dead letter. */
const REPLAY_DROPPED: ReadonlySet<string> = new Set(['event_too_old']);

/** Waits `ms` (or until aborted), calling `beat` at least every `intervalMs` so the bus keeps the partition. */
async function pause(
  ms: number,
  signal: AbortSignal | undefined,
  beat: () => Promise<void>,
  intervalMs: number,
): Promise<void> {
  const until = Date.now() + ms;
  for (let left = ms; left > 0 && !signal?.aborted; left = until - Date.now()) {
    await sleep(Math.min(left, intervalMs), signal);
    await beat();
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * The delivery path of one integration's batch (ARCHITECTURE §6), every step's effect recorded before the
 * caller commits: decode → runtime (integration, credentials) → ledger (skip accepted pairs) → stage-2
 * consent against the latest state → circuit breaker → rate limit → vendor (strict TLS) → record outcomes:
 * delivered → ledger; retry → durable retry row (or `retries_exhausted` dead letter); dead_letter →
 * `dlq-events` with the vendor's scrubbed last answer; dropped → counted.
 */
export function createBatchDeliverer(deps: BatchDelivererDeps) {
  const { metrics, logger, policy } = deps;
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const dlq = topics.dlqEvents(deps.namespace);
  const heartbeatIntervalMs = deps.heartbeatIntervalMs ?? 1_000;
  const breakers = new Map<string, CircuitBreaker>();
  const buckets = new Map<string, TokenBucket>();

  function breakerOf(id: string): CircuitBreaker {
    let breaker = breakers.get(id);
    if (breaker === undefined) {
      breaker = new CircuitBreaker({ ...deps.breaker, now });
      breakers.set(id, breaker);
    }
    return breaker;
  }
  function bucketOf(id: string): TokenBucket {
    let bucket = buckets.get(id);
    if (bucket === undefined) {
      bucket = new TokenBucket(deps.rateLimitPerSecond);
      buckets.set(id, bucket);
    }
    return bucket;
  }

  async function send(
    runtime: IntegrationRuntime,
    work: readonly { pending: Pending; event: CanonicalEvent }[],
    signal: AbortSignal | undefined,
    beat: () => Promise<void>,
  ): Promise<{ outcomes: Map<Pending, DeliveryOutcome>; deferred: Pending[]; deferMs: number }> {
    const outcomes = new Map<Pending, DeliveryOutcome>();
    const breaker = breakerOf(runtime.id);
    const bucket = bucketOf(runtime.id);
    // A chunk may be many requests (one per event for webhooks): the batch beats after each of them.
    const transport = {
      send: async (request: Parameters<typeof runtime.transport.send>[0]) => {
        const result = await runtime.transport.send(request);
        await beat();
        return result;
      },
    };
    let next = 0;
    while (next < work.length) {
      if (signal?.aborted) break;
      const permit = breaker.permit();
      if (!permit.allowed) {
        return { outcomes, deferred: work.slice(next).map((w) => w.pending), deferMs: permit.retryInMs };
      }
      const size = permit.probe ? 1 : Math.min(bucket.capacity, work.length - next);
      const chunk = work.slice(next, next + size);
      next += size;
      const wait = bucket.reserve(chunk.length);
      if (wait > 0) await pause(wait, signal, beat, heartbeatIntervalMs);
      const report = await runtime.integration.deliver(
        chunk.map((c) => c.event),
        {
          transport,
          timeoutMs: deps.requestTimeoutMs,
          now,
          ...(signal ? { signal } : {}),
        },
      );
      for (const r of report.requests) metrics.requestDuration(runtime.vendor, r.durationMs / 1000);
      const infraFailure =
        report.outcomes.length > 0 &&
        report.outcomes.every((o) => o.kind === 'retry' && INFRASTRUCTURE_RETRIES.has(o.reason));
      if (report.requests.length > 0) {
        if (infraFailure) {
          if (breaker.recordFailure() === 'open') {
            metrics.circuit(runtime.vendor, 'open');
            logger.warn({ integrationId: runtime.id, vendor: runtime.vendor }, 'circuit opened');
            const permitAfter = breaker.permit();
            if (!permitAfter.allowed) deps.onCircuitOpen?.(runtime.id, permitAfter.retryInMs);
          }
        } else {
          const before = breaker.state;
          breaker.recordSuccess();
          if (before !== 'closed') metrics.circuit(runtime.vendor, 'closed');
        }
      } else if (permit.probe) {
        breaker.release();
      }
      chunk.forEach((c, i) => {
        const outcome = report.outcomes[i];
        if (outcome !== undefined) outcomes.set(c.pending, outcome);
      });
      await beat();
    }
    // Aborted (shutdown) before these were sent: deferred, they keep their attempt.
    return { outcomes, deferred: work.slice(next).map((w) => w.pending), deferMs: deps.deferMs };
  }

  /**
   * The categories the message's person withdrew of record (none without a `consentSubject` or a store);
   * `unavailable` when the store did not answer: stage 2 cannot tell, so the event waits like for the
   * visitor's state. `seen` holds this batch's lookups: a person's events of one batch ask once.
   */
  function userConsentOf(
    value: DeliveryMessage,
    seen: Map<string, Promise<readonly WithdrawableCategory[] | 'unavailable'>>,
  ): Promise<readonly WithdrawableCategory[] | 'unavailable'> {
    const { consentSubject } = value;
    const store = deps.userConsent;
    if (consentSubject === undefined || store === undefined) return Promise.resolve([]);
    const key = `${value.event.org}\0${consentSubject}`;
    let lookup = seen.get(key);
    if (lookup === undefined) {
      lookup = store.get(value.event.org, consentSubject).then(
        (read: UserConsentRead) =>
          read.status === 'unavailable' ? 'unavailable' : withdrawnCategories(read),
        () => 'unavailable' as const,
      );
      seen.set(key, lookup);
    }
    return lookup;
  }

  function retryEntry(p: Pending, attempt: number, delayMs: number, lastError: string): RetryEntry {
    const dueAt = new Date(now() + delayMs);
    const value: DeliveryMessage = {
      ...p.value,
      attempt: {
        number: attempt,
        firstAttemptAt:
          p.value.attempt.firstAttemptAt ?? new Date(p.message.timestamp || now()).toISOString(),
        notBefore: dueAt.toISOString(),
        lastError: lastError.slice(0, 128),
      },
    };
    return {
      integrationId: p.value.integrationId,
      messageId: p.value.event.messageId,
      attempt,
      dueAt,
      key: eventKey(p.value.event),
      message: JSON.stringify(value),
      lastError,
      replay: p.message.headers[REPLAY_HEADER] === '1',
    };
  }

  return {
    async deliver(
      integrationId: string,
      items: readonly Decoded<DeliveryMessage>[],
      control: BatchControl = {},
    ): Promise<BatchSummary> {
      const { signal } = control;
      const heartbeat = control.heartbeat;
      // A heartbeat that fails (a Kafka coordinator hiccup) must not fail the batch: that would redeliver,
      // and re-send, everything already sent. If the partition is really gone, `signal` aborts.
      const beat =
        heartbeat === undefined
          ? async () => {}
          : async () => {
              try {
                await heartbeat();
              } catch (err) {
                logger.warn(
                  { integrationId, err: { type: err instanceof Error ? err.name : typeof err } },
                  'bus heartbeat failed during a delivery batch',
                );
              }
            };
      const failedAt = (): Date => new Date(now());
      const letters: DlqMessage[] = [];
      const retryRows: RetryEntry[] = [];
      const deliveredRows: { messageId: string; attempts: number }[] = [];
      const counts = {
        delivered: 0,
        alreadyDelivered: 0,
        retried: 0,
        deferred: 0,
        deadLettered: 0,
        dropped: 0,
      };
      let vendor = 'unknown';

      const pending: Pending[] = [];
      const seen = new Set<string>();
      let invalid = 0;
      let erased = 0;
      for (const item of items) {
        if (!item.ok) {
          invalid += 1;
          letters.push(
            deadLetter(item.message, {
              error: 'invalid_message',
              details: item.reason,
              integrationId,
              failedAt: failedAt(),
            }),
          );
          continue;
        }
        // Erased since it was received (its raw event or delivery message was still on the bus, behind a
        // slow vendor): the erasure holds, whatever consent said, and nothing of it goes to the DLQ either
        // (the erasure already cleared the person's dead letters). Counted once the vendor is known. Matched
        // on the event's ids and, where the processor changed them (hashed, stripped), on the digests of the
        // ids it arrived with.
        if (deps.erasures?.erasedBefore(item.value.event, item.value.erasureDigests) === true) {
          erased += 1;
          continue;
        }
        if (item.value.integrationId !== integrationId) {
          invalid += 1;
          letters.push(
            deadLetter(item.message, {
              error: 'wrong_topic',
              details: `a message for ${item.value.integrationId} on the topic of ${integrationId}`,
              integrationId,
              failedAt: failedAt(),
            }),
          );
          continue;
        }
        // A retry re-published next to its original (or a replay) in one batch: handle the pair once.
        if (seen.has(item.value.event.messageId)) continue;
        seen.add(item.value.event.messageId);
        pending.push({ message: item.message, value: item.value });
      }

      const lookup = pending.length === 0 && erased === 0 ? null : await deps.runtimes.lookup(integrationId);
      if (erased > 0) {
        if (lookup !== null) vendor = lookup.ok ? lookup.runtime.vendor : lookup.vendor;
        counts.dropped += erased;
        metrics.skipped('erased', erased);
        metrics.outcome(vendor, 'dropped', erased);
      }
      if (lookup !== null && !lookup.ok) {
        vendor = lookup.vendor;
        for (const p of pending) {
          letters.push(
            deadLetter(p.message, {
              error: lookup.problem,
              details: lookup.details,
              integrationId,
              attempts: p.value.attempt.number - 1,
              failedAt: failedAt(),
            }),
          );
        }
      } else if (lookup !== null) {
        const runtime = lookup.runtime;
        vendor = runtime.vendor;
        const accepted = await deps.ledger.accepted(
          integrationId,
          pending.map((p) => p.value.event.messageId),
        );
        counts.alreadyDelivered = accepted.size;
        if (accepted.size > 0) metrics.skipped('already_delivered', accepted.size);

        const work: { pending: Pending; event: CanonicalEvent }[] = [];
        const deferred: Pending[] = [];
        const ofRecordSeen = new Map<string, Promise<readonly WithdrawableCategory[] | 'unavailable'>>();
        for (const p of pending) {
          if (accepted.has(p.value.event.messageId)) continue;
          const event = p.value.event;
          const arrived = eventConsentState(event);
          // By the visitor the state was stored for: the processor names it when a rule changed the event's id.
          const visitor =
            p.value.consentVisitor !== undefined ? { visitorKey: p.value.consentVisitor } : event.anonymousId;
          const latest: LatestConsent =
            visitor === undefined
              ? { state: arrived, source: arrived === null ? 'none' : 'event' }
              : await resolveLatestConsent(deps.consentStore, event.org, visitor, arrived);
          await beat();
          if ('storeProblem' in latest && latest.storeProblem === 'unavailable') {
            deferred.push(p);
            continue;
          }
          const ofRecord = await userConsentOf(p.value, ofRecordSeen);
          if (p.value.consentSubject !== undefined) await beat();
          if (ofRecord === 'unavailable') {
            deferred.push(p);
            continue;
          }
          const decided =
            ofRecord.length === 0 ? latest : { ...latest, state: applyUserConsent(latest.state, ofRecord) };
          const decision = decideLatest(decided, runtime.consent, { stage: 2 });
          metrics.consentDecision(decision.outcome);
          const shaped = decision.outcome === 'strip' ? stripPersonalData(event) : event;
          if (decision.outcome === 'drop' || shaped === null) {
            counts.dropped += 1;
            metrics.outcome(vendor, 'dropped');
            continue;
          }
          // The vendor sees the consent stage 2 decided on, not the one the event arrived with.
          work.push({
            pending: p,
            event: withStageTwoConsent(shaped, decided.state, decision, runtime.consent),
          });
        }

        const sent = await send(runtime, work, signal, beat);
        for (const p of sent.deferred) deferred.push(p);
        let authFailed = false;
        for (const [p, outcome] of sent.outcomes) {
          const attempt = p.value.attempt.number;
          switch (outcome.kind) {
            case 'delivered':
              deliveredRows.push({ messageId: outcome.messageId, attempts: attempt });
              counts.delivered += 1;
              metrics.outcome(vendor, 'delivered');
              break;
            case 'dropped':
              counts.dropped += 1;
              metrics.outcome(vendor, 'dropped');
              break;
            case 'dead_letter':
              if (p.message.headers[REPLAY_HEADER] === '1' && REPLAY_DROPPED.has(outcome.reason)) {
                counts.dropped += 1;
                metrics.outcome(vendor, 'dropped');
                break;
              }
              if (outcome.reason === 'auth_failed') {
                authFailed = true;
                metrics.authFailure(vendor);
              }
              letters.push(
                deadLetter(p.message, {
                  error: outcome.reason,
                  details: outcome.detail ?? `the vendor refused the event (${outcome.reason})`,
                  integrationId,
                  attempts: attempt,
                  ...(outcome.lastResponse === undefined ? {} : { lastResponse: outcome.lastResponse }),
                  failedAt: failedAt(),
                }),
              );
              counts.deadLettered += 1;
              metrics.outcome(vendor, 'dead_letter');
              break;
            case 'retry': {
              const plan = planRetry(policy, attempt, outcome.retryAfterMs, random);
              if (plan.retry) {
                retryRows.push(retryEntry(p, plan.nextAttempt, plan.delayMs, outcome.reason));
                counts.retried += 1;
                metrics.outcome(vendor, 'retry');
              } else {
                letters.push(
                  deadLetter(p.message, {
                    error: 'retries_exhausted',
                    details: `${attempt} attempts failed; the last with ${outcome.reason}`,
                    integrationId,
                    attempts: attempt,
                    ...(outcome.lastResponse === undefined ? {} : { lastResponse: outcome.lastResponse }),
                    failedAt: failedAt(),
                  }),
                );
                counts.deadLettered += 1;
                metrics.outcome(vendor, 'dead_letter');
              }
              break;
            }
          }
        }
        if (authFailed) deps.runtimes.invalidate(integrationId);
        for (const p of deferred) {
          const delay = Math.max(sent.deferMs, Math.floor(deps.deferMs * (0.5 + random() / 2)));
          retryRows.push(retryEntry(p, p.value.attempt.number, delay, 'deferred'));
          counts.deferred += 1;
          metrics.outcome(vendor, 'retry');
        }
      }
      if (lookup !== null && !lookup.ok) {
        counts.deadLettered += pending.length;
        metrics.outcome(vendor, 'dead_letter', pending.length);
      }
      if (invalid > 0) {
        counts.deadLettered += invalid;
        metrics.outcome(vendor, 'dead_letter', invalid);
      }

      // A dead letter that fails the DLQ schema would make the publish throw and the batch be redelivered
      // (and re-sent) forever: each is brought into the schema first.
      const publishable = letters.map((letter) => {
        const checked = publishableLetter(letter);
        if (checked.repaired.length > 0) {
          logger.warn(
            { integrationId, error: checked.letter.error, repaired: checked.repaired },
            'dead letter repaired to fit the dlq-events schema',
          );
        }
        return checked.letter;
      });
      await beat();
      // Every effect is durable before the handler resolves and the bus commits the batch's offset.
      await Promise.all([
        deps.ledger.record(integrationId, deliveredRows),
        deps.retries.schedule(retryRows),
        publishable.length === 0 ? Promise.resolve() : publishTo(deps.bus, dlq, publishable),
      ]);
      return counts;
    },
    /** The breaker state of an integration (for health and tests). */
    circuitState(integrationId: string) {
      return breakerOf(integrationId).state;
    },
  };
}

export type BatchDeliverer = ReturnType<typeof createBatchDeliverer>;
