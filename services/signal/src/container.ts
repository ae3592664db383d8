import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAuditLog, cryptoAuditSink } from '@signal/audit';
import { Secret, type SignalConfig } from '@signal/config';
import {
  countRecordsByKeyId,
  countRecordsUnderKey,
  createControlPlane,
  ENCRYPTED_COLUMNS,
} from '@signal/control-plane';
import { cryptoHealthHandler } from '@signal/crypto';
import {
  controlPlaneWorkerSources,
  createDeliveryWorker,
  createSubjectPurge,
  DELIVERY_WORKER_ENCRYPTED_COLUMNS,
} from '@signal/delivery-worker';
import { controlPlaneProcessorSources, createEventProcessor } from '@signal/event-processor';
import { createRouter, createServer, metricsHandler, registerHealthRoutes, sendJson } from '@signal/http';
import {
  cacheSingleUseStore,
  controlPlaneHubSources,
  createConsentOfRecord,
  createErasedSubjects,
  createIdentityErasure,
  createIdentityGraph,
  createIdentityHub,
  createVisitorConsentStore,
  IDENTITY_ENCRYPTED_COLUMNS,
  loadBlindIndex,
  loadIdentityHubSettings,
} from '@signal/identity-hub';
import { cachedPipelineDirectory, createGateway } from '@signal/ingestion-gateway';
import { createManagementApi } from '@signal/management-api';
import {
  bootstrapCryptoWithKms,
  createSecretFile,
  Lifecycle,
  openBus,
  openCache,
  openDatabase,
  rotationAwareCryptoHealth,
} from '@signal/runtime';
import { buildSdk } from '@signal/sdk';
import { migrate } from '@signal/store';
import { createMetrics, type Logger } from '@signal/telemetry';
import { demoPage } from './demo/demo-page';
import { demoWebhookSecret, setUpDemo } from './demo/demo-setup';
import { startVendorSink } from './demo/vendor-sink';
import { ALL_MIGRATIONS } from './migrations';

export interface SignalDeps {
  readonly config: SignalConfig;
  readonly logger: Logger;
  /**
   * The embedded database stopped for good (a PANIC, e.g. on a failed fsync): every request that needs it
   * now fails with 503. `main` stops the process (exit 1) so that its supervisor restarts it and PostgreSQL
   * recovers from its WAL.
   */
  readonly onFatal?: (error: Error) => void;
}

const DEV_JWT_FILE = 'development-jwt.secret';

/** Embedded only: a JWT signing secret kept in the data directory when JWT_SECRET is not set. */
function developmentJwtSecret(dataDir: string): string {
  const path = join(dataDir, DEV_JWT_FILE);
  if (existsSync(path)) {
    const known = readFileSync(path, 'utf8').trim();
    if (known.length < 32)
      throw new Error(`${path} must hold the JWT signing secret; delete it or set JWT_SECRET`);
    return known;
  }
  const secret = randomBytes(48).toString('base64url');
  return createSecretFile(path, `${secret}\n`) ? secret : developmentJwtSecret(dataDir);
}

/**
 * Loopback, where the demo's HTTPS vendor sink listens: deliveries may reach it (the delivery worker refuses
 * private and reserved addresses otherwise, DELIVERY_ALLOWED_PRIVATE_CIDRS).
 */
const LOOPBACK: readonly string[] = ['127.0.0.1/32', '::1/128'];

/**
 * The composition root of the embedded all-in-one (STYLE §2): adapters, then services, then the one HTTP
 * transport. Components join the lifecycle in start order and stop in reverse: the HTTP server stops
 * taking requests first, consumers drain, the bus and database close last.
 */
export async function buildSignal({ config, logger, onFatal }: SignalDeps) {
  if (config.encryption.requireEncryption && config.management.jwtSecret === null) {
    // Checked before anything is created: a generated secret would sit in plaintext in the data directory,
    // and whoever reads a backup of it could sign admin tokens.
    throw new Error(
      'REQUIRE_ENCRYPTION is true but JWT_SECRET is not set: set JWT_SECRET to at least 32 random bytes (a development signing secret is generated only without REQUIRE_ENCRYPTION)',
    );
  }
  const metrics = createMetrics();
  const lifecycle = new Lifecycle(logger);
  const log = (component: string) => logger.child({ component });

  // ── Adapters ─────────────────────────────────────────────────────────────────────────────────────
  const db = await openDatabase(config, log('store'), {
    allowEmbedded: true,
    applicationName: 'signal',
    ...(onFatal ? { onEmbeddedFatal: onFatal } : {}),
  });
  lifecycle.add({ name: 'database', stop: () => db.close() });
  await migrate(db, ALL_MIGRATIONS, log('migrate'));
  const cache = await openCache(config, log('cache'), { allowEmbedded: true });
  lifecycle.add({ name: 'cache', stop: () => cache.close() });

  const audit = createAuditLog({ db, logger: log('audit') });
  const auditSink = cryptoAuditSink(audit, log('audit'));
  const cryptoRuntime = await bootstrapCryptoWithKms({
    config,
    logger: log('crypto'),
    metrics,
    audit: auditSink,
    allowDevelopmentKey: true,
    db,
  });
  lifecycle.add({ name: 'crypto', stop: () => cryptoRuntime.close() });
  const crypto = cryptoRuntime.crypto;
  const bus = openBus(config, db, log('bus'), 'signal', { crypto, metrics });
  lifecycle.add({ name: 'bus', stop: () => bus.close() });
  const controlPlane = createControlPlane({ db, crypto });
  // Visitors' consent states: rows in the database (a withdrawal outlives a restart and an eviction of the
  // in-process cache), copies in the cache.
  const consentStore = createVisitorConsentStore({ db, cache, logger: log('consent') });
  // A person's consents of record: rows in the database (they outlive a restart), copies in the cache.
  const userConsent = createConsentOfRecord({ db, cache, logger: log('consent') });

  // ── Demo: a local HTTPS "vendor", the seeded org/pipeline/integrations ─────────────────────────────
  const sinkSecret = demoWebhookSecret(config.dataDir, () => randomBytes(32).toString('base64url'));
  const sink = await startVendorSink({ webhookSecret: sinkSecret });
  lifecycle.add({ name: 'vendor-sink', stop: () => sink.close() });
  const demo = await setUpDemo({
    controlPlane,
    db,
    dataDir: config.dataDir,
    adminEmail: config.bootstrap.adminEmail ?? 'admin@signal.localhost',
    adminPassword: config.bootstrap.adminPassword?.reveal(),
    sink,
    webhookSigningSecret: sinkSecret,
  });
  // Secrets generated by this start are committed now and never shown again: print them at once, not
  // with the URLs once everything listens. A start that fails after this point (port in use, bad TLS
  // files, a signal) would otherwise have lost them for good.
  const firstStart = [
    demo.generatedAdminPassword
      ? `  Admin password for ${demo.adminEmail} (shown once, store it now): ${demo.generatedAdminPassword}`
      : '',
    demo.hmacSecret ? `  HMAC secret for server sources (shown once): ${demo.hmacSecret}` : '',
  ].filter(Boolean);
  if (firstStart.length > 0) process.stdout.write(`\n${firstStart.join('\n')}\n`);

  // ── Services ─────────────────────────────────────────────────────────────────────────────────────
  const router = createRouter({ logger: log('http') });
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
  gateway.register(router);

  const jwtSecret = config.management.jwtSecret ?? new Secret(developmentJwtSecret(config.dataDir));
  if (config.management.jwtSecret === null) {
    logger.warn(
      { path: join(config.dataDir, DEV_JWT_FILE) },
      'JWT_SECRET is not set: admin tokens are signed with a development secret kept in the data directory; set JWT_SECRET in production',
    );
  }
  // Built before the Management API, which erases from it (DELETE /v1/admin/identity/{id}).
  const identityGraph = createIdentityGraph({
    db,
    crypto,
    index: await loadBlindIndex(db, crypto),
    ...(cryptoRuntime.subjectKeys === undefined ? {} : { profileKeys: cryptoRuntime.subjectKeys }),
  });
  const management = createManagementApi({
    db,
    cache,
    crypto,
    audit,
    logger: log('management-api'),
    metrics,
    config: { management: { ...config.management, jwtSecret } },
    trustedProxyHops: config.gateway.trustedProxyHops,
    trustedProxyCidrs: config.gateway.trustedProxyCidrs,
    operatorOrg: config.management.operatorOrg,
    controlPlane,
    // Every encrypted column of this deployment: the control plane's, the identity graph's, the delivery
    // worker's (DLQ index and retry schedule).
    reencryption: {
      columns: [...ENCRYPTED_COLUMNS, ...IDENTITY_ENCRYPTED_COLUMNS, ...DELIVERY_WORKER_ENCRYPTED_COLUMNS],
      ...(cryptoRuntime.rewrapKeys === undefined ? {} : { rewrapKeys: cryptoRuntime.rewrapKeys }),
    },
    // Dead letters are indexed in this database by the delivery worker; replays publish on this bus.
    dlq: { db, bus, namespace: config.namespace },
    identityErasure: createIdentityErasure({
      graph: identityGraph,
      audit,
      logger: log('identity-erasure'),
      ...(cryptoRuntime.shredSubjects === undefined ? {} : { shred: cryptoRuntime.shredSubjects }),
      // Dead letters and scheduled retries of the erased person go too: no replay delivers them again.
      deliveries: createSubjectPurge(db, crypto),
    }),
  });
  management.register(router);
  lifecycle.add({ name: 'management-api', start: () => management.start(), stop: () => management.stop() });

  // The identity graph's erasure records, read by the processor (raw events) and the worker (deliveries).
  const erasures = createErasedSubjects({ db, crypto });
  const processor = createEventProcessor({
    bus,
    dedup: cache,
    consentStore,
    userConsent,
    ...controlPlaneProcessorSources(controlPlane),
    namespace: config.namespace,
    logger: log('event-processor'),
    metrics,
    erasures,
  });
  lifecycle.add({
    name: 'event-processor',
    start: () => processor.start(),
    stop: (ms) => processor.stop(ms),
  });

  const worker = createDeliveryWorker({
    bus,
    db,
    consentStore,
    userConsent,
    ...controlPlaneWorkerSources(controlPlane),
    namespace: config.namespace,
    crypto,
    logger: log('delivery-worker'),
    metrics,
    erasures,
    settings: {
      retryMaxAttempts: config.delivery.retryMaxAttempts,
      retryBackoffBaseMs: config.delivery.retryBackoffBaseSeconds * 1000,
      rateLimitPerSecond: config.delivery.rateLimitPerSecond,
      // The demo's vendor sink listens on loopback; everything else private only as configured.
      allowedPrivateDestinations: [...config.delivery.allowedPrivateCidrs, ...LOOPBACK],
    },
  });
  lifecycle.add({ name: 'delivery-worker', start: () => worker.start(), stop: (ms) => worker.stop(ms) });

  const identityHub = createIdentityHub({
    settings: loadIdentityHubSettings(config),
    crypto,
    singleUse: cacheSingleUseStore(cache),
    ...controlPlaneHubSources(controlPlane),
    logger: log('identity-hub'),
    metrics,
    graph: { graph: identityGraph, bus },
    consentOfRecord: userConsent,
    visitorConsent: consentStore,
  });
  identityHub.register(router);
  lifecycle.add({
    name: 'identity-hub',
    start: () => identityHub.start(),
    stop: (ms) => identityHub.stop(ms),
  });

  // ── Health, metrics, demo ─────────────────────────────────────────────────────────────────────────
  const encryptedColumns = [
    ...ENCRYPTED_COLUMNS,
    ...IDENTITY_ENCRYPTED_COLUMNS,
    ...DELIVERY_WORKER_ENCRYPTED_COLUMNS,
  ];
  const cryptoHealth = cryptoHealthHandler(
    rotationAwareCryptoHealth(cryptoRuntime, (keyId) => countRecordsUnderKey(db, keyId, encryptedColumns), {
      countByKeyId: () => countRecordsByKeyId(db, encryptedColumns),
    }),
  );
  router.on('GET', '/health/crypto', (req, res) => cryptoHealth(req, res));
  registerHealthRoutes(router, {
    checks: {
      crypto: () => ({ status: cryptoRuntime.health().status === 'healthy' ? 'ok' : 'fail' }),
      database: async () => {
        await db.query('SELECT 1');
        return { status: 'ok' };
      },
    },
  });
  router.on('GET', '/metrics', metricsHandler(metrics, { token: config.metricsToken?.reveal() ?? null }));
  const page = demoPage({ pipelineKey: demo.pipelineKey });
  router.on('GET', '/demo', (_req, res) => {
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-security-policy':
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'",
    });
    res.end(page);
  });
  const counts = liveCounts(metrics);
  router.on('GET', '/demo/stats', async (req, res) => {
    const now = await counts();
    // The last body the sink received is what a vendor would get: the demo shows it to whoever runs Signal on
    // this machine, and to nobody else (the listener is on every interface, and the body holds traits).
    const last = isLoopback(req.socket.remoteAddress) ? (sink.recent()[0]?.body ?? null) : null;
    sendJson(res, 200, { ...now, sink: sink.received(), last }, { 'cache-control': 'no-store' });
  });

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
  let port = config.port;
  // Last to start, first to stop: no request arrives before every service is ready or after they stop.
  lifecycle.add({
    name: 'http',
    async start() {
      port = (await server.listen(config.port)).port;
    },
    stop: (deadlineMs) => server.close(deadlineMs),
  });

  let ticker: NodeJS.Timeout | undefined;
  lifecycle.add({
    name: 'live-counts',
    async start() {
      if (!process.stdout.isTTY) return;
      ticker = setInterval(async () => {
        const c = await counts();
        process.stdout.write(
          `\r  received ${c.received}  delivered ${c.delivered}  retried ${c.retried}  failed ${c.failed}   `,
        );
      }, 1000);
      ticker.unref();
    },
    async stop() {
      if (ticker) clearInterval(ticker);
    },
  });

  return {
    lifecycle,
    port: () => port,
    demo,
    announce() {
      const base = `${config.tls ? 'https' : 'http'}://localhost:${port}`;
      logger.info({ url: base }, 'signal is running');
      const lines = [
        '',
        `  Signal is running on ${base}`,
        `    demo page       ${base}/demo`,
        `    collection      ${base}/v1/t  /v1/p  /v1/i  /v1/g  /v1/batch  /v1/events  (Datafly.js: ${base}/d.js)`,
        `    admin API       ${base}/v1/admin   (user ${demo.adminEmail})`,
        `    health          ${base}/health/ready  ${base}/health/crypto   metrics ${base}/metrics${config.metricsToken === null ? '' : ' (Bearer METRICS_TOKEN)'}`,
        `    vendor sink     ${sink.url} (local HTTPS, own CA)`,
        `    pipeline key    ${demo.pipelineKey}`,
      ];
      if (cryptoRuntime.developmentKeyPath) {
        lines.push(
          `  WARNING: development encryption key in ${cryptoRuntime.developmentKeyPath}; set ENCRYPTION_KEY in production`,
        );
      }
      process.stdout.write(`${lines.join('\n')}\n\n`);
    },
  };
}

/** received / delivered / retried / failed, read from the same metrics /metrics exports. */
function liveCounts(metrics: ReturnType<typeof createMetrics>) {
  async function sum(name: string, filter?: (labels: Record<string, unknown>) => boolean): Promise<number> {
    const metric = metrics.registry.getSingleMetric(name);
    if (!metric) return 0;
    const { values } = await metric.get();
    return values
      .filter((v) => !filter || filter(v.labels as Record<string, unknown>))
      .reduce((total, v) => total + v.value, 0);
  }
  return async () => ({
    received: await sum('signal_events_received_total'),
    delivered: await sum('signal_deliveries_total', (l) => l.outcome === 'delivered'),
    retried: await sum('signal_deliveries_total', (l) => l.outcome === 'retry'),
    failed: await sum('signal_deliveries_total', (l) => l.outcome === 'dead_letter'),
  });
}

/** A peer on this machine: 127.0.0.0/8, ::1, or an IPv4-mapped loopback address. */
function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return v4.startsWith('127.') || address === '::1';
}
