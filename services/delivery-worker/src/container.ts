import { createCacheConsentStateStore } from '@signal/consent';
import {
  createConsentOfRecord,
  createErasedSubjects,
  createVisitorConsentStore,
  requireIdentityMigrations,
} from '@signal/identity-hub';
import { openServiceHost, type ServiceContainer, type ServiceMainDeps } from '@signal/runtime';
import { createDeliveryWorker } from './delivery-worker';
import { deliveryWorkerMigrations } from './migrations';
import { controlPlaneWorkerSources } from './sources/control-plane-sources.adapter';

const SERVICE = 'delivery-worker';

/**
 * The standalone Delivery Worker (STYLE §2): the service host (database, cache, bus, crypto), then the
 * delivery consumers, retry scheduler and DLQ indexer, then a small HTTP server for health and metrics.
 * Stopping runs in reverse: consumers stop fetching, in-flight batches finish (every outcome durable, offsets
 * committed) within the deadline, then the clients close.
 */
export async function buildContainer(deps: ServiceMainDeps): Promise<ServiceContainer> {
  const { config, metrics } = deps;
  const host = await openServiceHost({ ...deps, name: SERVICE, ownMigrations: deliveryWorkerMigrations });

  // Where the identity tables exist, all of them must (a consent of record needs identity-hub/0004).
  const identityTables = await requireIdentityMigrations(host.db, SERVICE);
  // Visitors' consent states in the database beside the cache where the identity tables are (identity-hub/0005).
  const consentLogger = host.log('consent');
  const consentStore =
    identityTables === 'ready'
      ? createVisitorConsentStore({ db: host.db, cache: host.cache, logger: consentLogger })
      : createCacheConsentStateStore({ cache: host.cache, logger: consentLogger });

  const worker = createDeliveryWorker({
    bus: host.bus,
    db: host.db,
    consentStore,
    userConsent: createConsentOfRecord({ db: host.db, cache: host.cache, logger: host.log('consent') }),
    ...controlPlaneWorkerSources(host.controlPlane),
    namespace: config.namespace,
    crypto: host.crypto.crypto,
    logger: host.log('delivery-worker'),
    metrics,
    // The identity hub's erasure records, in the same database (`signal-cli migrate` creates every table).
    erasures: createErasedSubjects({ db: host.db, crypto: host.crypto.crypto }),
    settings: {
      retryMaxAttempts: config.delivery.retryMaxAttempts,
      retryBackoffBaseMs: config.delivery.retryBackoffBaseSeconds * 1000,
      rateLimitPerSecond: config.delivery.rateLimitPerSecond,
      allowedPrivateDestinations: config.delivery.allowedPrivateCidrs,
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
