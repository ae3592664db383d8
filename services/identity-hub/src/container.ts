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
import { type Migration, requireMigrations } from '@signal/store';
import type { Logger, Metrics } from '@signal/telemetry';
import { loadIdentityHubSettings } from './config';
import { loadBlindIndex } from './graph/blind-index';
import { createIdentityGraph } from './graph/identity-graph';
import { createIdentityHub } from './identity-hub';
import { identityHubMigrations } from './migrations';
import { controlPlaneHubSources } from './sources/control-plane-sources.adapter';
import { cacheSingleUseStore } from './tokens/single-use';

const SERVICE = 'identity-hub';
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
   * Start: the raw-events consumer, then HTTP. Stop (reverse): HTTP intake closes and in-flight requests
   * finish, the consumer drains and commits, then the clients close.
   */
  readonly lifecycle: Lifecycle;
  /** The bound port, once started. */
  port(): number;
}

/**
 * The migrations whose tables the hub uses: the control plane (pipeline keys, linked domains), the audit log
 * (crypto events), the identity graph and, on the PostgreSQL bus, the bus tables. `signal-cli migrate`
 * applies them.
 */
export function hubSchema(config: Pick<SignalConfig, 'bus'>): readonly Migration[] {
  return [
    ...auditMigrations,
    ...controlPlaneMigrations,
    ...(config.bus.kind === 'postgres' ? busMigrations : []),
    ...identityHubMigrations,
  ];
}

/**
 * The standalone Identity Hub (STYLE §2): adapters, then the hub (token routes, the identity graph fed from
 * raw-events, the used-token purge), then its own HTTP server. Stopping runs in reverse: the HTTP server
 * stops taking requests, the graph consumer finishes its batch and commits, then the clients close.
 */
export async function buildContainer({ config, logger, metrics }: ContainerDeps): Promise<Container> {
  const lifecycle = new Lifecycle(logger);
  const log = (component: string) => logger.child({ component });

  // ── Adapters ─────────────────────────────────────────────────────────────────────────────────────
  const db = await openDatabase(config, log('store'), { allowEmbedded: false, applicationName: SERVICE });
  lifecycle.add({ name: 'database', stop: () => db.close() });
  await requireMigrations(db, hubSchema(config), SERVICE);
  const cache = await openCache(config, log('cache'), { allowEmbedded: false });
  lifecycle.add({ name: 'cache', stop: () => cache.close() });
  const auditSink = cryptoAuditSink(createAuditLog({ db, logger: log('audit') }), log('audit'));
  lifecycle.add({ name: 'crypto-audit', stop: () => auditSink.drain() });
  const cryptoRuntime = bootstrapCrypto({ config, logger: log('crypto'), metrics, audit: auditSink });
  const bus = openBus(config, db, log('bus'), SERVICE, { crypto: cryptoRuntime.crypto, metrics });
  lifecycle.add({ name: 'bus', stop: () => bus.close() });
  const controlPlane = createControlPlane({ db, crypto: cryptoRuntime.crypto });
  // Kafka never creates topics on first use here (auto.create.topics.enable=false): the graph consumer's
  // raw-events must exist before it subscribes.
  lifecycle.add({
    name: 'topics',
    start: () =>
      bus.createTopics([
        { name: topics.rawEvents(config.namespace).name, partitions: RAW_EVENTS_PARTITIONS },
      ]),
    stop: async () => {},
  });

  // ── Service ──────────────────────────────────────────────────────────────────────────────────────
  const crypto = cryptoRuntime.crypto;
  const graph = createIdentityGraph({ db, crypto, index: await loadBlindIndex(db, crypto) });
  const hub = createIdentityHub({
    settings: loadIdentityHubSettings(config),
    crypto,
    // Token ids are consumed in Redis (SET NX PX), shared by every replica: a token opens once.
    singleUse: cacheSingleUseStore(cache),
    ...controlPlaneHubSources(controlPlane),
    logger: log('identity-hub'),
    metrics,
    graph: { graph, bus },
  });
  lifecycle.add({
    name: 'identity-hub',
    start: () => hub.start(),
    stop: (deadlineMs) => hub.stop(deadlineMs),
  });

  // ── Transport ────────────────────────────────────────────────────────────────────────────────────
  const router = createRouter({ logger: log('http') });
  hub.register(router);
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
  // Last to start, first to stop: no request arrives before the hub is ready or after its clients closed.
  lifecycle.add({
    name: 'http',
    async start() {
      port = (await server.listen(config.port)).port;
      logger.info({ port, tls: config.tls !== null, bus: bus.kind }, 'identity hub listening');
    },
    stop: (deadlineMs) => server.close(deadlineMs),
  });
  return { lifecycle, port: () => port };
}
