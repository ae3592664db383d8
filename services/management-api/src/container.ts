import { auditMigrations, createAuditLog, cryptoAuditSink } from '@signal/audit';
import type { Bus } from '@signal/bus';
import { type Cache, createMemoryCache, createRedisCache } from '@signal/cache';
import type { SignalConfig } from '@signal/config';
import {
  controlPlaneMigrations,
  countRecordsByKeyId,
  countRecordsUnderKey,
  ENCRYPTED_COLUMNS,
  type EncryptedColumn,
} from '@signal/control-plane';
import {
  createCryptoService,
  createKeyring,
  cryptoHealth,
  cryptoHealthHandler,
  type Keyring,
} from '@signal/crypto';
import {
  createSubjectPurge,
  DELIVERY_WORKER_ENCRYPTED_COLUMNS,
  deliveryWorkerMigrations,
} from '@signal/delivery-worker';
import {
  createRouter,
  createServer,
  metricsHandler,
  registerHealthRoutes,
  type SignalHttpServer,
} from '@signal/http';
import {
  createIdentityErasure,
  createIdentityGraph,
  IDENTITY_ENCRYPTED_COLUMNS,
  loadBlindIndex,
} from '@signal/identity-hub';
import {
  bootstrapCryptoWithKms,
  type KmsCryptoRuntime,
  openBus,
  openDatabase,
  rotationAwareCryptoHealth,
} from '@signal/runtime';
import { type Database, requireMigrations } from '@signal/store';
import { createLogger, createMetrics, type Logger } from '@signal/telemetry';
import { ManagementApiConfigError, managementApiSettings } from './config';
import { managementApiMigrations } from './crypto/reencrypt.migrations';
import { createManagementApi, type ManagementApi } from './management-api';

/** Every migration the Management API's database needs, in order. */
export const MANAGEMENT_API_SCHEMA = Object.freeze([
  ...auditMigrations,
  ...controlPlaneMigrations,
  ...managementApiMigrations,
]);

export interface Container {
  readonly logger: Logger;
  readonly api: ManagementApi;
  readonly server: SignalHttpServer;
  /** Starts the API, then listens on `config.port`. */
  start(): Promise<void>;
  /** Stops intake, drains requests (10 s), pauses the re-encryption loop, closes cache and database. */
  stop(): Promise<void>;
}

function keyringFrom(config: SignalConfig): Keyring | undefined {
  // Envelope mode (a KMS provider, or ENCRYPTION_ENVELOPE=true): built after the database is open.
  if (config.encryption.envelope) return undefined;
  const key = config.encryption.key?.reveal();
  if (key === undefined) {
    // This service stores vendor credentials and HMAC secrets: it never runs without encryption.
    throw new ManagementApiConfigError(
      'ENCRYPTION_KEY must be set (64 hexadecimal characters; generate one with `pnpm signal-cli generate-key`)',
    );
  }
  const previous = config.encryption.previousKey?.reveal();
  return createKeyring({
    current: Buffer.from(key, 'hex'),
    previous: previous === undefined ? undefined : Buffer.from(previous, 'hex'),
  });
}

/**
 * The deployment's database, as every other service opens it (PostgreSQL from DATABASE_URL in the
 * SIGNAL_NAMESPACE schema, or the embedded PGlite in SIGNAL_DATA_DIR/pglite that `signal-cli migrate` and the
 * all-in-one use). Like the other services this process never migrates: on a database `signal-cli migrate`
 * has not brought to this release it refuses to start, naming the command.
 */
async function openMigratedDatabase(config: SignalConfig, logger: Logger): Promise<Database> {
  const db = await openDatabase(config, logger, { allowEmbedded: true, applicationName: 'management-api' });
  try {
    await requireMigrations(db, MANAGEMENT_API_SCHEMA, 'management-api');
    // A DLQ index or retry schedule of another release is refused too: its columns are not the ones this
    // release opens, re-encrypts and counts (`delivery_dlq.letter`, `delivery_retries.payload`).
    if (await tableExists(db, 'delivery_dlq')) {
      await requireMigrations(db, deliveryWorkerMigrations, 'management-api (dead letters)');
    }
  } catch (err) {
    await db.close();
    throw err;
  }
  return db;
}

async function openCache(config: SignalConfig, logger: Logger): Promise<Cache> {
  const url = config.redis.url?.reveal();
  if (url === undefined) return createMemoryCache({ namespace: config.namespace });
  const caPath = config.redis.tls.caCertPath;
  return createRedisCache({
    url,
    namespace: config.namespace,
    tls: { enabled: config.redis.tls.enabled, ...(caPath === null ? {} : { caPath }) },
    logger,
  });
}

async function tableExists(db: Database, table: string): Promise<boolean> {
  const { rows } = await db.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [
    table,
  ]);
  return rows[0]?.present === true;
}

/**
 * The other services' tables this API works on when the deployment has them (`signal-cli migrate` creates
 * every service's tables): the delivery worker's DLQ index (its sealed column, and the retry schedule's, join
 * the re-encryption job and the key counts; the routes also need, on the PostgreSQL bus, the bus tables a
 * replay publishes to) and the identity graph (erasure; its encrypted columns join the re-encryption job).
 * This process does not migrate them; without them those routes answer 503.
 */
async function deploymentTables(db: Database, config: SignalConfig) {
  const dlqTable = await tableExists(db, 'delivery_dlq');
  const dlq = dlqTable && (config.bus.kind === 'kafka' || (await tableExists(db, 'bus_segments')));
  const identity = await tableExists(db, 'identity_traits');
  return { dlqTable, dlq, identity };
}

/** The standalone Management API process, wired by hand: adapters, then services, then transport. */
export async function buildContainer(config: SignalConfig): Promise<Container> {
  // Configuration problems first, before anything is opened.
  managementApiSettings(config);
  const keyring = keyringFrom(config);
  const logger = createLogger({ level: config.logLevel, name: 'management-api' });
  const metrics = createMetrics();
  const db = await openMigratedDatabase(config, logger.child({ component: 'store' }));
  const cache = await openCache(config, logger.child({ component: 'cache' }));
  const audit = createAuditLog({ db, logger: logger.child({ component: 'audit' }) });
  const cryptoSink = cryptoAuditSink(audit, logger.child({ component: 'crypto-audit' }));
  const cryptoOps = metrics.counter('signal_crypto_operations_total', 'Seal/open operations', [
    'op',
    'key_id',
    'result',
  ]);
  const cryptoRuntime: KmsCryptoRuntime =
    keyring === undefined
      ? await bootstrapCryptoWithKms({
          config,
          logger: logger.child({ component: 'crypto' }),
          metrics,
          audit: cryptoSink,
          db,
          service: 'management-api',
        })
      : {
          crypto: createCryptoService({
            keyring,
            audit: cryptoSink,
            onOperation: (op, keyId, result) => cryptoOps.inc({ op, key_id: keyId, result }),
          }),
          health: () => cryptoHealth(keyring),
          developmentKeyPath: null,
          close: async () => {},
        };
  const { crypto, health } = cryptoRuntime;
  const present = await deploymentTables(db, config);
  const bus: Bus | undefined = present.dlq
    ? openBus(config, db, logger.child({ component: 'bus' }), 'management-api', { crypto, metrics })
    : undefined;
  const graph = present.identity
    ? createIdentityGraph({
        db,
        crypto,
        index: await loadBlindIndex(db, crypto),
        ...(cryptoRuntime.subjectKeys === undefined ? {} : { profileKeys: cryptoRuntime.subjectKeys }),
      })
    : undefined;
  const columns: readonly EncryptedColumn[] = [
    ...ENCRYPTED_COLUMNS,
    ...(present.identity ? IDENTITY_ENCRYPTED_COLUMNS : []),
    ...(present.dlqTable ? DELIVERY_WORKER_ENCRYPTED_COLUMNS : []),
  ];
  logger.info(
    { dlq: present.dlq, identity: present.identity },
    'optional routes wired from the tables this deployment has',
  );
  const api = createManagementApi({
    db,
    cache,
    crypto,
    audit,
    logger: logger.child({ component: 'management-api' }),
    metrics,
    config,
    trustedProxyHops: config.gateway.trustedProxyHops,
    trustedProxyCidrs: config.gateway.trustedProxyCidrs,
    operatorOrg: config.management.operatorOrg,
    reencryption: {
      columns,
      ...(cryptoRuntime.rewrapKeys === undefined ? {} : { rewrapKeys: cryptoRuntime.rewrapKeys }),
    },
    ...(bus === undefined ? {} : { dlq: { db, bus, namespace: config.namespace } }),
    ...(graph === undefined
      ? {}
      : {
          identityErasure: createIdentityErasure({
            graph,
            audit,
            logger: logger.child({ component: 'identity-erasure' }),
            ...(cryptoRuntime.shredSubjects === undefined ? {} : { shred: cryptoRuntime.shredSubjects }),
            // The delivery worker's dead letters and retries in this database hold the person's events too.
            ...(present.dlqTable ? { deliveries: createSubjectPurge(db, crypto) } : {}),
          }),
        }),
  });

  const router = createRouter({ logger });
  api.register(router);
  router.on(
    'GET',
    '/health/crypto',
    cryptoHealthHandler(
      rotationAwareCryptoHealth({ crypto, health }, (keyId) => countRecordsUnderKey(db, keyId, columns), {
        countByKeyId: () => countRecordsByKeyId(db, columns),
      }),
    ),
  );
  router.on(
    'GET',
    '/metrics',
    metricsHandler(metrics, { logger, token: config.metricsToken?.reveal() ?? null }),
  );
  registerHealthRoutes(router, {
    logger,
    checks: {
      database: async () => {
        await db.query('SELECT 1');
        const previous = crypto.keyring.previousKeyId;
        // During a rotation: how many records still need the previous key (0 → it can be removed).
        return previous === undefined
          ? { status: 'ok' }
          : {
              status: 'ok',
              details: { records_under_previous_key: await countRecordsUnderKey(db, previous, columns) },
            };
      },
      cache: async () => {
        await cache.ping();
        return { status: 'ok' };
      },
      crypto: () => ({ status: health().status === 'healthy' ? 'ok' : 'fail' }),
    },
  });
  const server = createServer({
    handler: (req, res) => router.handle(req, res),
    ...(config.tls === null
      ? {}
      : {
          tls: {
            certPath: config.tls.certPath,
            keyPath: config.tls.keyPath,
            minVersion: config.tls.minVersion === '1.3' ? 'TLSv1.3' : 'TLSv1.2',
          },
        }),
    logger,
  });

  return {
    logger,
    api,
    server,
    async start() {
      await api.start();
      const address = await server.listen(config.port);
      logger.info({ port: address.port, tls: config.tls !== null }, 'management API listening');
    },
    async stop() {
      await server.close(10_000);
      await api.stop();
      await bus?.close();
      await cryptoRuntime.close();
      await cryptoSink.drain();
      await cache.close();
      await db.close();
    },
  };
}
