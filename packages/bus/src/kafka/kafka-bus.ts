import { type Admin, Kafka, type logCreator, logLevel, type Producer } from 'kafkajs';
import { BusError, describeError } from '../errors';
import { kafkaMaxMessageBytes, refuseOversized } from '../message-size';
import { partitionFor } from '../partitioner';
import type {
  Bus,
  BusLogger,
  OutgoingMessage,
  PublishReceipt,
  SubscribeOptions,
  Subscription,
  TopicSpec,
} from '../port';
import { type BusCrypto, messageContext, type UnreadableListener } from '../sealing';
import { chunkRecords, mergeReceipts, type SealedRecord } from './chunks';
import {
  type KafkaBusConfig,
  type KafkaBusConfigInput,
  parseKafkaBusConfig,
  toKafkaJsConfig,
} from './config';
import { KafkaSubscription } from './subscription';
import { reconcileTopics, type TopicOutcome } from './topics';

/** Routes kafkajs's own log lines to the injected logger (they carry broker addresses, never payloads). */
function kafkaLogCreator(logger: BusLogger): logCreator {
  return () =>
    ({ namespace, level, log }) => {
      const { message, timestamp: _timestamp, ...extra } = log;
      const obj = { kafkajs: namespace, ...extra };
      if (level === logLevel.ERROR) logger.error(obj, message);
      else if (level === logLevel.WARN) logger.warn(obj, message);
      else if (level === logLevel.INFO) logger.info(obj, message);
      else logger.debug(obj, message);
    };
}

function createClient(config: KafkaBusConfig, logger: BusLogger): Kafka {
  return new Kafka({
    ...toKafkaJsConfig(config),
    logLevel: logLevel.INFO,
    logCreator: kafkaLogCreator(logger),
  });
}

async function createTopicsWith(
  admin: Admin,
  specs: readonly TopicSpec[],
  config: KafkaBusConfig,
): Promise<void> {
  if (specs.length === 0) return;
  await admin.createTopics({
    waitForLeaders: true,
    topics: specs.map((s) => ({
      topic: s.name,
      numPartitions: s.partitions,
      replicationFactor: s.replicationFactor ?? config.defaultReplicationFactor,
    })),
  });
}

/**
 * Creates the topics that are missing on a Kafka cluster and reports on the others (idempotent: an existing
 * topic is never changed; one with another partition count is reported, not altered) — the implementation of
 * `signal-cli kafka topics create`. Opens and closes its own admin connection.
 */
export async function ensureKafkaTopics(
  input: KafkaBusConfigInput,
  specs: readonly TopicSpec[],
  logger: BusLogger,
): Promise<TopicOutcome[]> {
  const config = parseKafkaBusConfig(input);
  const admin = createClient(config, logger).admin();
  try {
    await admin.connect();
    const names = new Set(await admin.listTopics());
    const present = specs.map((s) => s.name).filter((name) => names.has(name));
    const existing = new Map<string, number>();
    if (present.length > 0) {
      const { topics } = await admin.fetchTopicMetadata({ topics: [...new Set(present)] });
      for (const topic of topics) existing.set(topic.name, topic.partitions.length);
    }
    const plan = reconcileTopics(specs, existing);
    await createTopicsWith(admin, plan.create, config);
    return [...plan.outcomes];
  } finally {
    await admin.disconnect();
  }
}

export interface KafkaBus extends Bus {
  readonly kind: 'kafka';
}

/**
 * The event bus on Kafka via kafkajs. Producer: `acks: -1` (all in-sync replicas), Java-compatible murmur2
 * partitioning (explicit partitions, so receipts are exact), one request in flight per connection. Order per
 * key holds within one publish call and between calls that follow each other (a publish resolves only once
 * acknowledged); two calls in flight at the same time have no order between them, since kafkajs retries each
 * send on its own and a later call can land between a failed send and its retry. kafkajs's idempotent
 * producer is experimental and is *not* enabled: a retried send can duplicate a message, and consumers dedup
 * on the event's `messageId` (ARCHITECTURE §6). Connections are opened lazily on first use.
 */
export interface KafkaBusDeps {
  readonly logger: BusLogger;
  /** Seals every message value (v1 text form, data class `bus`, bound to topic and partition). */
  readonly crypto: BusCrypto;
  /** Called when a consumed value does not open (its partition halts there); wire it to an error metric. */
  readonly onUnreadable?: UnreadableListener;
}

export function createKafkaBus(input: KafkaBusConfigInput, deps: KafkaBusDeps): KafkaBus {
  const config = parseKafkaBusConfig(input);
  const { logger, crypto } = deps;
  const kafka = createClient(config, logger);
  const producer: Producer = kafka.producer({
    allowAutoTopicCreation: false,
    idempotent: false,
    maxInFlightRequests: 1,
  });
  const admin = kafka.admin();
  let producerReady: Promise<void> | null = null;
  let adminReady: Promise<void> | null = null;
  const partitionCounts = new Map<string, number>();
  const subscriptions = new Set<KafkaSubscription>();
  let closed = false;

  const connectProducer = (): Promise<void> => {
    producerReady ??= producer.connect().catch((err: unknown) => {
      producerReady = null;
      throw err;
    });
    return producerReady;
  };
  const connectAdmin = (): Promise<void> => {
    adminReady ??= admin.connect().catch((err: unknown) => {
      adminReady = null;
      throw err;
    });
    return adminReady;
  };

  async function partitionsOf(topic: string): Promise<number> {
    const known = partitionCounts.get(topic);
    if (known !== undefined) return known;
    await connectAdmin();
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    const count = topics.find((t) => t.name === topic)?.partitions.length ?? 0;
    if (count === 0) throw new BusError('bus_unknown_topic', `topic ${topic} does not exist`);
    partitionCounts.set(topic, count);
    return count;
  }

  function assertOpen(): void {
    if (closed) throw new BusError('bus_closed', 'the bus is closed');
  }

  const maxMessageBytes = kafkaMaxMessageBytes(config.maxRequestBytes);

  return {
    kind: 'kafka',
    maxMessageBytes,

    async createTopics(specs: readonly TopicSpec[]): Promise<void> {
      assertOpen();
      await connectAdmin();
      await createTopicsWith(admin, specs, config);
    },

    // PublishOptions.compressible is for the postgres bus's segments; Kafka values are sealed one by one.
    async publish(topic: string, messages: readonly OutgoingMessage[]): Promise<PublishReceipt[]> {
      assertOpen();
      if (messages.length === 0) return [];
      refuseOversized(messages, maxMessageBytes);
      try {
        const partitions = await partitionsOf(topic);
        await connectProducer();
        const records: SealedRecord[] = messages.map((m) => {
          const partition = partitionFor(m.key, partitions);
          return {
            key: m.key,
            // Brokers keep their log on disk: the value is sealed, bound to where it goes.
            value: crypto.sealText(m.value, messageContext({ topic, partition })),
            partition,
            ...(m.headers === undefined ? {} : { headers: { ...m.headers } }),
          };
        });
        // One produce request per chunk, each acknowledged before the next (every key keeps its order).
        const receipts: PublishReceipt[][] = [];
        for (const chunk of chunkRecords(records, config.maxRequestBytes)) {
          const metadata = await producer.send({
            topic,
            acks: -1,
            timeout: config.publishTimeoutMs,
            messages: chunk.map((r) => ({ ...r })),
          });
          receipts.push(
            metadata.map((r) => ({
              topic: r.topicName,
              partition: r.partition,
              baseOffset: r.baseOffset ?? r.offset ?? '0',
              count: chunk.filter((m) => m.partition === r.partition).length,
            })),
          );
        }
        return mergeReceipts(receipts);
      } catch (err) {
        if (err instanceof BusError) throw err;
        logger.error({ err: describeError(err), topic }, 'kafka publish failed');
        throw new BusError('bus_publish_failed', 'Kafka did not acknowledge the messages (acks=all)', {
          cause: err,
        });
      }
    },

    async subscribe(options: SubscribeOptions): Promise<Subscription> {
      assertOpen();
      if (options.topics.length === 0)
        throw new BusError('bus_invalid_argument', 'subscribe needs at least one topic');
      const batchSize = options.batchSize ?? 100;
      if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) {
        throw new BusError('bus_invalid_argument', 'batchSize must be an integer from 1 to 100000');
      }
      const subscription = new KafkaSubscription(kafka, options, config, logger, deps, (s) =>
        subscriptions.delete(s),
      );
      subscriptions.add(subscription);
      try {
        await subscription.start();
      } catch (err) {
        subscriptions.delete(subscription);
        await subscription.stop({ deadlineMs: 0 });
        throw err;
      }
      return subscription;
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await Promise.all([...subscriptions].map((s) => s.stop()));
      if (producerReady !== null) await producer.disconnect();
      if (adminReady !== null) await admin.disconnect();
    },
  };
}
