import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Bus,
  type BusCrypto,
  createKafkaBus,
  createPostgresBus,
  type KafkaBusConfig,
  parseKafkaBusConfig,
  type UnreadableListener,
} from '@signal/bus';
import { type Cache, createMemoryCache, createRedisCache } from '@signal/cache';
import type { SignalConfig } from '@signal/config';
import { createDatabase, type Database, type StoreError } from '@signal/store';
import type { Metrics } from '@signal/telemetry';

export interface InfraLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * The PostgreSQL schema of a deployment: SIGNAL_NAMESPACE folded to the characters a schema name takes, so
 * several deployments (or test runs) can share one server and every process of one deployment, `signal-cli
 * migrate` included, finds the same tables.
 */
export function databaseSchemaFor(namespace: string): string {
  const folded = namespace.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  return /^[a-z_]/.test(folded) ? folded.slice(0, 63) : `_${folded}`.slice(0, 63);
}

/**
 * The database from configuration: PostgreSQL when DATABASE_URL is set (pool of DB_MAX_CONNS, TLS from the
 * URL's sslmode/sslrootcert), else the embedded PGlite in SIGNAL_DATA_DIR — only where `allowEmbedded`
 * (the all-in-one); a production service without DATABASE_URL refuses to start. `onEmbeddedFatal`: the
 * embedded database stopped for good (PostgreSQL PANICked, e.g. on a failed fsync); the process should stop
 * and be restarted, which recovers the database from its WAL.
 */
export async function openDatabase(
  config: SignalConfig,
  logger: InfraLogger,
  options: {
    allowEmbedded: boolean;
    applicationName: string;
    onEmbeddedFatal?: (error: StoreError) => void;
  },
): Promise<Database> {
  const url = config.database.url?.reveal();
  if (url !== undefined) {
    return createDatabase({
      kind: 'postgres',
      url,
      maxConnections: config.database.maxConnections,
      schema: databaseSchemaFor(config.namespace),
      applicationName: options.applicationName,
      logger,
    });
  }
  if (!options.allowEmbedded) {
    throw new Error('DATABASE_URL must be set: this service needs a PostgreSQL server (postgres://…)');
  }
  return createDatabase({
    kind: 'pglite',
    dataDir: join(config.dataDir, 'pglite'),
    logger,
    ...(options.onEmbeddedFatal ? { onFatal: options.onEmbeddedFatal } : {}),
  });
}

/**
 * Budgets of the all-in-one's in-process cache, in entries, one per kind of state so that none can starve
 * another (docs/sizing.md, "Embedded mode"). Measured ~400 bytes per dedup marker or consent state and
 * ~200–250 bytes per claim or counter: about 150 MB when every budget is full.
 */
export interface EmbeddedCacheLimits {
  /**
   * The event processor's dedup markers (`dedup:` keys, one per event for 24 h). When full, the least
   * recently used marker is evicted: the dedup window shrinks to the last `dedupMarkers` events instead of
   * the pipeline stalling for a day.
   */
  readonly dedupMarkers: number;
  /** Consent state per visitor (`consent:` keys). When full, the least recently used visitor's state goes. */
  readonly consentStates: number;
  /**
   * Every other `setIfAbsent` key: single-use token ids (120 s), HMAC replay markers (11 min). Never
   * evicted; when full, claims fail with `capacity` and those requests are refused (fail closed).
   */
  readonly claims: number;
  /** Other `set` values (login lockouts). When full, the least recently used goes. */
  readonly values: number;
  /** Rate-limit and login-failure counters. When full, the least recently incremented goes. */
  readonly counters: number;
}

export const EMBEDDED_CACHE_LIMITS: EmbeddedCacheLimits = Object.freeze({
  dedupMarkers: 200_000,
  consentStates: 100_000,
  claims: 100_000,
  values: 10_000,
  counters: 50_000,
});

/**
 * Redis when REDIS_URL is set (TLS per REDIS_TLS_ENABLED / rediss://), else the in-process cache, with the
 * configured budgets (EMBEDDED_DEDUP_MARKERS, EMBEDDED_CONSENT_STATES, EMBEDDED_CLAIMS; EMBEDDED_CACHE_LIMITS
 * for the rest), `embeddedLimits` over them.
 */
export async function openCache(
  config: SignalConfig,
  logger: InfraLogger,
  options: { allowEmbedded: boolean; embeddedLimits?: Partial<EmbeddedCacheLimits> },
): Promise<Cache> {
  const url = config.redis.url?.reveal();
  if (url !== undefined) {
    return createRedisCache({
      url,
      namespace: config.namespace,
      logger,
      ...(config.redis.tls.enabled
        ? {
            tls: {
              enabled: true,
              ...(config.redis.tls.caCertPath ? { caPath: config.redis.tls.caCertPath } : {}),
            },
          }
        : {}),
    });
  }
  if (!options.allowEmbedded) {
    throw new Error('REDIS_URL must be set: this service shares state with its replicas through Redis');
  }
  const limits = { ...EMBEDDED_CACHE_LIMITS, ...config.embeddedCache, ...options.embeddedLimits };
  return createMemoryCache({
    namespace: config.namespace,
    limits: { claims: limits.claims, values: limits.values, counters: limits.counters },
    // Key prefixes owned by the event processor (`dedup:v2:…`) and @signal/consent (`consent:v2:…`, and `consent:v1:…` written before org scoping).
    evictableFamilies: [
      { keyPrefix: 'dedup:', maxEntries: limits.dedupMarkers },
      { keyPrefix: 'consent:', maxEntries: limits.consentStates },
    ],
    logger,
  });
}

/**
 * The Kafka bus settings from configuration: brokers, TLS (with the CA file at KAFKA_TLS_CA_CERT_PATH, read
 * now so a missing file stops start-up), SASL, the client id (KAFKA_CLIENT_ID, else the service's own name)
 * and the replication factor of topics the service creates. Used by the services and `signal-cli kafka`.
 */
export function kafkaBusSettings(config: SignalConfig, serviceName: string): KafkaBusConfig {
  const kafka = config.bus.kafka;
  if (kafka.brokers.length === 0) {
    throw new Error('KAFKA_BROKERS must be set: list the Kafka bootstrap brokers as host:port,host:port');
  }
  let ca: string[] | undefined;
  if (kafka.tls.caCertPath !== null) {
    let pem: string;
    try {
      pem = readFileSync(kafka.tls.caCertPath, 'utf8');
    } catch (err) {
      const reason = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
      throw new Error(
        `KAFKA_TLS_CA_CERT_PATH must name a readable PEM file (${kafka.tls.caCertPath}: ${reason})`,
      );
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
      throw new Error(
        `KAFKA_TLS_CA_CERT_PATH must name a PEM file with at least one CERTIFICATE block (${kafka.tls.caCertPath} has none)`,
      );
    }
    ca = [pem];
  }
  return parseKafkaBusConfig({
    clientId: kafka.clientId ?? serviceName,
    brokers: [...kafka.brokers],
    defaultReplicationFactor: kafka.replicationFactor,
    ...(kafka.tls.enabled ? { tls: ca === undefined ? {} : { ca } } : {}),
    ...(kafka.sasl === null
      ? {}
      : {
          sasl: {
            mechanism: kafka.sasl.mechanism,
            username: kafka.sasl.username,
            password: kafka.sasl.password.reveal(),
          },
        }),
  });
}

/**
 * BUS=kafka (KAFKA_* settings, see `kafkaBusSettings`) or the PostgreSQL bus on the given database. Payloads are
 * sealed with the process's crypto service (data class `bus`); a payload that does not open halts its
 * partition and counts in `signal_bus_unreadable_total{topic,reason}`.
 */
export function openBus(
  config: SignalConfig,
  db: Database,
  logger: InfraLogger,
  clientId: string,
  sealing: { readonly crypto: BusCrypto; readonly metrics?: Metrics },
): Bus {
  const { crypto } = sealing;
  const counter = sealing.metrics?.counter(
    'signal_bus_unreadable_total',
    'Bus payloads that could not be opened (the partition halts there until they do)',
    ['topic', 'reason'],
  );
  const onUnreadable: UnreadableListener = ({ topic, reason }) => counter?.inc({ topic, reason });
  if (config.bus.kind === 'kafka') {
    return createKafkaBus(kafkaBusSettings(config, clientId), { logger, crypto, onUnreadable });
  }
  return createPostgresBus({
    db,
    logger,
    crypto,
    onUnreadable,
    compressRuns: config.bus.compressBatches,
  });
}
