import { auditMigrations, createAuditLog, cryptoAuditSink } from '@signal/audit';
import { busMigrations } from '@signal/bus';
import type { SignalConfig } from '@signal/config';
import { createCacheConsentStateStore } from '@signal/consent';
import { controlPlaneMigrations, createControlPlane } from '@signal/control-plane';
import { cryptoHealthHandler } from '@signal/crypto';
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
 * The standalone Delivery Worker (STYLE §2): adapters, then the delivery consumers, retry scheduler and
 * DLQ indexer, then a small HTTP server for health and metrics. Stopping runs in reverse: consumers stop
 * fetching, in-flight batches finish (every outcome durable, offsets committed) within the deadline, then
 * the clients close.
 */
export async function buildContainer({ config, logger, metrics }: ContainerDeps): Promise<Container> {
  const lifecycle = new Lifecycle(logger);
  const log = (component: string) => logger.child({ component });

  // ── Adapters ─────────────────────────────────────────────────────────────────────────────────────
  const db = await openDatabase(config, log('store'), { allowEmbedded: false, applicationName: SERVICE });
  lifecycle.add({ name: 'database', stop: () => db.close() });
  await requireMigrations(db, workerSchema(config), SERVICE);
  const cache = await openCache(config, log('cache'), { allowEmbedded: false });
  lifecycle.add({ name: 'cache', stop: () => cache.close() });
  const auditSink = cryptoAuditSink(createAuditLog({ db, logger: log('audit') }), log('audit'));
  lifecycle.add({ name: 'crypto-audit', stop: () => auditSink.drain() });
  const cryptoRuntime = bootstrapCrypto({ config, logger: log('crypto'), metrics, audit: auditSink });
  const bus = openBus(config, db, log('bus'), SERVICE, { crypto: cryptoRuntime.crypto, metrics });
  lifecycle.add({ name: 'bus', stop: () => bus.close() });
  const controlPlane = createControlPlane({ db, crypto: cryptoRuntime.crypto });

  // ── Service ──────────────────────────────────────────────────────────────────────────────────────
  const worker = createDeliveryWorker({
    bus,
    db,
    consentStore: createCacheConsentStateStore({ cache, logger: log('consent') }),
    ...controlPlaneWorkerSources(controlPlane),
    namespace: config.namespace,
    logger: log('delivery-worker'),
    metrics,
    settings: {
      retryMaxAttempts: config.delivery.retryMaxAttempts,
      retryBackoffBaseMs: config.delivery.retryBackoffBaseSeconds * 1000,
      rateLimitPerSecond: config.delivery.rateLimitPerSecond,
    },
  });
  lifecycle.add({
    name: 'delivery-worker',
    start: () => worker.start(),
    stop: (deadlineMs) => worker.stop(deadlineMs),
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
      logger.info({ port, tls: config.tls !== null, bus: bus.kind }, 'delivery worker serving health');
    },
    stop: (deadlineMs) => server.close(deadlineMs),
  });
  return { lifecycle, port: () => port };
}
