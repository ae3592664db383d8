import {
  type Bus,
  deadLetter,
  publishTo,
  type Subscription,
  subscribeTo,
  type TypedBatch,
} from '@signal/bus';
import type { ConsentStateStore, UserConsentStore } from '@signal/consent';
import { type CanonicalEvent, consumerGroup, type DlqMessage, REPLAY_HEADER, topics } from '@signal/events';
import { type ErasedSubjects, keepErasedSubjectsFresh } from '@signal/identity-hub';
import type { Metrics } from '@signal/telemetry';
import { z } from 'zod';
import { createEventPipeline, type DedupCache, type PositionedEvent } from './event-pipeline';
import { processorMetrics } from './metrics';
import { createDataLayerDirectory } from './org-data-layer/directory';
import type { IntegrationSource, OrgDataLayerSource, ProcessorLogger } from './ports';

export const processorSettingsSchema = z.object({
  /** Consumer group name (namespaced with `consumerGroup`). */
  groupName: z.string().default('event-processor'),
  /** Raw events per batch; one batch's deliveries are published together before the commit. */
  batchSize: z.int().min(1).max(10_000).default(500),
  /** How long a messageId is remembered for deduplication. Default 24 h. */
  dedupWindowMs: z
    .int()
    .min(1000)
    .default(24 * 60 * 60 * 1000),
  /** How long a fetched Org Data Layer config / integration list is used before it is checked again. */
  configRefreshMs: z.int().min(0).default(5_000),
  /** Partitions of a delivery topic created by the processor (Kafka; the postgres bus uses its default). */
  deliveryPartitions: z.int().min(1).max(4096).default(8),
  /** How often the erasure records are re-read (`erasures`). */
  erasureRefreshMs: z.int().min(1).default(5_000),
});
export type ProcessorSettings = z.output<typeof processorSettingsSchema>;

export interface EventProcessorDeps {
  readonly bus: Bus;
  /** Deduplication markers (`setIfAbsent`), shared by every processor instance (Redis in production). */
  readonly dedup: DedupCache;
  /** Latest consent per visitor, written here and read by the delivery worker (stage 2). */
  readonly consentStore: ConsentStateStore;
  readonly dataLayers: OrgDataLayerSource;
  readonly integrations: IntegrationSource;
  readonly namespace: string;
  readonly logger: ProcessorLogger;
  readonly metrics: Metrics;
  readonly settings?: z.input<typeof processorSettingsSchema>;
  /** Key for `pii_rules.hash_algorithm: hmac-sha256` (≥ 32 bytes; derive it from ENCRYPTION_KEY). */
  readonly piiHmacKey?: Uint8Array;
  /**
   * The identity graph's erasure records (`createErasedSubjects`, same database): raw events of a person
   * erased after they were received are dropped before any rule runs. Absent: nothing is dropped for erasure
   * here (the delivery worker checks too).
   */
  readonly erasures?: Pick<
    ErasedSubjects,
    'erasedBefore' | 'erasureDigestsOf' | 'consentSubjectOf' | 'refresh'
  >;
  /**
   * Consents of record (the identity hub's `createConsentOfRecord`, in the database): signed
   * `consent_update` events with a user id are recorded here; the delivery worker applies them at stage 2.
   * Needs `erasures` (the blind-index key names the person); absent: nothing is recorded.
   */
  readonly userConsent?: UserConsentStore;
}

export interface EventProcessor {
  start(): Promise<void>;
  /** Stops intake, lets the in-flight batch finish and commit within the deadline. */
  stop(deadlineMs: number): Promise<void>;
}

/**
 * Consumes `raw-events`, runs the Org Data Layer and each integration's pipeline, and publishes to
 * `delivery-{integration}`; invalid events go to `dlq-events`. The batch's offset is committed only after
 * every publish of the batch (deliveries and dead letters) has been durably accepted: a crash before that
 * redelivers the batch, and the dedup markers recognise their own position so nothing is lost.
 */
export function createEventProcessor(deps: EventProcessorDeps): EventProcessor {
  const settings = processorSettingsSchema.parse(deps.settings ?? {});
  const { bus, logger } = deps;
  const metrics = processorMetrics(deps.metrics);
  const raw = topics.rawEvents(deps.namespace);
  const dlq = topics.dlqEvents(deps.namespace);
  const directory = createDataLayerDirectory({
    dataLayers: deps.dataLayers,
    integrations: deps.integrations,
    refreshMs: settings.configRefreshMs,
    logger,
    metrics,
    ...(deps.piiHmacKey === undefined ? {} : { compile: { hmacKey: deps.piiHmacKey } }),
  });
  const pipeline = createEventPipeline({
    directory,
    dedup: deps.dedup,
    consentStore: deps.consentStore,
    namespace: deps.namespace,
    dedupWindowMs: settings.dedupWindowMs,
    maxMessageBytes: bus.maxMessageBytes,
    metrics,
    logger,
    ...(deps.erasures === undefined ? {} : { erasures: deps.erasures }),
    ...(deps.userConsent === undefined ? {} : { userConsent: deps.userConsent }),
  });
  const knownTopics = new Set<string>();
  let subscription: Subscription | null = null;
  let stopErasureRefresh: (() => void) | null = null;

  async function ensureTopics(names: readonly string[]): Promise<void> {
    const missing = names.filter((n) => !knownTopics.has(n));
    if (missing.length === 0) return;
    await bus.createTopics(missing.map((name) => ({ name, partitions: settings.deliveryPartitions })));
    for (const name of missing) knownTopics.add(name);
  }

  async function handle(batch: TypedBatch<CanonicalEvent>): Promise<void> {
    const started = performance.now();
    const letters: DlqMessage[] = [];
    const events: PositionedEvent[] = [];
    const origin: number[] = [];
    batch.items.forEach((item, index) => {
      if (item.ok) {
        events.push({
          event: item.value,
          position: `${item.message.topic}:${item.message.partition}:${item.message.offset}`,
          replayed: item.message.headers?.[REPLAY_HEADER] === '1',
        });
        origin.push(index);
      } else {
        metrics.event('dead_letter');
        letters.push(
          deadLetter(item.message, {
            error: 'schema_validation_failed',
            details: item.reason,
            failedAt: new Date(),
          }),
        );
      }
    });

    const result = await pipeline.process(events);
    for (const rejection of result.rejections) {
      const index = origin[rejection.index];
      const item = index === undefined ? undefined : batch.items[index];
      if (item === undefined) continue;
      letters.push(
        deadLetter(item.message, {
          error: rejection.error,
          details: rejection.details,
          failedAt: new Date(),
        }),
      );
    }

    await ensureTopics([...result.deliveries.keys()]);
    const publishes: Promise<unknown>[] = [...result.deliveries].map(([topic, messages]) =>
      bus.publish(topic, messages),
    );
    if (letters.length > 0) publishes.push(publishTo(bus, dlq, letters));
    // Every publish must be durable before the handler resolves (and the bus commits the offset).
    await Promise.all(publishes);
    let published = 0;
    for (const messages of result.deliveries.values()) published += messages.length;
    metrics.published(published);
    metrics.batchDuration((performance.now() - started) / 1000);
  }

  return {
    async start() {
      if (subscription !== null) return;
      // Read once before consuming: a failure fails the start rather than process a backlog unfiltered.
      if (deps.erasures !== undefined) {
        stopErasureRefresh = await keepErasedSubjectsFresh(deps.erasures, {
          everyMs: settings.erasureRefreshMs,
          logger,
        });
      }
      subscription = await subscribeTo(bus, {
        groupId: consumerGroup(deps.namespace, settings.groupName),
        topics: [raw],
        batchSize: settings.batchSize,
        handler: handle,
      });
      logger.info({ topic: raw.name }, 'event processor started');
    },
    async stop(deadlineMs) {
      stopErasureRefresh?.();
      stopErasureRefresh = null;
      const current = subscription;
      subscription = null;
      if (current !== null) await current.stop({ deadlineMs });
      logger.info({}, 'event processor stopped');
    },
  };
}
