import { topics } from '@signal/events';
import { openServiceHost, type ServiceContainer, type ServiceMainDeps } from '@signal/runtime';
import { buildSdk } from '@signal/sdk';
import { createGateway } from './gateway';
import { cachedPipelineDirectory } from './pipelines/pipeline-directory';

const SERVICE = 'ingestion-gateway';

/**
 * The standalone Ingestion Gateway (STYLE §2): the service host (database, cache, bus, crypto), then the
 * gateway, then its HTTP server. Stopping runs in reverse, so the HTTP server stops taking requests and lets
 * in-flight ones finish (their events are durable before their 202) before the bus, cache and database close.
 */
export async function buildContainer(deps: ServiceMainDeps): Promise<ServiceContainer> {
  const { config, metrics } = deps;
  const host = await openServiceHost({ ...deps, name: SERVICE });
  // raw-events must exist before the first event is accepted.
  host.requireTopics([
    { name: topics.rawEvents(config.namespace).name, partitions: config.bus.kafka.partitions.rawEvents },
  ]);

  const gateway = createGateway({
    config: { namespace: config.namespace, ...config.gateway },
    directory: cachedPipelineDirectory(host.controlPlane, {
      ttlMs: config.gateway.pipelineKeyCacheTtlSeconds * 1000,
    }),
    bus: host.bus,
    cache: host.cache,
    sdk: await buildSdk(),
    logger: host.log('gateway'),
    metrics,
  });
  gateway.register(host.router);
  const { port } = host.serve('ingestion gateway listening');
  return { lifecycle: host.lifecycle, port };
}
