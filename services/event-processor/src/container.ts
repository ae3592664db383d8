import { createCacheConsentStateStore } from '@signal/consent';
import { topics } from '@signal/events';
import {
  createConsentOfRecord,
  createErasedSubjects,
  createVisitorConsentStore,
  ensureBlindIndexKey,
  requireIdentityMigrations,
} from '@signal/identity-hub';
import { openServiceHost, type ServiceContainer, type ServiceMainDeps } from '@signal/runtime';
import { createEventProcessor } from './event-processor';
import { controlPlaneProcessorSources } from './sources/control-plane-sources.adapter';

const SERVICE = 'event-processor';

/**
 * The standalone Event Processor (STYLE §2): the service host (database, cache, bus, crypto), then the
 * raw-events consumer, then a small HTTP server for health and metrics. Stopping runs in reverse: the consumer
 * stops fetching, finishes its in-flight batch (publishes durable, offset committed) within the deadline,
 * then the clients close.
 */
export async function buildContainer(deps: ServiceMainDeps): Promise<ServiceContainer> {
  const { config, metrics } = deps;
  const host = await openServiceHost({ ...deps, name: SERVICE });
  // The topics consumed and dead-lettered to must exist before the consumer starts (the processor creates
  // delivery-* itself).
  const { partitions } = config.bus.kafka;
  host.requireTopics([
    { name: topics.rawEvents(config.namespace).name, partitions: partitions.rawEvents },
    { name: topics.dlqEvents(config.namespace).name, partitions: partitions.dlq },
  ]);

  // The blind-index key names a person's consent of record. The identity hub makes it at its first start; a
  // processor that starts first makes it here (the same race-safe insert), so no signed consent_update that
  // arrives before the hub is ever up goes unrecorded. Without the identity tables there is nothing to make.
  // Where the identity tables exist, all of them must (a consent of record needs identity-hub/0004).
  const identityTables = await requireIdentityMigrations(host.db, SERVICE);
  await ensureBlindIndexKey(host.db, host.crypto.crypto);
  // Visitors' consent states in the database beside the cache where the identity tables are (identity-hub/0005).
  const consentLogger = host.log('consent');
  const consentStore =
    identityTables === 'ready'
      ? createVisitorConsentStore({ db: host.db, cache: host.cache, logger: consentLogger })
      : createCacheConsentStateStore({ cache: host.cache, logger: consentLogger });

  const processor = createEventProcessor({
    bus: host.bus,
    dedup: host.cache,
    consentStore,
    // Consents of record from signed consent_update events; needs `erasures` (its key names the person).
    userConsent: createConsentOfRecord({ db: host.db, cache: host.cache, logger: host.log('consent') }),
    ...controlPlaneProcessorSources(host.controlPlane),
    namespace: config.namespace,
    logger: host.log('event-processor'),
    // The identity hub's erasure records, in the same database (`signal-cli migrate` creates every table).
    erasures: createErasedSubjects({ db: host.db, crypto: host.crypto.crypto }),
    metrics,
    // Partition counts of the topics it creates (KAFKA_*_PARTITIONS; an existing topic keeps its own).
    settings: { deliveryPartitions: partitions.delivery },
  });
  host.lifecycle.add({
    name: 'event-processor',
    start: () => processor.start(),
    stop: (deadlineMs) => processor.stop(deadlineMs),
  });
  const { port } = host.serve('event processor serving health');
  return { lifecycle: host.lifecycle, port };
}
