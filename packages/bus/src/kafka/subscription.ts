import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { BusError, describeError } from '../errors';
import type {
  BusLogger,
  ConsumedMessage,
  PartitionRef,
  StopOptions,
  SubscribeOptions,
  Subscription,
} from '../port';
import {
  type BusCrypto,
  messageContext,
  openPayload,
  type UnreadableListener,
  unreadableReason,
} from '../sealing';
import type { KafkaBusConfig } from './config';

function text(value: Buffer | string | null | undefined): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : value.toString('utf8');
}

function headersOf(message: KafkaMessage): Record<string, string> {
  const out: Record<string, string> = {};
  if (message.headers === undefined) return out;
  for (const [name, raw] of Object.entries(message.headers)) {
    if (raw === undefined) continue;
    out[name] = Array.isArray(raw) ? text(raw[raw.length - 1]) : text(raw);
  }
  return out;
}

function isRebalance(err: unknown): boolean {
  const type = (err as { type?: unknown }).type;
  return (
    type === 'REBALANCE_IN_PROGRESS' ||
    type === 'NOT_COORDINATOR_FOR_GROUP' ||
    type === 'ILLEGAL_GENERATION' ||
    type === 'UNKNOWN_MEMBER_ID'
  );
}

/**
 * A kafkajs consumer with Signal's delivery discipline: `autoCommit: false`, the handler gets at most
 * `batchSize` messages of one partition, and only after it resolves is the last offset resolved and
 * committed (`resolveOffset` + `commitOffsetsIfNecessary` with the explicit offsets: with autoCommit off,
 * kafkajs's argument-less form commits nothing). A handler that throws is retried after a backoff by
 * seeking back to the batch's first offset; a commit refused because of a rebalance (the partition went to
 * another member) drops the rest of the fetched batch, which the new owner reads from the last commit.
 */
export class KafkaSubscription implements Subscription {
  private readonly consumer: Consumer;
  private readonly batchSize: number;
  private assigned: PartitionRef[] = [];
  private pausedFlag = false;
  private stopping = false;
  private abandoned = false;
  private inFlight: AbortController | null = null;
  private stopPromise: Promise<void> | null = null;
  private failures = new Map<string, number>();

  constructor(
    kafka: Kafka,
    private readonly options: SubscribeOptions,
    private readonly config: KafkaBusConfig,
    private readonly logger: BusLogger,
    private readonly sealing: { readonly crypto: BusCrypto; readonly onUnreadable?: UnreadableListener },
    private readonly onStopped: (s: KafkaSubscription) => void,
  ) {
    this.batchSize = options.batchSize ?? 100;
    this.consumer = kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: config.sessionTimeoutMs,
      heartbeatInterval: config.heartbeatIntervalMs,
      rebalanceTimeout: config.rebalanceTimeoutMs,
      allowAutoTopicCreation: false,
    });
    const events = this.consumer.events;
    this.consumer.on(events.GROUP_JOIN, (event) => {
      this.assigned = Object.entries(event.payload.memberAssignment).flatMap(([topic, partitions]) =>
        partitions.map((partition) => ({ topic, partition })),
      );
    });
    this.consumer.on(events.REBALANCING, () => {
      this.assigned = [];
    });
    this.consumer.on(events.CRASH, (event) => {
      this.logger.error(
        { err: describeError(event.payload.error), groupId: options.groupId, restart: event.payload.restart },
        'kafka consumer crashed',
      );
    });
  }

  get paused(): boolean {
    return this.pausedFlag;
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({
      topics: [...this.options.topics],
      fromBeginning: this.options.fromBeginning ?? true,
    });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.eachBatch(payload),
    });
  }

  pause(): void {
    this.pausedFlag = true;
    this.consumer.pause(this.options.topics.map((topic) => ({ topic })));
  }

  resume(): void {
    this.pausedFlag = false;
    this.consumer.resume(this.options.topics.map((topic) => ({ topic })));
  }

  assignments(): readonly PartitionRef[] {
    return this.assigned;
  }

  stop(options: StopOptions = {}): Promise<void> {
    this.stopPromise ??= this.shutdown(options.deadlineMs ?? this.config.defaultStopDeadlineMs);
    return this.stopPromise;
  }

  private async shutdown(deadlineMs: number): Promise<void> {
    this.stopping = true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), deadlineMs);
    });
    // consumer.stop() waits for the running eachBatch, which finishes its chunk and commits it.
    const stopped = await Promise.race([this.consumer.stop().then(() => true as const), deadline]);
    if (!stopped) {
      this.abandoned = true;
      this.inFlight?.abort(new Error('subscription stopped before the batch finished'));
      this.logger.warn(
        { groupId: this.options.groupId, deadlineMs },
        'stop deadline passed with a batch in flight',
      );
    }
    clearTimeout(timer);
    try {
      // Leaves the group at once so the partitions are reassigned without waiting for the session timeout.
      await this.consumer.disconnect();
    } catch (err) {
      this.logger.warn({ err: describeError(err) }, 'kafka consumer did not disconnect cleanly');
    }
    this.assigned = [];
    this.onStopped(this);
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const {
      batch,
      resolveOffset,
      heartbeat,
      commitOffsetsIfNecessary,
      uncommittedOffsets,
      isRunning,
      isStale,
    } = payload;
    const { topic, partition } = batch;
    const key = `${topic}\u0000${partition}`;
    const context = messageContext({ topic, partition });
    for (let i = 0; i < batch.messages.length; i += this.batchSize) {
      if (!isRunning() || isStale() || this.stopping) return;
      const raw = batch.messages.slice(i, i + this.batchSize);
      const first = raw[0];
      if (first === undefined) return;
      if (this.pausedFlag) {
        // Fetched before the pause: re-read from here after resume.
        this.consumer.seek({ topic, partition, offset: first.offset });
        return;
      }
      let chunk: ConsumedMessage[];
      try {
        chunk = raw.map((m) => ({
          topic,
          partition,
          offset: m.offset,
          key: text(m.key),
          value: openPayload(this.sealing.crypto, text(m.value), context),
          headers: headersOf(m),
          timestamp: Number(m.timestamp),
        }));
      } catch (err) {
        if (!(err instanceof BusError)) throw err;
        // A value that does not open halts the partition here (nothing skipped, nothing committed past
        // it) and is re-read after the backoff: a missing key can be put back.
        const failures = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, failures);
        const reason = unreadableReason(err);
        this.logger.error(
          { groupId: this.options.groupId, topic, partition, offset: first.offset, reason, failures },
          'bus message cannot be opened; the partition is halted there and retried',
        );
        this.sealing.onUnreadable?.({ topic, partition, reason });
        const delay = Math.min(
          this.config.maxRetryBackoffMs,
          this.config.retryBackoffMs * 2 ** (failures - 1),
        );
        await this.backoff(delay * (0.5 + Math.random() / 2), heartbeat);
        if (isRunning() && !isStale()) this.consumer.seek({ topic, partition, offset: first.offset });
        return;
      }
      const last = chunk[chunk.length - 1];
      if (last === undefined) return;
      const controller = new AbortController();
      this.inFlight = controller;
      try {
        await this.options.handler({
          topic,
          partition,
          messages: chunk,
          signal: controller.signal,
          heartbeat: async () => {
            try {
              await heartbeat();
            } catch (err) {
              if (!isRebalance(err)) throw err;
              controller.abort(new Error('partition is being reassigned'));
            }
          },
        });
      } catch (err) {
        const failures = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, failures);
        const delay = Math.min(
          this.config.maxRetryBackoffMs,
          this.config.retryBackoffMs * 2 ** (failures - 1),
        );
        this.logger.error(
          { err: describeError(err), groupId: this.options.groupId, topic, partition, failures },
          'bus handler failed; the batch will be redelivered',
        );
        await this.backoff(delay * (0.5 + Math.random() / 2), heartbeat);
        if (isRunning() && !isStale()) this.consumer.seek({ topic, partition, offset: first.offset });
        return;
      } finally {
        this.inFlight = null;
      }
      this.failures.delete(key);
      if (this.abandoned) return;
      resolveOffset(last.offset);
      try {
        await commitOffsetsIfNecessary(uncommittedOffsets());
        await heartbeat();
      } catch (err) {
        if (!isRebalance(err)) throw err;
        this.logger.warn(
          { groupId: this.options.groupId, topic, partition },
          'commit refused: the group is rebalancing; the new owner resumes from the last commit',
        );
        return;
      }
    }
  }

  /** Waits `ms` while keeping the session alive. */
  private async backoff(ms: number, heartbeat: () => Promise<void>): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until && !this.stopping) {
      await new Promise((resolve) =>
        setTimeout(resolve, Math.min(this.config.heartbeatIntervalMs, until - Date.now())),
      );
      try {
        await heartbeat();
      } catch (err) {
        if (isRebalance(err)) return;
        throw err;
      }
    }
  }
}
