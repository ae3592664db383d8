import { auditMigrations, createAuditLog, cryptoAuditSink } from '@signal/audit';
import { busMigrations } from '@signal/bus';
import type { SignalConfig } from '@signal/config';
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
import { buildSdk } from '@signal/sdk';
import { type Migration, requireMigrations } from '@signal/store';
import type { Logger, Metrics } from '@signal/telemetry';
import { createGateway } from './gateway';
import { cachedPipelineDirectory } from './pipelines/pipeline-directory';

const SERVICE = 'ingestion-gateway';
/**
 * Partitions of topics this service creates when they are missing (docs/kafka.md: 12 for raw-events, so 6-12
 * processor and identity-hub replicas can share it). An existing topic keeps its count.
 */
const RAW_EVENTS_PARTITIONS = 12;

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
 * The standalone Ingestion Gateway (STYLE §2): adapters, then the service, then its own HTTP server. Each
 * component joins the lifecycle in start order; stopping runs in reverse, so the HTTP server stops taking
 * requests and lets in-flight ones finish (their events are durable before their 202) before the bus,
 * cache and database close.
 */
export async function buildContainer({ config, logger, metrics }: ContainerDeps): Promise<Container> {
  const lifecycle = new Lifecycle(logger);
  const log = (component: string) => logger.child({ component });

  // ── Adapters ─────────────────────────────────────────────────────────────────────────────────────
  const db = await openDatabase(config, log('store'), { allowEmbedded: false, applicationName: SERVICE });
  lifecycle.add({ name: 'database', stop: () => db.close() });
  await requireMigrations(db, gatewaySchema(config), SERVICE);
  const cache = await openCache(config, log('cache'), { allowEmbedded: false });
  lifecycle.add({ name: 'cache', stop: () => cache.close() });
  const auditSink = cryptoAuditSink(createAuditLog({ db, logger: log('audit') }), log('audit'));
  lifecycle.add({ name: 'crypto-audit', stop: () => auditSink.drain() });
  const cryptoRuntime = bootstrapCrypto({ config, logger: log('crypto'), metrics, audit: auditSink });
  const bus = openBus(config, db, log('bus'), SERVICE, { crypto: cryptoRuntime.crypto, metrics });
  lifecycle.add({ name: 'bus', stop: () => bus.close() });
  const controlPlane = createControlPlane({ db, crypto: cryptoRuntime.crypto });
  // Kafka never creates topics on first use here (auto.create.topics.enable=false): raw-events must exist
  // before the first event is accepted.
  const rawEvents = topics.rawEvents(config.namespace);
  lifecycle.add({
    name: 'topics',
    start: () => bus.createTopics([{ name: rawEvents.name, partitions: RAW_EVENTS_PARTITIONS }]),
    stop: async () => {},
  });

  // ── Service ──────────────────────────────────────────────────────────────────────────────────────
  const gateway = createGateway({
    config: { namespace: config.namespace, ...config.gateway },
    directory: cachedPipelineDirectory(controlPlane, {
      ttlMs: config.gateway.pipelineKeyCacheTtlSeconds * 1000,
    }),
    bus,
    cache,
    sdk: await buildSdk(),
    logger: log('gateway'),
    metrics,
  });

  // ── Transport ────────────────────────────────────────────────────────────────────────────────────
  const router = createRouter({ logger: log('http') });
  gateway.register(router);
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
  // Last to start, first to stop: no request arrives before the service is ready or after the bus closed.
  lifecycle.add({
    name: 'http',
    async start() {
      port = (await server.listen(config.port)).port;
      logger.info({ port, tls: config.tls !== null, bus: bus.kind }, 'ingestion gateway listening');
    },
    stop: (deadlineMs) => server.close(deadlineMs),
  });
  return { lifecycle, port: () => port };
}
