import { auditMigrations, createAuditLog, cryptoAuditSink } from '@signal/audit';
import { type Bus, busMigrations, type TopicSpec } from '@signal/bus';
import type { Cache } from '@signal/cache';
import type { SignalConfig } from '@signal/config';
import { type ControlPlane, controlPlaneMigrations, createControlPlane } from '@signal/control-plane';
import { cryptoHealthHandler } from '@signal/crypto';
import {
  createRouter,
  createServer,
  metricsHandler,
  type Router,
  registerCertificateMetrics,
  registerHealthRoutes,
  type ServerTlsOptions,
} from '@signal/http';
import { type Database, type Migration, requireMigrations } from '@signal/store';
import type { Logger, Metrics } from '@signal/telemetry';
import { openBus, openCache, openDatabase } from './infrastructure';
import { bootstrapCryptoWithKms, type KmsCryptoRuntime } from './kms-bootstrap';
import { Lifecycle } from './lifecycle';

export interface ServiceHostOptions {
  /** The service's name: PostgreSQL application_name, Kafka client id (unless KAFKA_CLIENT_ID), log lines. */
  readonly name: string;
  readonly config: SignalConfig;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** The service's own tables, besides those every standalone service uses (`standaloneSchema`). */
  readonly ownMigrations?: readonly Migration[];
}

/** What a standalone service's composition root returns: its lifecycle and, once started, its port. */
export interface ServiceContainer {
  readonly lifecycle: Lifecycle;
  port(): number;
}

/**
 * The migrations whose tables a standalone service uses: the audit log (crypto events), the control plane
 * (pipelines, integrations, keys) and, on the PostgreSQL bus, the bus tables, then the service's own.
 * `signal-cli migrate` applies them all; start-up refuses a database without them.
 */
export function standaloneSchema(
  config: Pick<SignalConfig, 'bus'>,
  ownMigrations: readonly Migration[] = [],
): readonly Migration[] {
  return [
    ...auditMigrations,
    ...controlPlaneMigrations,
    ...(config.bus.kind === 'postgres' ? busMigrations : []),
    ...ownMigrations,
  ];
}

export interface ServiceHost {
  /** Adapters are already in it (stopped last); the service adds its components, then calls `serve`. */
  readonly lifecycle: Lifecycle;
  readonly db: Database;
  readonly cache: Cache;
  readonly bus: Bus;
  readonly crypto: KmsCryptoRuntime;
  /** Pipelines, integrations and keys, sealed with `crypto`. */
  readonly controlPlane: ControlPlane;
  /** The HTTP router `serve` listens with; services register their routes on it. */
  readonly router: Router;
  /** A child logger for one component. */
  log(component: string): Logger;
  /**
   * Topics that must exist before the service's consumers and routes start: Kafka never creates them on
   * first use here (auto.create.topics.enable=false). Created at start, in the order components were added.
   */
  requireTopics(specs: readonly TopicSpec[]): void;
  /**
   * Adds the HTTP(S) server as the last component (first to stop: no request arrives before the service is
   * ready or after its clients closed), with /health/live, /health/ready (database, cache, crypto, and the
   * certificate when TLS is on), /health/crypto and /metrics beside the service's routes.
   */
  serve(listeningMessage: string): { port(): number };
}

function tlsOptions(config: SignalConfig): { tls?: ServerTlsOptions } {
  if (config.tls === null) return {};
  return {
    tls: {
      certPath: config.tls.certPath,
      keyPath: config.tls.keyPath,
      minVersion: config.tls.minVersion === '1.3' ? 'TLSv1.3' : 'TLSv1.2',
    },
  };
}

/**
 * The shared part of every standalone data-plane service's composition root (STYLE §2): PostgreSQL (checked
 * against the service's migrations), Redis and the bus, the crypto-event audit sink and the crypto service
 * from configuration, each joining the lifecycle in start order so they close in reverse after the service
 * and its HTTP server have stopped. Production only: no embedded database, cache or development key.
 */
export async function openServiceHost(options: ServiceHostOptions): Promise<ServiceHost> {
  const { name, config, logger, metrics } = options;
  const lifecycle = new Lifecycle(logger);
  const log = (component: string): Logger => logger.child({ component });

  const db = await openDatabase(config, log('store'), { allowEmbedded: false, applicationName: name });
  lifecycle.add({ name: 'database', stop: () => db.close() });
  await requireMigrations(db, standaloneSchema(config, options.ownMigrations), name);
  const cache = await openCache(config, log('cache'), { allowEmbedded: false });
  lifecycle.add({ name: 'cache', stop: () => cache.close() });
  const auditSink = cryptoAuditSink(createAuditLog({ db, logger: log('audit') }), log('audit'));
  lifecycle.add({ name: 'crypto-audit', stop: () => auditSink.drain() });
  // Direct mode derives keys from ENCRYPTION_KEY; envelope mode (a KMS provider or ENCRYPTION_ENVELOPE)
  // unwraps the active DEKs first and refuses to start when the KEK cannot.
  const crypto = await bootstrapCryptoWithKms({
    config,
    logger: log('crypto'),
    metrics,
    audit: auditSink,
    db,
    service: name,
  });
  lifecycle.add({ name: 'crypto', stop: () => crypto.close() });
  // The bus seals what it stores with this process's keys (data class `bus`), so it opens after crypto.
  const bus = openBus(config, db, log('bus'), name, { crypto: crypto.crypto, metrics });
  lifecycle.add({ name: 'bus', stop: () => bus.close() });
  const router = createRouter({ logger: log('http') });

  return {
    lifecycle,
    db,
    cache,
    bus,
    crypto,
    controlPlane: createControlPlane({ db, crypto: crypto.crypto }),
    router,
    log,
    requireTopics(specs) {
      lifecycle.add({ name: 'topics', start: () => bus.createTopics(specs), stop: async () => {} });
    },
    serve(listeningMessage) {
      const server = createServer({
        handler: (req, res) => router.handle(req, res),
        logger: log('http'),
        ...tlsOptions(config),
      });
      const certificates = server.certificates;
      if (certificates) registerCertificateMetrics(metrics.registry, [certificates]);
      router.on('GET', '/health/crypto', cryptoHealthHandler(crypto.health));
      router.on(
        'GET',
        '/metrics',
        metricsHandler(metrics, { logger: log('http'), token: config.metricsToken?.reveal() ?? null }),
      );
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
          crypto: () => ({ status: crypto.health().status === 'healthy' ? 'ok' : 'fail' }),
          ...(certificates ? { tls: () => certificates.health() } : {}),
        },
      });
      let port = config.port;
      lifecycle.add({
        name: 'http',
        async start() {
          port = (await server.listen(config.port)).port;
          logger.info({ port, tls: config.tls !== null, bus: bus.kind }, listeningMessage);
        },
        stop: (deadlineMs) => server.close(deadlineMs),
      });
      return { port: () => port };
    },
  };
}
