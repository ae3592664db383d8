/**
 * A delivery worker in its own process, for the SIGKILL fault test: PostgreSQL (shared with the test, own
 * schema), in-process cache, one webhook integration described by SIGNAL_FAULT_INTEGRATION (JSON).
 */
import { busMigrations, createPostgresBus } from '../../../packages/bus/src/index';
import { createMemoryCache } from '../../../packages/cache/src/index';
import { createCacheConsentStateStore } from '../../../packages/consent/src/index';
import { createCryptoService, createKeyring } from '../../../packages/crypto/src/index';
import { createDatabase, migrate } from '../../../packages/store/src/index';
import { createMetrics } from '../../../packages/telemetry/src/index';
import { createDeliveryWorker, deliveryWorkerMigrations } from '../../../services/delivery-worker/src/index';

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is required`);
  return value;
};
const integration = JSON.parse(env('SIGNAL_FAULT_INTEGRATION')) as {
  id: string;
  url: string;
  caPem: string;
  signingSecret: string;
};

const db = await createDatabase({
  kind: 'postgres',
  url: env('SIGNAL_FAULT_DB'),
  schema: env('SIGNAL_FAULT_SCHEMA'),
  maxConnections: 8,
});
await migrate(db, [...busMigrations, ...deliveryWorkerMigrations]);
// The deployment's key: the bus seals its segments, the worker its DLQ rows, with it.
const crypto = createCryptoService({
  keyring: createKeyring({ current: Buffer.from(env('SIGNAL_FAULT_BUS_KEY'), 'hex') }),
});
const bus = createPostgresBus({
  db,
  logger: silent,
  crypto,
  sessionTimeoutMs: 1500,
  heartbeatIntervalMs: 150,
  pollIntervalMs: 20,
});
const worker = createDeliveryWorker({
  bus,
  db,
  consentStore: createCacheConsentStateStore({ cache: createMemoryCache() }),
  integrations: {
    getIntegration: async (id) =>
      id === integration.id
        ? {
            id,
            vendor: 'webhook',
            enabled: true,
            settings: { url: integration.url },
            consent: { category: 'marketing' },
            extraCaPem: integration.caPem,
          }
        : null,
    listIntegrationIds: async () => [integration.id],
  },
  credentials: { getCredentials: async () => ({ signingSecret: integration.signingSecret }) },
  namespace: env('SIGNAL_FAULT_NAMESPACE'),
  crypto,
  logger: silent,
  metrics: createMetrics({ processMetrics: false }),
  settings: {
    consumersPerIntegration: 4,
    batchSize: 50,
    rateLimitPerSecond: 100_000,
    retryPollMs: 50,
    // The vendor sink listens on loopback.
    allowedPrivateDestinations: ['127.0.0.1/32', '::1/128'],
  },
});
await worker.start();
process.stdout.write('worker ready\n');
