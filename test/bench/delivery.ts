/**
 * Deliveries/s to a local HTTPS sink through the worker's delivery path (`createBatchDeliverer`: ledger
 * check, stage-2 consent, circuit breaker, rate limiter, webhook adapter with HMAC signature, strict-TLS
 * dispatcher, ledger write on PGlite), beside raw `undici.request` of the same number of POSTs of the same
 * size to the same sink through an equally strict Agent, in the same run. Both send one request at a time.
 *
 *   pnpm bench delivery
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:https';
import { request } from 'undici';
import { busMigrations, createPostgresBus, type Decoded } from '../../packages/bus/src/index';
import { createMemoryCache } from '../../packages/cache/src/index';
import { createCacheConsentStateStore } from '../../packages/consent/src/index';
import { createCryptoService, createKeyring } from '../../packages/crypto/src/index';
import type { DeliveryMessage } from '../../packages/events/src/index';
import {
  createTestPki,
  createVendorDispatcher,
  createVendorDispatcherRegistry,
} from '../../packages/http/src/index';
import { createDatabase, migrate } from '../../packages/store/src/index';
import { createMetrics } from '../../packages/telemetry/src/index';
import {
  createBatchDeliverer,
  createDeliveryLedger,
  createRetryStore,
  createRuntimeDirectory,
  DEFAULT_BACKOFF,
  deliveryWorkerMigrations,
  workerMetrics,
} from '../../services/delivery-worker/src/index';
import { makeEvent, SIGNING_SECRET } from '../../services/delivery-worker/test/support/harness';

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const N = 3000;
const BATCH = 100;

const pki = await createTestPki();
const ca = await pki.createCa({ commonName: 'Bench CA' });
const cert = await ca.issueServerCertificate({ ipAddresses: ['127.0.0.1'] });
let received = 0;
const server = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
  req.resume();
  req.on('end', () => {
    received += 1;
    res.end('{}');
  });
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const address = server.address();
if (address === null || typeof address === 'string') throw new Error('no address');
const url = `https://127.0.0.1:${address.port}/hook`;

const db = await createDatabase({ kind: 'pglite' });
await migrate(db, [...busMigrations, ...deliveryWorkerMigrations]);
const crypto = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) });
const bus = createPostgresBus({
  db,
  logger: silent,
  crypto,
});
const cache = createMemoryCache();
const dispatchers = createVendorDispatcherRegistry();
const deliverer = createBatchDeliverer({
  runtimes: createRuntimeDirectory({
    integrations: {
      getIntegration: async (id) => ({
        id,
        vendor: 'webhook',
        enabled: true,
        settings: { url },
        consent: { category: 'marketing' },
        extraCaPem: ca.certPem,
      }),
      listIntegrationIds: async () => [],
    },
    credentials: { getCredentials: async () => ({ signingSecret: SIGNING_SECRET }) },
    dispatchers,
    refreshMs: 60_000,
    logger: silent,
  }),
  ledger: createDeliveryLedger(db),
  retries: createRetryStore(db, crypto),
  consentStore: createCacheConsentStateStore({ cache }),
  bus,
  namespace: 'bench',
  policy: DEFAULT_BACKOFF,
  rateLimitPerSecond: 1_000_000,
  breaker: { failureThreshold: 5, openMs: 30_000, maxOpenMs: 300_000 },
  requestTimeoutMs: 10_000,
  deferMs: 30_000,
  metrics: workerMetrics(createMetrics({ processMetrics: false })),
  logger: silent,
});

function items(count: number): Decoded<DeliveryMessage>[] {
  return Array.from({ length: count }, (_, i) => {
    const value: DeliveryMessage = {
      integrationId: 'wh-bench',
      event: makeEvent({ anonymousId: `anon-${i % 500}` }),
      attempt: { number: 1 },
    };
    const message = {
      topic: 'bench.delivery-wh-bench',
      partition: 0,
      offset: String(i),
      key: value.event.anonymousId ?? '',
      value: JSON.stringify(value),
      headers: {},
      timestamp: Date.now(),
    };
    return { ok: true as const, value, message };
  });
}

async function workerPath(count: number): Promise<number> {
  const all = items(count);
  const before = received;
  const started = performance.now();
  for (let i = 0; i < all.length; i += BATCH) await deliverer.deliver('wh-bench', all.slice(i, i + BATCH));
  const seconds = (performance.now() - started) / 1000;
  if (received - before !== count) throw new Error(`sink got ${received - before} of ${count}`);
  return count / seconds;
}

async function rawUndici(count: number): Promise<number> {
  const agent = createVendorDispatcher({ extraCaPem: ca.certPem });
  const body = JSON.stringify(makeEvent());
  const started = performance.now();
  for (let i = 0; i < count; i += 1) {
    const res = await request(url, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json' },
      body,
    });
    await res.body.text();
  }
  const seconds = (performance.now() - started) / 1000;
  await agent.close();
  return count / seconds;
}

await workerPath(300);
await rawUndici(300);
const raw = await rawUndici(N);
const worker = await workerPath(N);
console.log(`deliveries: ${N}, webhook (one event per request), batches of ${BATCH}, one request at a time`);
console.log(
  `baseline raw undici.request, strict-TLS Agent : ${Math.round(raw).toLocaleString('en')} requests/s`,
);
console.log(
  `worker delivery path (ledger, consent, TLS)    : ${Math.round(worker).toLocaleString('en')} deliveries/s`,
);
console.log(`ratio worker / raw                             : ${(worker / raw).toFixed(3)} (target ≥ 0.7)`);

await dispatchers.close();
await bus.close();
await cache.close();
await db.close();
server.close();
await pki.cleanup();
