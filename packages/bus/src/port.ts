/**
 * The event bus port. The gateway, processor, identity hub and delivery worker depend on this interface only;
 * `createPostgresBus` (embedded PGlite or a PostgreSQL server) and `createKafkaBus` implement it and pass
 * the same contract suite (`test/contract.ts`).
 *
 * Semantics every adapter keeps:
 * - A topic has a fixed number of partitions; a message goes to `murmur2(key) mod partitions` (Kafka's
 *   default partitioner), so one key's messages stay in one partition, in publish order.
 * - `publish` resolves only once the messages are durably written (PostgreSQL COMMIT, Kafka acks=all).
 * - Within a consumer group each partition is consumed by at most one subscription at a time.
 * - An offset is committed only after the handler resolved for the whole batch; a throw, a crash or a lost
 *   partition before that redelivers the batch (at-least-once). Handlers must be idempotent (dedup on the
 *   event's `messageId`).
 */

/** A message to publish. Values are text (JSON on every topic of the catalog). */
export interface OutgoingMessage {
  readonly key: string;
  readonly value: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface ConsumedMessage {
  readonly topic: string;
  readonly partition: number;
  /** Decimal int64, as Kafka reports offsets. */
  readonly offset: string;
  readonly key: string;
  readonly value: string;
  readonly headers: Readonly<Record<string, string>>;
  /** When the bus accepted the message, epoch milliseconds. */
  readonly timestamp: number;
}

/** Where one publish call's messages went: one entry per partition written. */
export interface PublishReceipt {
  readonly topic: string;
  readonly partition: number;
  /** Offset of the first of this call's messages in that partition (decimal int64). */
  readonly baseOffset: string;
  readonly count: number;
}

export interface TopicSpec {
  readonly name: string;
  readonly partitions: number;
  /** Kafka only (the PostgreSQL bus is as durable as its database). Default 3. */
  readonly replicationFactor?: number;
}

/** One partition's slice of messages, in offset order, handed to a handler. */
export interface Batch {
  readonly topic: string;
  readonly partition: number;
  readonly messages: readonly ConsumedMessage[];
  /**
   * Tells the bus the handler is alive. A batch that runs longer than the session timeout without calling
   * it is treated like a dead consumer: its partitions go to another member and its commit is refused.
   */
  heartbeat(): Promise<void>;
  /**
   * Aborted when this consumer lost the partition or `stop`'s deadline passed: whatever the handler does
   * after that will be redelivered elsewhere, so it should wind down.
   */
  readonly signal: AbortSignal;
}

export interface SubscribeOptions {
  /** Consumer group (namespace it with `consumerGroup()` from @signal/events). */
  readonly groupId: string;
  readonly topics: readonly string[];
  /**
   * Processes one batch. Resolving commits the batch; throwing redelivers it after a backoff. Expected
   * failures (invalid message, vendor 4xx) are not throws: dead-letter or drop them and resolve.
   */
  readonly handler: (batch: Batch) => Promise<void>;
  /** Most messages per batch. Default 100. */
  readonly batchSize?: number;
  /** Where a group without a committed offset starts: the earliest retained message (default) or the end. */
  readonly fromBeginning?: boolean;
}

export interface PartitionRef {
  readonly topic: string;
  readonly partition: number;
}

export interface StopOptions {
  /** How long the in-flight batch may take to finish and commit. Default 30 s. */
  readonly deadlineMs?: number;
}

export interface Subscription {
  /** Stops handing out batches after the in-flight one; partitions stay assigned (leases keep renewing). */
  pause(): void;
  resume(): void;
  readonly paused: boolean;
  /** The partitions this subscription currently holds. */
  assignments(): readonly PartitionRef[];
  /**
   * Graceful stop: no new fetches, the in-flight batch finishes and commits (until the deadline), the
   * partitions are released to the rest of the group. Idempotent.
   */
  stop(options?: StopOptions): Promise<void>;
}

/** How one publish call may be stored. */
export interface PublishOptions {
  /**
   * Every message of this call comes from one sender's one request (one HTTP request to the gateway), so
   * the postgres bus may compress each run of same-key messages of it together inside the sealed segment
   * (ADR 0011-compressed-bus-runs). Never set it for a call that gathers several requests' messages: their
   * compressed length would tell a reader of stored sizes how much one request's data resembles another's.
   * Kafka ignores it.
   */
  readonly compressible?: boolean;
}

export interface Bus {
  readonly kind: 'postgres' | 'kafka';
  /**
   * The largest message (`messageBytes`: key, value and headers in UTF-8) one publish can carry; a publish
   * holding a larger one is refused whole with `bus_invalid_message`. Producers check before publishing
   * (`fitsBus`), keeping room for a dead letter (message-size.ts).
   */
  readonly maxMessageBytes: number;
  /** Creates missing topics; existing ones are left as they are (partition counts never change). */
  createTopics(specs: readonly TopicSpec[]): Promise<void>;
  publish(
    topic: string,
    messages: readonly OutgoingMessage[],
    options?: PublishOptions,
  ): Promise<PublishReceipt[]>;
  subscribe(options: SubscribeOptions): Promise<Subscription>;
  /** Stops every subscription (graceful, with the default deadline), flushes pending publishes, disconnects. */
  close(): Promise<void>;
}

/** The slice of a pino-compatible logger the bus uses. It never logs message keys or values. */
export interface BusLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
