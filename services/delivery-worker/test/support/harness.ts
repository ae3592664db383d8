import { randomBytes, randomUUID } from 'node:crypto';
import { type Bus, busMigrations, createPostgresBus, type PostgresBusSettings, publishTo } from '@signal/bus';
import { createMemoryCache } from '@signal/cache';
import {
  type ConsentRequirement,
  type ConsentStateStore,
  createCacheConsentStateStore,
} from '@signal/consent';
import {
  type CryptoService,
  createCryptoService,
  createKeyring,
  type EncryptionContext,
} from '@signal/crypto';
import { createEventProcessor, type EventProcessor } from '@signal/event-processor';
import { type CanonicalEvent, topics } from '@signal/events';
import {
  type ConsentOfRecord,
  createConsentOfRecord,
  createErasedSubjects,
  createVisitorConsentStore,
  type ErasedSubjects,
  identityHubMigrations,
  loadBlindIndex,
} from '@signal/identity-hub';
import type { OrgDataLayerConfigInput, PipelineStepInput } from '@signal/org-data-layer';
import { createDatabase, type Database, migrate } from '@signal/store';
import { createMetrics, type Metrics } from '@signal/telemetry';
import {
  type CredentialSource,
  createDeliveryWorker,
  type DeliveryWorker,
  deliveryWorkerMigrations,
  type WorkerIntegrationInput,
} from '../../src/index';

export const silentLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** Where the tests' vendors listen: loopback, which the worker refuses unless allowed. */
export const LOOPBACK: readonly string[] = ['127.0.0.1/32', '::1/128'];
/** Fast bus timings so tests take seconds. */
export const TEST_BUS: PostgresBusSettings = {
  sessionTimeoutMs: 2000,
  heartbeatIntervalMs: 200,
  pollIntervalMs: 20,
  retryBackoffMs: 50,
  defaultStopDeadlineMs: 5000,
};

/** Where credentials live, so a ciphertext copied to another row fails to open (ARCHITECTURE §5). */
export function credentialsContext(integrationId: string): EncryptionContext {
  return {
    purpose: 'integration-credentials',
    dataClass: 'credentials',
    table: 'integrations',
    column: 'credentials',
    rowId: integrationId,
  };
}

export interface TestIntegration {
  readonly id: string;
  readonly pipelineId: string;
  readonly vendor: string;
  enabled: boolean;
  settings: unknown;
  consent: ConsentRequirement;
  pipeline?: PipelineStepInput[];
  extraCaPem?: string;
  /** v1 text ciphertext, as the control plane stores it. */
  credentials: string | null;
}

/**
 * Typed in-memory control plane: the processor's and the worker's source ports over maps, credentials
 * encrypted with @signal/crypto in the context of their row.
 */
export class MemoryControlPlane {
  readonly crypto: CryptoService = createCryptoService({
    keyring: createKeyring({ current: randomBytes(32) }),
  });
  readonly dataLayers = new Map<string, OrgDataLayerConfigInput>();
  readonly integrations = new Map<string, TestIntegration>();

  sealCredentials(integrationId: string, credentials: unknown): string {
    return this.crypto.sealText(JSON.stringify(credentials), credentialsContext(integrationId));
  }

  addIntegration(
    integration: Omit<TestIntegration, 'credentials'> & { credentials: unknown },
  ): TestIntegration {
    const stored: TestIntegration = {
      ...integration,
      credentials: this.sealCredentials(integration.id, integration.credentials),
    };
    this.integrations.set(stored.id, stored);
    return stored;
  }

  /** A signed webhook of `pipelineId` to `url` (a test vendor whose CA is `caPem`), marketing consent. */
  addWebhook(options: { pipelineId: string; url: string; caPem: string; id?: string }): string {
    const id = options.id ?? `wh-${randomBytes(4).toString('hex')}`;
    this.addIntegration({
      id,
      pipelineId: options.pipelineId,
      vendor: 'webhook',
      enabled: true,
      settings: { url: options.url },
      consent: { category: 'marketing' },
      extraCaPem: options.caPem,
      credentials: { signingSecret: SIGNING_SECRET },
    });
    return id;
  }

  readonly processorSources = {
    dataLayers: {
      getConfig: async (orgId: string): Promise<OrgDataLayerConfigInput> =>
        this.dataLayers.get(orgId) ?? { version: 0 },
    },
    integrations: {
      listIntegrations: async (pipelineId: string) =>
        [...this.integrations.values()]
          .filter((i) => i.pipelineId === pipelineId)
          .map((i) => ({
            id: i.id,
            vendor: i.vendor,
            enabled: i.enabled,
            consent: i.consent,
            pipeline: i.pipeline ?? [],
          })),
    },
  };

  readonly workerIntegrations = {
    getIntegration: async (id: string): Promise<WorkerIntegrationInput | null> => {
      const i = this.integrations.get(id);
      if (i === undefined) return null;
      return {
        id: i.id,
        vendor: i.vendor,
        enabled: i.enabled,
        settings: i.settings,
        consent: i.consent,
        ...(i.extraCaPem === undefined ? {} : { extraCaPem: i.extraCaPem }),
      };
    },
    listIntegrationIds: async () => [...this.integrations.keys()],
  };

  readonly credentialSource: CredentialSource = {
    getCredentials: async (integrationId) => {
      const ciphertext = this.integrations.get(integrationId)?.credentials;
      if (ciphertext === null || ciphertext === undefined) throw new Error('no credentials');
      return JSON.parse(
        this.crypto.openText(ciphertext, credentialsContext(integrationId)).toString('utf8'),
      ) as unknown;
    },
  };
}

export interface Harness {
  readonly db: Database;
  readonly bus: Bus;
  readonly namespace: string;
  readonly control: MemoryControlPlane;
  readonly metrics: Metrics;
  readonly consentStore: ConsentStateStore;
  readonly processor: EventProcessor;
  readonly worker: DeliveryWorker;
  /** The erasure records both read (`HarnessOptions.identityGraph`). */
  readonly erasures: ErasedSubjects | undefined;
  publishRaw(events: readonly CanonicalEvent[]): Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly workerSettings?: Parameters<typeof createDeliveryWorker>[0]['settings'];
  readonly db?: Database;
  /** Over `TEST_BUS` (whose 2 s leases make takeovers quick to test). */
  readonly bus?: Partial<PostgresBusSettings>;
  /**
   * The identity graph in the same database, as the all-in-one has it: its tables and blind-index key are
   * made, and the processor and worker read its erasure records (`Harness.erasures`), which also name
   * consents of record.
   */
  readonly identityGraph?: boolean;
}

export async function createHarness(options: HarnessOptions = {}): Promise<Harness> {
  const db = options.db ?? (await createDatabase({ kind: 'pglite' }));
  await migrate(db, [...busMigrations, ...deliveryWorkerMigrations]);
  const namespace = `t${randomBytes(4).toString('hex')}`;
  const control = new MemoryControlPlane();
  const bus = createPostgresBus({
    db,
    logger: silentLogger,
    crypto: control.crypto,
    ...TEST_BUS,
    ...options.bus,
  });
  const cache = createMemoryCache({ namespace });
  let erasures: ErasedSubjects | undefined;
  // Consents of record: in the identity tables, named only when `erasures` knows the blind-index key.
  let userConsent: ConsentOfRecord | undefined;
  if (options.identityGraph === true) {
    await migrate(db, identityHubMigrations);
    // The identity hub's key, as its first start makes it.
    await loadBlindIndex(db, control.crypto);
    erasures = createErasedSubjects({ db, crypto: control.crypto });
    userConsent = createConsentOfRecord({ db, cache });
  }
  // Visitors' consent states: in the identity tables too where they are, as in the all-in-one.
  const consentStore: ConsentStateStore =
    options.identityGraph === true
      ? createVisitorConsentStore({ db, cache })
      : createCacheConsentStateStore({ cache });
  const metrics = createMetrics({ processMetrics: false });
  const processor = createEventProcessor({
    bus,
    dedup: cache,
    consentStore,
    ...(userConsent === undefined ? {} : { userConsent }),
    ...control.processorSources,
    namespace,
    logger: silentLogger,
    metrics,
    ...(erasures === undefined ? {} : { erasures }),
    settings: { configRefreshMs: 0, batchSize: 200 },
  });
  const worker = createDeliveryWorker({
    bus,
    db,
    consentStore,
    ...(userConsent === undefined ? {} : { userConsent }),
    integrations: control.workerIntegrations,
    credentials: control.credentialSource,
    namespace,
    crypto: control.crypto,
    logger: silentLogger,
    metrics,
    ...(erasures === undefined ? {} : { erasures }),
    settings: {
      integrationRefreshMs: 200,
      credentialsTtlMs: 0,
      retryPollMs: 20,
      maintenanceIntervalMs: 200,
      requestTimeoutMs: 2000,
      // The vendors here are HTTPS servers on loopback (destination-guard.ts refuses them otherwise).
      allowedPrivateDestinations: LOOPBACK,
      ...options.workerSettings,
    },
  });
  return {
    db,
    bus,
    namespace,
    control,
    metrics,
    consentStore,
    processor,
    worker,
    erasures,
    async publishRaw(events) {
      await publishTo(bus, topics.rawEvents(namespace), events);
    },
    async close() {
      await processor.stop(2000);
      await worker.stop(2000);
      await bus.close();
      await cache.close();
      if (options.db === undefined) await db.close();
    },
  };
}

const BROWSER_UA =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15';

/** A canonical event as the gateway would stamp it; consent granted unless overridden. */
export function makeEvent(overrides: Partial<CanonicalEvent> = {}): CanonicalEvent {
  const now = new Date().toISOString();
  return {
    type: 'track',
    event: 'Order Completed',
    anonymousId: `anon-${randomUUID()}`,
    messageId: randomUUID(),
    properties: { value: 42, currency: 'EUR' },
    traits: { email: 'Jane.Doe@Example.com', first_name: 'Jane' },
    context: {
      consent: { categories: { analytics: true, marketing: true } },
      provenance: 'pipeline_key',
      userAgent: BROWSER_UA,
      ip: '203.0.113.9',
      page: { url: 'https://shop.example/checkout' },
    },
    timestamp: now,
    receivedAt: now,
    org: 'org_1',
    pipelineId: 'pl_1',
    ...overrides,
  };
}

export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const SIGNING_SECRET = 'whsec_0123456789abcdefghijklmnopqrstuv';
