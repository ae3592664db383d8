import { auditMigrations } from '@signal/audit';
import { busMigrations } from '@signal/bus';
import type { SignalConfig } from '@signal/config';
import { createCacheConsentStateStore } from '@signal/consent';
import { controlPlaneMigrations, createControlPlane } from '@signal/control-plane';
import { type Lifecycle, openServiceHost } from '@signal/runtime';
import type { Migration } from '@signal/store';
import type { Logger, Metrics } from '@signal/telemetry';
import { createDeliveryWorker } from './delivery-worker';
import { deliveryWorkerMigrations } from './migrations';
import { controlPlaneWorkerSources } from './sources/control-plane-sources.adapter';

const SERVICE = 'delivery-worker';

export interface ContainerDeps {
  readonly config: SignalConfig;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export interface Container {
  /**
   * Start: consume, then serve health. Stop (reverse): health closes, consumers drain and commit, then the
   * clients close.
   */
  readonly lifecycle: Lifecycle;
  /** The bound port of the health/metrics server, once started. */
  port(): number;
}

/**
 * The migrations whose tables the worker uses: the control plane (integrations, encrypted credentials),
 * the audit log (crypto events), its own ledger, retry schedule and DLQ index and, on the PostgreSQL bus,
 * the bus tables. `signal-cli migrate` applies them.
 */
export function workerSchema(config: Pick<SignalConfig, 'bus'>): readonly Migration[] {
  return [
    ...auditMigrations,
    ...controlPlaneMigrations,
    ...(config.bus.kind === 'postgres' ? busMigrations : []),
    ...deliveryWorkerMigrations,
  ];
}

/**
 * The standalone Delivery Worker (STYLE §2): the service host (database, cache, bus, crypto), then the
 * delivery consumers, retry scheduler and DLQ indexer, then a small HTTP server for health and metrics.
 * Stopping runs in reverse: consumers stop fetching, in-flight batches finish (every outcome durable, offsets
 * committed) within the deadline, then the clients close.
 */
export async function buildContainer({ config, logger, metrics }: ContainerDeps): Promise<Container> {
  const host = await openServiceHost({
    name: SERVICE,
    config,
    logger,
    metrics,
    schema: workerSchema(config),
  });
  const controlPlane = createControlPlane({ db: host.db, crypto: host.crypto.crypto });

  const worker = createDeliveryWorker({
    bus: host.bus,
    db: host.db,
    consentStore: createCacheConsentStateStore({ cache: host.cache, logger: host.log('consent') }),
    ...controlPlaneWorkerSources(controlPlane),
    namespace: config.namespace,
    logger: host.log('delivery-worker'),
    metrics,
    settings: {
      retryMaxAttempts: config.delivery.retryMaxAttempts,
      retryBackoffBaseMs: config.delivery.retryBackoffBaseSeconds * 1000,
      rateLimitPerSecond: config.delivery.rateLimitPerSecond,
      // Partitions of a delivery-* topic it has to create (KAFKA_DELIVERY_PARTITIONS).
      topicPartitions: config.bus.kafka.partitions.delivery,
    },
  });
  host.lifecycle.add({
    name: 'delivery-worker',
    start: () => worker.start(),
    stop: (deadlineMs) => worker.stop(deadlineMs),
  });
  const { port } = host.serve('delivery worker serving health');
  return { lifecycle: host.lifecycle, port };
}
