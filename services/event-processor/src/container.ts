import { auditMigrations, createAuditLog, cryptoAuditSink } from '@signal/audit';
import { busMigrations } from '@signal/bus';
import type { SignalConfig } from '@signal/config';
import { createCacheConsentStateStore } from '@signal/consent';
import { controlPlaneMigrations, createControlPlane } from '@signal/control-plane';
import { cryptoHealthHandler } from '@signal/crypto';
import { topics } from '@signal/events';
import {
  createRouter,
  createServer,
  metricsHandler,
  registerCertificateMetrics,
  registerHealthRoutes,
} from '@signal/http';
import { bootstrapCrypto, Lifecycle, openBus, openCache, openDatabase } from '@signal/runtime';
import { type Migration, requireMigrations } from '@signal/store';
import type { Logger, Metrics } from '@signal/telemetry';
import { createEventProcessor } from './event-processor';
import { controlPlaneProcessorSources } from './sources/control-plane-sources.adapter';

const SERVICE = 'event-processor';
/**
 * Partitions of topics this service creates when they are missing (docs/kafka.md: 12 for raw-events, so 6-12
 * processor and identity-hub replicas can share it; 3 for dlq-events). An existing topic keeps its count.
 */
const RAW_EVENTS_PARTITIONS = 12;
const DLQ_EVENTS_PARTITIONS = 3;

export interface ContainerDeps {
  readonly config: SignalConfig;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export interface Container {
  /**
   * Start: consume, then serve health. Stop (reverse): health closes, the consumer drains and commits, then
   * the clients close.
   */
  readonly lifecycle: Lifecycle;
  /** The bound port of the health/metrics server, once started. */
  port(): number;
}

/**
 * The migrations whose tables the processor uses: the control plane (integrations, Org Data Layer), the
 * audit log (crypto events) and, on the PostgreSQL bus, the bus tables. `signal-cli migrate` applies them.
 */
export function processorSchema(config: Pick<SignalConfig, 'bus'>): readonly Migration[] {
  return [
    ...auditMigrations,
    ...controlPlaneMigrations,
    ...(config.bus.kind === 'postgres' ? busMigrations : []),
  ];
}

/**
 * The standalone Event Processor (STYLE §2): adapters, then the raw-events consumer, then a small HTTP
 * server for health and metrics. Stopping runs in reverse: the consumer stops fetching, finishes its
 * in-flight batch (publishes durable, offset committed) within the deadline, then the clients close.
 */
export async function buildContainer({ config, logger, metrics }: ContainerDeps): Promise<Container> {
  const lifecycle = new Lifecycle(logger);
  const log = (component: string) => logger.child({ component });

  // ── Adapters ─────────────────────────────────────────────────────────────────────────────────────
  const db = await openDatabase(config, log('store'), { allowEmbedded: false, applicationName: SERVICE });
  lifecycle.add({ name: 'database', stop: () => db.close() });
  await requireMigrations(db, processorSchema(config), SERVICE);
  const cache = await openCache(config, log('cache'), { allowEmbedded: false });
  lifecycle.add({ name: 'cache', stop: () => cache.close() });
  const auditSink = cryptoAuditSink(createAuditLog({ db, logger: log('audit') }), log('audit'));
  lifecycle.add({ name: 'crypto-audit', stop: () => auditSink.drain() });
  const cryptoRuntime = bootstrapCrypto({ config, logger: log('crypto'), metrics, audit: auditSink });
  const bus = openBus(config, db, log('bus'), SERVICE, { crypto: cryptoRuntime.crypto, metrics });
  lifecycle.add({ name: 'bus', stop: () => bus.close() });
  const controlPlane = createControlPlane({ db, crypto: cryptoRuntime.crypto });
  // Kafka never creates topics on first use here (auto.create.topics.enable=false): the topics consumed and
  // dead-lettered to must exist before the consumer starts (the processor creates delivery-* itself).
  lifecycle.add({
    name: 'topics',
    start: () =>
      bus.createTopics([
        { name: topics.rawEvents(config.namespace).name, partitions: RAW_EVENTS_PARTITIONS },
        { name: topics.dlqEvents(config.namespace).name, partitions: DLQ_EVENTS_PARTITIONS },
      ]),
    stop: async () => {},
  });

  // ── Service ──────────────────────────────────────────────────────────────────────────────────────
  const processor = createEventProcessor({
    bus,
    dedup: cache,
    consentStore: createCacheConsentStateStore({ cache, logger: log('consent') }),
    ...controlPlaneProcessorSources(controlPlane),
    namespace: config.namespace,
    logger: log('event-processor'),
    metrics,
  });
  lifecycle.add({
    name: 'event-processor',
    start: () => processor.start(),
    stop: (deadlineMs) => processor.stop(deadlineMs),
  });

  // ── Transport: health and metrics ────────────────────────────────────────────────────────────────
  const router = createRouter({ logger: log('http') });
  const server = createServer({
    handler: (req, res) => router.handle(req, res),
    logger: log('http'),
    ...(config.tls
      ? {
          tls: {
            certPath: config.tls.certPath,
            keyPath: config.tls.keyPath,
            minVersion: config.tls.minVersion === '1.3' ? ('TLSv1.3' as const) : ('TLSv1.2' as const),
          },
        }
      : {}),
  });
  const certificates = server.certificates;
  if (certificates) registerCertificateMetrics(metrics.registry, [certificates]);
  router.on('GET', '/health/crypto', cryptoHealthHandler(cryptoRuntime.health));
  router.on('GET', '/metrics', metricsHandler(metrics, { logger: log('http') }));
  registerHealthRoutes(router, {
    logger: log('health'),
    checks: {
      database: async () => {
        await db.query('SELECT 1');
        return { status: 'ok' };
      },
      cache: async () => {
        await cache.ping();
        return { status: 'ok' };
      },
      crypto: () => ({ status: cryptoRuntime.health().status === 'healthy' ? 'ok' : 'fail' }),
      ...(certificates ? { tls: () => certificates.health() } : {}),
    },
  });

  let port = config.port;
  lifecycle.add({
    name: 'http',
    async start() {
      port = (await server.listen(config.port)).port;
      logger.info({ port, tls: config.tls !== null, bus: bus.kind }, 'event processor serving health');
    },
    stop: (deadlineMs) => server.close(deadlineMs),
  });
  return { lifecycle, port: () => port };
}
