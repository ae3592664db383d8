import { createHash } from 'node:crypto';
import { type Bus, fitsBus, type Subscription, subscribeTo, type TypedBatch } from '@signal/bus';
import type { ConsentStateStore, UserConsentStore } from '@signal/consent';
import { consumerGroup, type DeliveryMessage, type DlqMessage, topics } from '@signal/events';
import { createVendorDispatcherRegistry, type VendorDispatcherRegistry } from '@signal/http';
import { type ErasedSubjects, keepErasedSubjectsFresh } from '@signal/identity-hub';
import { type Database, isStoreError } from '@signal/store';
import type { Metrics } from '@signal/telemetry';
import { z } from 'zod';
import { cachedCredentialSource } from './credentials/cached-credential-source';
import type { BackoffPolicy } from './delivery/backoff';
import { createBatchDeliverer } from './delivery/batch-deliverer';
import { createRuntimeDirectory } from './delivery/integration-runtime';
import { createDlqStore } from './dlq/dlq-store';
import type { DlqCrypto } from './dlq/encrypted-columns';
import { REPLAY_HEADER } from './dlq/replay';
import { createDeliveryLedger } from './ledger/delivery-ledger';
import { workerMetrics } from './metrics';
import type { CredentialSource, WorkerIntegrationSource, WorkerLogger } from './ports';
import { createRetryStore } from './retry/retry-store';

const DAY_MS = 24 * 60 * 60 * 1000;

export const workerSettingsSchema = z.object({
  /** Prefix of the per-integration consumer groups (`delivery-worker-<integrationId>`). */
  groupName: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/)
    .default('delivery-worker'),
  dlqIndexGroupName: z.string().default('delivery-worker-dlq-index'),
  batchSize: z.int().min(1).max(10_000).default(100),
  /** RETRY_MAX_ATTEMPTS: attempts in total, the first included. */
  retryMaxAttempts: z.int().min(1).max(50).default(5),
  /** RETRY_BACKOFF_BASE in ms: cap of the first retry delay. */
  retryBackoffBaseMs: z.int().min(1).default(60_000),
  retryBackoffFactor: z.number().min(1).max(100).default(11),
  /** All retry delays' caps add up to at most this. */
  retryMaxSpanMs: z.int().min(1).default(DAY_MS),
  retryMaxRetryAfterMs: z.int().min(0).default(DAY_MS),
  /** RATE_LIMIT_PER_SECOND, per integration and worker process. */
  rateLimitPerSecond: z.number().positive().default(100),
  breakerFailureThreshold: z.int().min(1).default(5),
  breakerOpenMs: z.int().min(1).default(30_000),
  breakerMaxOpenMs: z.int().min(1).default(300_000),
  requestTimeoutMs: z.int().min(1).default(10_000),
  /**
   * DELIVERY_ALLOWED_PRIVATE_CIDRS: private or reserved addresses deliveries may connect to. Every other one
   * is refused (@signal/http destination-guard.ts): integrations are edited by tenants' editors, whose
   * endpoint must not reach the deployment's own network. A refused delivery is dead-lettered
   * (`ERR_DESTINATION_NOT_ALLOWED`), never retried.
   */
  allowedPrivateDestinations: z.array(z.string()).readonly().default([]),
  /**
   * Longest a batch handler goes without `Batch.heartbeat()` while it waits (for a batch slot, on the rate
   * limiter); it also beats after every vendor request. Keep it well under the bus session timeout.
   */
  heartbeatIntervalMs: z.int().min(10).max(60_000).default(1_000),
  /** Delay for events deferred without using an attempt (circuit open, consent store unavailable, shutdown). */
  deferMs: z.int().min(1).default(30_000),
  /** Batches delivered at once across all integrations. */
  maxConcurrentBatches: z.int().min(1).max(1024).default(16),
  /** Consumers per delivery topic in this process (its partitions are shared among them). */
  consumersPerIntegration: z.int().min(1).max(64).default(1),
  /** How often the integration list (topics to consume) and each integration's settings are re-read. */
  integrationRefreshMs: z.int().min(1).default(30_000),
  /** How long decrypted credentials stay in memory. */
  credentialsTtlMs: z.int().min(0).default(60_000),
  retryPollMs: z.int().min(1).default(1_000),
  retryClaimLimit: z.int().min(1).default(500),
  retryLeaseMs: z.int().min(1).default(60_000),
  topicPartitions: z.int().min(1).max(4096).default(8),
  /** How long ledger entries are kept (a replay older than this could re-send). */
  ledgerRetentionMs: z
    .int()
    .min(1)
    .default(30 * DAY_MS),
  /** Ledger pruning and gauge refresh. */
  maintenanceIntervalMs: z.int().min(1).default(10_000),
  /**
   * How often the erasure records are re-read (`erasures`): an erasure reaches events still on the bus at
   * most this long after it was recorded (its dead letters and retries are deleted at once).
   */
  erasureRefreshMs: z.int().min(1).default(5_000),
});
export type WorkerSettings = z.output<typeof workerSettingsSchema>;

export interface DeliveryWorkerDeps {
  readonly bus: Bus;
  /** Holds the ledger, retry schedule and DLQ index (`deliveryWorkerMigrations`). */
  readonly db: Database;
  readonly consentStore: ConsentStateStore;
  /**
   * Consents of record, written by the event processor from signed `consent_update` events: withdrawals of
   * record veto their categories for every event of the person (`DeliveryMessage.consentSubject`).
   */
  readonly userConsent?: UserConsentStore;
  readonly integrations: WorkerIntegrationSource;
  readonly credentials: CredentialSource;
  /** Strict-TLS dispatchers; one is created (and closed on stop) when absent. */
  readonly dispatchers?: VendorDispatcherRegistry;
  readonly namespace: string;
  /**
   * Seals the personal data of dead letters in the DLQ index (`delivery_dlq.letter`, data class `bus`) and of
   * scheduled retries (`delivery_retries.payload`), and opens them for replay and re-publishing: the process's
   * crypto service, the one its bus seals with.
   */
  readonly crypto: DlqCrypto;
  readonly logger: WorkerLogger;
  readonly metrics: Metrics;
  readonly settings?: z.input<typeof workerSettingsSchema>;
  /**
   * The identity graph's erasure records (`createErasedSubjects`, in the same database): an erased person's
   * events received before the erasure are dropped instead of sent. Absent: no identity hub shares the
   * database, and nothing is dropped for erasure.
   */
  readonly erasures?: Pick<ErasedSubjects, 'erasedBefore' | 'refresh'>;
}

export interface DeliveryWorker {
  start(): Promise<void>;
  /** Stops intake (consumers, retry scheduler), lets in-flight batches finish within the deadline. */
  stop(deadlineMs: number): Promise<void>;
  /** Re-reads the integration list now and (un)subscribes topics accordingly. */
  refreshTopics(): Promise<void>;
}

class Semaphore {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(size: number) {
    this.#free = size;
  }
  /** Runs `task` once a slot is free, calling `whileWaiting` every `intervalMs` until then. */
  async run<T>(
    task: () => Promise<T>,
    whileWaiting?: { readonly intervalMs: number; readonly beat: () => void },
  ): Promise<T> {
    if (this.#free > 0) this.#free -= 1;
    else {
      const timer =
        whileWaiting === undefined ? undefined : setInterval(whileWaiting.beat, whileWaiting.intervalMs);
      try {
        await new Promise<void>((resolve) => this.#waiting.push(resolve));
      } finally {
        clearInterval(timer);
      }
    }
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next === undefined) this.#free += 1;
      else next();
    }
  }
}

/**
 * A deterministic refusal of a value (SQLSTATE class 22 data exception, 23 integrity violation): the same
 * letter is refused on every retry. Anything else (database unreachable, missing table) is a condition of the
 * database, and the batch is redelivered until it clears.
 */
function refusedValue(err: unknown): boolean {
  if (!isStoreError(err) || err.retryable || err.sqlState === undefined) return false;
  return err.sqlState.startsWith('22') || err.sqlState.startsWith('23');
}

function describe(err: unknown): { type: string; code?: string; message: string } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string'
      ? { type: err.name, code, message: err.message }
      : { type: err.name, message: err.message };
  }
  return { type: typeof err, message: 'non-error thrown' };
}

/**
 * The delivery worker: one consumer (or `consumersPerIntegration`) per `delivery-{integration}` topic, so a
 * slow or failing vendor only ever holds its own partitions, with at most `maxConcurrentBatches` batches in
 * flight overall; a retry scheduler re-publishing due retries; a DLQ indexer over `dlq-events`.
 */
export function createDeliveryWorker(deps: DeliveryWorkerDeps): DeliveryWorker {
  const settings = workerSettingsSchema.parse(deps.settings ?? {});
  const { bus, db, logger, namespace } = deps;
  const metrics = workerMetrics(deps.metrics);
  const ownDispatchers = deps.dispatchers === undefined;
  const dispatchers =
    deps.dispatchers ??
    createVendorDispatcherRegistry({
      headersTimeoutMs: settings.requestTimeoutMs,
      privateDestinations: { allow: settings.allowedPrivateDestinations },
    });
  const credentials = cachedCredentialSource(deps.credentials, { ttlMs: settings.credentialsTtlMs });
  const runtimes = createRuntimeDirectory({
    integrations: deps.integrations,
    credentials,
    dispatchers,
    // A runtime holds the decrypted credentials: kept no longer than they may be (credentialsTtlMs).
    refreshMs: Math.max(1, Math.min(settings.integrationRefreshMs, settings.credentialsTtlMs)),
    logger,
  });
  const ledger = createDeliveryLedger(db);
  const retries = createRetryStore(db, deps.crypto);
  const dlqStore = createDlqStore(db, deps.crypto);
  const policy: BackoffPolicy = {
    maxAttempts: settings.retryMaxAttempts,
    baseMs: settings.retryBackoffBaseMs,
    factor: settings.retryBackoffFactor,
    maxSpanMs: settings.retryMaxSpanMs,
    maxRetryAfterMs: settings.retryMaxRetryAfterMs,
  };
  const subscriptions = new Map<string, Subscription[]>();
  const resumeTimers = new Map<string, NodeJS.Timeout>();
  const semaphore = new Semaphore(settings.maxConcurrentBatches);
  let dlqSubscription: Subscription | null = null;
  let running = false;
  let refreshTimer: NodeJS.Timeout | null = null;
  let maintenanceTimer: NodeJS.Timeout | null = null;
  let stopErasureRefresh: (() => void) | null = null;
  let retryLoop: Promise<void> = Promise.resolve();
  let wakeRetryLoop: (() => void) | null = null;
  let refreshing: Promise<void> = Promise.resolve();

  const deliverer = createBatchDeliverer({
    runtimes,
    ledger,
    retries,
    consentStore: deps.consentStore,
    ...(deps.userConsent === undefined ? {} : { userConsent: deps.userConsent }),
    ...(deps.erasures === undefined ? {} : { erasures: deps.erasures }),
    bus,
    namespace,
    policy,
    rateLimitPerSecond: settings.rateLimitPerSecond,
    breaker: {
      failureThreshold: settings.breakerFailureThreshold,
      openMs: settings.breakerOpenMs,
      maxOpenMs: settings.breakerMaxOpenMs,
    },
    requestTimeoutMs: settings.requestTimeoutMs,
    deferMs: settings.deferMs,
    metrics,
    logger,
    onCircuitOpen: (integrationId, retryInMs) => pauseFor(integrationId, retryInMs),
    heartbeatIntervalMs: settings.heartbeatIntervalMs,
  });

  /** An open circuit pauses the integration's consumers until the half-open probe is due. */
  function pauseFor(integrationId: string, ms: number): void {
    const subs = subscriptions.get(integrationId) ?? [];
    for (const s of subs) s.pause();
    clearTimeout(resumeTimers.get(integrationId));
    const timer = setTimeout(() => {
      resumeTimers.delete(integrationId);
      for (const s of subscriptions.get(integrationId) ?? []) s.resume();
    }, ms);
    timer.unref();
    resumeTimers.set(integrationId, timer);
  }

  /**
   * Tells the bus the batch is alive. Without it a batch that outlasts the bus session timeout (slow vendor,
   * low rate limit, a long wait for a slot) loses its partition and another member sends it again.
   */
  function heartbeatOf(batch: TypedBatch<unknown>): () => Promise<void> {
    return async () => {
      try {
        await batch.heartbeat();
      } catch (err) {
        logger.warn({ err: describe(err), partition: batch.partition }, 'bus heartbeat failed');
      }
    };
  }

  async function handle(integrationId: string, batch: TypedBatch<DeliveryMessage>): Promise<void> {
    const heartbeat = heartbeatOf(batch);
    await semaphore.run(
      async () => {
        await heartbeat();
        const summary = await deliverer.deliver(integrationId, batch.items, {
          signal: batch.signal,
          heartbeat,
        });
        logger.debug({ integrationId, partition: batch.partition, ...summary }, 'delivery batch done');
      },
      { intervalMs: settings.heartbeatIntervalMs, beat: () => void heartbeat() },
    );
  }

  /**
   * One consumer group per integration: each topic's partitions are balanced among its own consumers only
   * (and a group's lag is one integration's backlog).
   */
  function groupFor(integrationId: string): string {
    const name = `${settings.groupName}-${integrationId}`;
    return consumerGroup(
      namespace,
      name.length <= 128
        ? name
        : `${settings.groupName}-${createHash('sha256').update(integrationId).digest('hex').slice(0, 40)}`,
    );
  }

  async function subscribeIntegration(integrationId: string): Promise<void> {
    const topic = topics.delivery(namespace, integrationId);
    await bus.createTopics([{ name: topic.name, partitions: settings.topicPartitions }]);
    const subs: Subscription[] = [];
    for (let i = 0; i < settings.consumersPerIntegration; i += 1) {
      subs.push(
        await subscribeTo(bus, {
          groupId: groupFor(integrationId),
          topics: [topic],
          batchSize: settings.batchSize,
          handler: (batch) => handle(integrationId, batch),
        }),
      );
    }
    subscriptions.set(integrationId, subs);
    logger.info({ integrationId, topic: topic.name }, 'consuming delivery topic');
  }

  async function doRefresh(): Promise<void> {
    const ids = new Set(await deps.integrations.listIntegrationIds());
    for (const id of ids) {
      if (!running) return;
      if (!subscriptions.has(id)) await subscribeIntegration(id);
    }
    for (const [id, subs] of subscriptions) {
      if (ids.has(id)) continue;
      subscriptions.delete(id);
      await Promise.all(subs.map((s) => s.stop()));
      // Its runtime and decrypted credentials go with it.
      runtimes.invalidate(id);
      logger.info({ integrationId: id }, 'stopped consuming delivery topic of a removed integration');
    }
  }

  function refreshTopics(): Promise<void> {
    refreshing = refreshing.then(doRefresh).catch((err: unknown) => {
      logger.warn({ err: describe(err) }, 'could not refresh the integration list');
    });
    return refreshing;
  }

  async function runRetryLoop(): Promise<void> {
    while (running) {
      let claimed = 0;
      try {
        const { due, unreadable } = await retries.claimDue(settings.retryClaimLimit, settings.retryLeaseMs);
        claimed = due.length + unreadable.length;
        if (unreadable.length > 0) {
          // Left scheduled (never dropped): once the key is back they go out. Ids and the crypto code only.
          metrics.retryUnreadable(unreadable.length);
          for (const u of unreadable) {
            logger.error(
              {
                integrationId: u.integrationId,
                messageId: u.messageId,
                attempt: u.attempt,
                reason: u.reason,
              },
              'a scheduled retry cannot be opened with the keys this process holds; it stays scheduled and is tried again after its lease',
            );
          }
        }
        const byTopic = new Map<string, typeof due>();
        for (const entry of due) {
          const name = topics.delivery(namespace, entry.integrationId).name;
          const list = byTopic.get(name);
          if (list === undefined) byTopic.set(name, [entry]);
          else list.push(entry);
        }
        for (const [name, claimedEntries] of byTopic) {
          // A replay's retry stays a replay (its age-window refusal is a drop, see batch-deliverer).
          const outgoing = claimedEntries.map((e) => ({
            entry: e,
            message:
              e.replay === true
                ? { key: e.key, value: e.message, headers: { [REPLAY_HEADER]: '1' } }
                : { key: e.key, value: e.message },
          }));
          // A retry over the bus's limit (scheduled on a bus that allowed more) would fail this topic's
          // publish on every pass: it stays scheduled, never dropped, and says so, for the operator to raise
          // the limit or move it.
          const sendable = outgoing.filter(({ entry, message }) => {
            if (fitsBus(message, bus.maxMessageBytes, 0)) return true;
            logger.error(
              { integrationId: entry.integrationId, messageId: entry.messageId, attempt: entry.attempt },
              "a scheduled retry is over the bus's message size limit; it stays scheduled",
            );
            return false;
          });
          if (sendable.length === 0) continue;
          await bus.publish(
            name,
            sendable.map((o) => o.message),
          );
          await retries.complete(sendable.map((o) => o.entry));
        }
      } catch (err) {
        logger.warn(
          { err: describe(err) },
          'retry scheduler pass failed; claimed retries go out after their lease',
        );
      }
      if (claimed < settings.retryClaimLimit && running) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, settings.retryPollMs);
          wakeRetryLoop = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wakeRetryLoop = null;
      }
    }
  }

  async function maintain(): Promise<void> {
    runtimes.sweep();
    try {
      metrics.dlqDepth(await dlqStore.depth());
      metrics.retriesPending(await retries.pending());
      await ledger.prune(settings.ledgerRetentionMs);
    } catch (err) {
      logger.warn({ err: describe(err) }, 'delivery worker maintenance failed');
    }
  }

  async function indexDeadLetters(batch: TypedBatch<DlqMessage>): Promise<void> {
    const letters = [];
    for (const item of batch.items) {
      if (item.ok) {
        letters.push({ partition: item.message.partition, offset: item.message.offset, letter: item.value });
      } else {
        logger.error(
          { topic: item.message.topic, partition: item.message.partition, offset: item.message.offset },
          'a dlq-events message does not match the dead-letter schema; not indexed',
        );
      }
    }
    try {
      await dlqStore.index(letters);
    } catch (err) {
      if (!refusedValue(err)) throw err;
      // The database refused a value of one of them: index them one by one, so that letter cannot hold back
      // every later dead letter of the partition (the batch would be redelivered, and refused, forever).
      const heartbeat = heartbeatOf(batch);
      for (const letter of letters) {
        try {
          await dlqStore.index([letter]);
        } catch (one) {
          if (!refusedValue(one)) throw one;
          metrics.dlqUnindexed();
          logger.error(
            {
              partition: letter.partition,
              offset: letter.offset,
              sqlState: isStoreError(one) ? one.sqlState : undefined,
            },
            'a dead letter cannot be indexed; it stays on dlq-events at this position (not listable or replayable)',
          );
        }
        await heartbeat();
      }
    }
    metrics.dlqDepth(await dlqStore.depth());
  }

  return {
    refreshTopics,
    async start() {
      if (running) return;
      running = true;
      // Rows indexed before delivery-worker/0003 hold their letter as plaintext: seal them before anything
      // else, so no plaintext outlives the first start of this release.
      const sealed = await dlqStore.sealLegacy();
      if (sealed > 0) logger.info({ sealed }, 'sealed dead letters indexed before encryption at rest');
      // Likewise retries scheduled before delivery-worker/0004, before the retry scheduler re-publishes them.
      const sealedRetries = await retries.sealLegacy();
      if (sealedRetries > 0) {
        logger.info({ sealed: sealedRetries }, 'sealed retries scheduled before encryption at rest');
      }
      const dlq = topics.dlqEvents(namespace);
      await bus.createTopics([{ name: dlq.name, partitions: settings.topicPartitions }]);
      dlqSubscription = await subscribeTo(bus, {
        groupId: consumerGroup(namespace, settings.dlqIndexGroupName),
        topics: [dlq],
        batchSize: 500,
        handler: indexDeadLetters,
      });
      // Before consuming: a backlog of an erased person's events must meet the erasure records. A first read
      // that fails fails the start (as the ledger's would), rather than consume with nothing known as erased.
      if (deps.erasures !== undefined) {
        stopErasureRefresh = await keepErasedSubjectsFresh(deps.erasures, {
          everyMs: settings.erasureRefreshMs,
          logger,
        });
      }
      await doRefresh();
      refreshTimer = setInterval(() => void refreshTopics(), settings.integrationRefreshMs);
      refreshTimer.unref();
      maintenanceTimer = setInterval(() => void maintain(), settings.maintenanceIntervalMs);
      maintenanceTimer.unref();
      retryLoop = runRetryLoop();
      void maintain();
      logger.info({ integrations: subscriptions.size }, 'delivery worker started');
    },
    async stop(deadlineMs) {
      if (!running) return;
      running = false;
      if (refreshTimer !== null) clearInterval(refreshTimer);
      if (maintenanceTimer !== null) clearInterval(maintenanceTimer);
      stopErasureRefresh?.();
      stopErasureRefresh = null;
      for (const timer of resumeTimers.values()) clearTimeout(timer);
      resumeTimers.clear();
      wakeRetryLoop?.();
      await refreshing;
      const all = [...subscriptions.values()].flat();
      subscriptions.clear();
      if (dlqSubscription !== null) all.push(dlqSubscription);
      dlqSubscription = null;
      await Promise.all([...all.map((s) => s.stop({ deadlineMs })), retryLoop]);
      runtimes.clear();
      if (ownDispatchers) await dispatchers.close();
      logger.info({}, 'delivery worker stopped');
    },
  };
}
