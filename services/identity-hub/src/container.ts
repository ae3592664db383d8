import { topics } from '@signal/events';
import { openServiceHost, type ServiceContainer, type ServiceMainDeps } from '@signal/runtime';
import { loadIdentityHubSettings } from './config';
import { loadBlindIndex } from './graph/blind-index';
import { createConsentOfRecord } from './graph/consent-of-record';
import { createIdentityGraph } from './graph/identity-graph';
import { createIdentityHub } from './identity-hub';
import { identityHubMigrations } from './migrations';
import { controlPlaneHubSources } from './sources/control-plane-sources.adapter';
import { cacheSingleUseStore } from './tokens/single-use';

const SERVICE = 'identity-hub';

/**
 * The standalone Identity Hub (STYLE §2): the service host (database, cache, bus, crypto), then the hub
 * (token routes, the identity graph fed from raw-events, the used-token purge), then its own HTTP server.
 * Stopping runs in reverse: the HTTP server stops taking requests, the graph consumer finishes its batch and
 * commits, then the clients close.
 */
export async function buildContainer(deps: ServiceMainDeps): Promise<ServiceContainer> {
  const { config, metrics } = deps;
  const host = await openServiceHost({ ...deps, name: SERVICE, ownMigrations: identityHubMigrations });
  // The graph consumer's raw-events must exist before it subscribes.
  host.requireTopics([
    { name: topics.rawEvents(config.namespace).name, partitions: config.bus.kafka.partitions.rawEvents },
  ]);

  const crypto = host.crypto.crypto;
  const subjectKeys = host.crypto.subjectKeys;
  const graph = createIdentityGraph({
    db: host.db,
    crypto,
    index: await loadBlindIndex(host.db, crypto),
    ...(subjectKeys === undefined ? {} : { profileKeys: subjectKeys }),
  });
  const hub = createIdentityHub({
    settings: loadIdentityHubSettings(config),
    crypto,
    // Token ids are consumed in Redis (SET NX PX), shared by every replica: a token opens once.
    singleUse: cacheSingleUseStore(host.cache),
    // Rate-limit counters in the same Redis, so the limits are per deployment, not per replica.
    rateLimitCache: host.cache,
    ...controlPlaneHubSources(host.controlPlane),
    logger: host.log('identity-hub'),
    metrics,
    graph: { graph, bus: host.bus },
    // Purges expired consents of record (the event processors write them, the delivery workers read them).
    consentOfRecord: createConsentOfRecord({ db: host.db }),
  });
  host.lifecycle.add({
    name: 'identity-hub',
    start: () => hub.start(),
    stop: (deadlineMs) => hub.stop(deadlineMs),
  });
  hub.register(host.router);
  const { port } = host.serve('identity hub listening');
  return { lifecycle: host.lifecycle, port };
}
