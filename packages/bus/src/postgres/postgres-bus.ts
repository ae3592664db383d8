import type { Database } from '@signal/store';
import { z } from 'zod';
import { BusError, describeError } from '../errors';
import { DEAD_LETTER_RESERVE_BYTES, POSTGRES_MAX_MESSAGE_BYTES, refuseOversized } from '../message-size';
import { partitionFor } from '../partitioner';
import type {
  Bus,
  BusLogger,
  OutgoingMessage,
  PublishOptions,
  PublishReceipt,
  SubscribeOptions,
  Subscription,
  TopicSpec,
} from '../port';
import type { BusCrypto, UnreadableListener } from '../sealing';
import { GroupCommitWriter } from './group-commit-writer';
import { PostgresSubscription } from './subscription';
import { checkTopicName, MAX_PARTITIONS, TopicRegistry } from './topic-registry';

const optionsSchema = z
  .object({
    /** Prefix of consumer ids (visible in `bus_members`); letters, digits, `_`, `-`. */
    clientId: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/)
      .default('signal'),
    /** Partitions of a topic created on first use. */
    defaultPartitions: z.int().min(1).max(MAX_PARTITIONS).default(8),
    /** Create unknown topics on publish/subscribe (true) or refuse them with `bus_unknown_topic`. */
    autoCreateTopics: z.boolean().default(true),
    sessionTimeoutMs: z.int().min(100).max(3_600_000).default(30_000),
    heartbeatIntervalMs: z.int().min(10).optional(),
    pollIntervalMs: z.int().min(1).max(60_000).default(100),
    retryBackoffMs: z.int().min(1).default(200),
    maxRetryBackoffMs: z.int().min(1).default(30_000),
    defaultStopDeadlineMs: z.int().min(0).default(30_000),
    maxFlushMessages: z.int().min(1).default(10_000),
    maxSegmentRecords: z.int().min(1).default(1000),
    maxSegmentChars: z
      .int()
      .min(1024)
      .default(1 << 20),
    /**
     * Deflate each segment run of one publish call with one key when it is large enough to pay (ADR
     * 0011-compressed-bus-runs), for publish calls that say they are one request. `BUS_COMPRESS_BATCHES`.
     * Reading handles both either way.
     */
    compressRuns: z.boolean().default(true),
    /**
     * Largest message one publish may carry (`Bus.maxMessageBytes`). The default is the most a segment can
     * seal; a deployment that moves to Kafka later may set Kafka's (`kafkaMaxMessageBytes`) to find out early.
     */
    maxMessageBytes: z
      .int()
      // Above the room producers keep for a dead letter, or nothing at all could be published.
      .min(DEAD_LETTER_RESERVE_BYTES + 1024)
      .max(POSTGRES_MAX_MESSAGE_BYTES)
      .default(POSTGRES_MAX_MESSAGE_BYTES),
  })
  .refine((o) => o.heartbeatIntervalMs === undefined || o.heartbeatIntervalMs * 2 <= o.sessionTimeoutMs, {
    message: 'heartbeatIntervalMs must be at most half of sessionTimeoutMs',
    path: ['heartbeatIntervalMs'],
  });

export type PostgresBusSettings = z.input<typeof optionsSchema>;

export interface PostgresBusOptions extends PostgresBusSettings {
  /** The database the bus tables live in (migrated with `busMigrations`). The bus does not close it. */
  readonly db: Database;
  readonly logger: BusLogger;
  /** Seals every segment (v1 binary form, data class `bus`) and opens it on fetch. Required: PII is in raw events. */
  readonly crypto: BusCrypto;
  /** Called when a fetched segment does not open (its partition halts there); wire it to an error metric. */
  readonly onUnreadable?: UnreadableListener;
}

export interface CompactResult {
  readonly segments: number;
  readonly records: number;
}

export interface PostgresBus extends Bus {
  readonly kind: 'postgres';
  /**
   * Retention: deletes segments older than `retentionMs` whose every record is below the committed offset of
   * every consumer group that subscribed to the partition (a group that never committed holds everything).
   * Segments of partitions no group has subscribed to yet are kept. Run it periodically (the embedded
   * composition root does, e.g. hourly with a 7-day window).
   */
  compact(options: { readonly retentionMs: number }): Promise<CompactResult>;
}

const compactRow = z.object({ segments: z.string(), records: z.string() });

/**
 * The event bus on PostgreSQL: PGlite in embedded mode (one process), or a PostgreSQL server shared by many
 * processes. Same topic/partition/offset/consumer-group contract as Kafka; see `port.ts` and the README.
 */
export function createPostgresBus(options: PostgresBusOptions): PostgresBus {
  const { db, logger, crypto, onUnreadable, ...rest } = options;
  const parsed = optionsSchema.safeParse(rest);
  if (!parsed.success) {
    throw new BusError(
      'bus_invalid_config',
      `invalid postgres bus options: ${z.prettifyError(parsed.error)}`,
    );
  }
  const settings = parsed.data;
  const timings = {
    sessionTimeoutMs: settings.sessionTimeoutMs,
    heartbeatIntervalMs:
      settings.heartbeatIntervalMs ?? Math.max(10, Math.floor(settings.sessionTimeoutMs / 10)),
    pollIntervalMs: settings.pollIntervalMs,
    retryBackoffMs: settings.retryBackoffMs,
    maxRetryBackoffMs: Math.max(settings.retryBackoffMs, settings.maxRetryBackoffMs),
    defaultStopDeadlineMs: settings.defaultStopDeadlineMs,
  };
  const registry = new TopicRegistry(db, settings.autoCreateTopics, settings.defaultPartitions);
  const subscriptions = new Set<PostgresSubscription>();
  let closed = false;

  const writer = new GroupCommitWriter(
    db,
    crypto,
    {
      maxFlushMessages: settings.maxFlushMessages,
      maxSegmentRecords: settings.maxSegmentRecords,
      maxSegmentChars: settings.maxSegmentChars,
      compressRuns: settings.compressRuns,
    },
    logger,
    (topics) => {
      // In-process subscribers hear about new messages at once; other processes find them by polling.
      for (const s of subscriptions) if (s.subscribedTopics.some((t) => topics.has(t))) s.wake();
    },
  );

  function assertOpen(): void {
    if (closed) throw new BusError('bus_closed', 'the bus is closed');
  }

  return {
    kind: 'postgres',
    maxMessageBytes: settings.maxMessageBytes,

    async createTopics(specs: readonly TopicSpec[]): Promise<void> {
      assertOpen();
      for (const spec of specs) {
        const actual = await registry.ensure(spec.name, spec.partitions);
        if (actual !== spec.partitions) {
          logger.warn(
            { topic: spec.name, partitions: actual, requested: spec.partitions },
            'topic exists with a different partition count; keeping it',
          );
        }
      }
    },

    async publish(
      topic: string,
      messages: readonly OutgoingMessage[],
      options?: PublishOptions,
    ): Promise<PublishReceipt[]> {
      assertOpen();
      checkTopicName(topic);
      if (messages.length === 0) return [];
      let partitions: number;
      try {
        partitions = await registry.partitions(topic);
      } catch (err) {
        assertOpen();
        throw err;
      }
      // Closed while the topic was looked up: `close` waits only for what reached the writer, so nothing may
      // reach it now.
      assertOpen();
      const byPartition = new Map<number, OutgoingMessage[]>();
      for (const message of messages) {
        if (typeof message.key !== 'string' || typeof message.value !== 'string') {
          throw new BusError('bus_invalid_message', 'message keys and values must be strings');
        }
        const p = partitionFor(message.key, partitions);
        const list = byPartition.get(p);
        if (list === undefined) byPartition.set(p, [message]);
        else list.push(message);
      }
      refuseOversized(messages, settings.maxMessageBytes);
      return writer.submit({
        topic,
        byPartition,
        count: messages.length,
        compressible: options?.compressible === true,
      });
    },

    async subscribe(subscribeOptions: SubscribeOptions): Promise<Subscription> {
      assertOpen();
      if (subscribeOptions.topics.length === 0) {
        throw new BusError('bus_invalid_argument', 'subscribe needs at least one topic');
      }
      const batchSize = subscribeOptions.batchSize ?? 100;
      if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) {
        throw new BusError('bus_invalid_argument', 'batchSize must be an integer from 1 to 100000');
      }
      if (!/^[A-Za-z0-9._:-]{1,255}$/.test(subscribeOptions.groupId)) {
        throw new BusError('bus_invalid_argument', 'group ids are 1-255 characters of A-Z a-z 0-9 . _ : -');
      }
      // Creates the topics (when allowed) so that their partitions can be leased before the first publish.
      for (const topic of subscribeOptions.topics) await registry.partitions(topic);
      const subscription = new PostgresSubscription(
        db,
        crypto,
        onUnreadable,
        subscribeOptions,
        timings,
        logger,
        settings.clientId,
        (s) => subscriptions.delete(s),
      );
      subscriptions.add(subscription);
      try {
        await subscription.start();
      } catch (err) {
        subscriptions.delete(subscription);
        throw err;
      }
      return subscription;
    },

    async compact({ retentionMs }): Promise<CompactResult> {
      assertOpen();
      if (!Number.isInteger(retentionMs) || retentionMs < 0) {
        throw new BusError('bus_invalid_argument', 'retentionMs must be a non-negative integer');
      }
      const { rows } = await db.query(
        `WITH floor AS (
           SELECT topic, partition, min(COALESCE(committed_offset, 0)) AS committed
           FROM bus_group_partitions GROUP BY topic, partition
         ), gone AS (
           DELETE FROM bus_segments AS s
           USING floor AS f
           WHERE s.topic = f.topic AND s.partition = f.partition
             AND s.base_offset + s.record_count <= f.committed
             AND s.created_at < now() - $1::bigint * interval '1 millisecond'
           RETURNING s.record_count
         )
         SELECT count(*)::text AS segments, COALESCE(sum(record_count), 0)::text AS records FROM gone`,
        [String(retentionMs)],
      );
      const row = compactRow.parse(rows[0]);
      const result = { segments: Number(row.segments), records: Number(row.records) };
      if (result.segments > 0) logger.info({ ...result, retentionMs }, 'bus retention deleted old segments');
      return result;
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      const stops = [...subscriptions].map((s) =>
        s.stop().catch((err: unknown) => {
          logger.warn({ err: describeError(err) }, 'subscription did not stop cleanly');
        }),
      );
      await Promise.all(stops);
      await writer.flushed();
    },
  };
}
