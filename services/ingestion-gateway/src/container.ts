import { auditMigrations } from '@signal/audit';
import { busMigrations } from '@signal/bus';
import type { SignalConfig } from '@signal/config';
import { controlPlaneMigrations, createControlPlane } from '@signal/control-plane';
import { topics } from '@signal/events';
import { type Lifecycle, openServiceHost } from '@signal/runtime';
import { buildSdk } from '@signal/sdk';
import type { Migration } from '@signal/store';
import type { Logger, Metrics } from '@signal/telemetry';
import { createGateway } from './gateway';
import { cachedPipelineDirectory } from './pipelines/pipeline-directory';

const SERVICE = 'ingestion-gateway';

export interface ContainerDeps {
  readonly config: SignalConfig;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export interface Container {
  /**
   * Start: listen. Stop (reverse): HTTP intake closes and in-flight requests finish, then the clients close.
   */
  readonly lifecycle: Lifecycle;
  /** The bound port, once started. */
  port(): number;
}

/**
 * The migrations whose tables the gateway uses: the control plane (pipeline keys, HMAC secrets), the audit
 * log (crypto events) and, on the PostgreSQL bus, the bus tables. `signal-cli migrate` applies them.
 */
export function gatewaySchema(config: Pick<SignalConfig, 'bus'>): readonly Migration[] {
  return [
    ...auditMigrations,
    ...controlPlaneMigrations,
    ...(config.bus.kind === 'postgres' ? busMigrations : []),
  ];
}

/**
 * The standalone Ingestion Gateway (STYLE §2): the service host (database, cache, bus, crypto), then the
 * gateway, then its HTTP server. Stopping runs in reverse, so the HTTP server stops taking requests and lets
 * in-flight ones finish (their events are durable before their 202) before the bus, cache and database close.
 */
export async function buildContainer({ config, logger, metrics }: ContainerDeps): Promise<Container> {
  const host = await openServiceHost({
    name: SERVICE,
    config,
    logger,
    metrics,
    schema: gatewaySchema(config),
  });
  const controlPlane = createControlPlane({ db: host.db, crypto: host.crypto.crypto });
  // raw-events must exist before the first event is accepted.
  host.requireTopics([
    { name: topics.rawEvents(config.namespace).name, partitions: config.bus.kafka.partitions.rawEvents },
  ]);

  const gateway = createGateway({
    config: { namespace: config.namespace, ...config.gateway },
    directory: cachedPipelineDirectory(controlPlane, {
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
