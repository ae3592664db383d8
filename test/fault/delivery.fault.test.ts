/**
 * Fault tests of the processor → worker → vendor path (ARCHITECTURE §6: nothing lost, nothing sent twice).
 *
 * 1. 10,000 events while the worker, a separate process on a shared PostgreSQL, is SIGKILLed 5 times.
 * 2. A vendor answering 30 % 500, 429 with Retry-After and stalls: everything ends delivered or dead-lettered,
 *    with retries spaced by the schedule (no storm).
 * 3. A vendor refusing everything (400): straight to the DLQ; replay once fixed: delivered exactly once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busMigrations, createPostgresBus, publishTo } from '../../packages/bus/src/index';
import { createMemoryCache } from '../../packages/cache/src/index';
import { createCacheConsentStateStore } from '../../packages/consent/src/index';
import { createCryptoService, createKeyring } from '../../packages/crypto/src/index';
import { type CanonicalEvent, topics } from '../../packages/events/src/index';
import { createTestPki, type TestCa, type TestPki } from '../../packages/http/src/index';
import { createDatabase, type Database, migrate } from '../../packages/store/src/index';
import { createMetrics } from '../../packages/telemetry/src/index';
import { POSTGRES_URL, postgresAvailable, repoRoot } from '../../packages/testkit/src/index';
import {
  createDlqStore,
  deliveryWorkerMigrations,
  replayDlq,
} from '../../services/delivery-worker/src/index';
import {
  createHarness,
  makeEvent,
  SIGNING_SECRET,
  silentLogger,
  waitFor,
} from '../../services/delivery-worker/test/support/harness';
import { type HttpsSink, startHttpsSink } from '../../services/delivery-worker/test/support/https-sink';
import { createEventProcessor } from '../../services/event-processor/src/index';

let pki: TestPki;
let ca: TestCa;
const sinks: HttpsSink[] = [];

async function sink(): Promise<HttpsSink> {
  const cert = await ca.issueServerCertificate({ ipAddresses: ['127.0.0.1'] });
  const s = await startHttpsSink({ cert: cert.certPem, key: cert.keyPem });
  sinks.push(s);
  return s;
}

beforeAll(async () => {
  pki = await createTestPki();
  ca = await pki.createCa({ commonName: 'Signal Fault CA' });
});
afterAll(async () => {
  for (const s of sinks) await s.close();
  await pki?.cleanup();
});

const available = await postgresAvailable();

describe.skipIf(!available)('worker SIGKILLed 5 times during 10,000 events (shared PostgreSQL)', () => {
  it('delivers every event, and the ledger holds exactly one acceptance per (messageId, integration)', async () => {
    const schema = `fault_${randomBytes(6).toString('hex')}`;
    const namespace = `f${randomBytes(4).toString('hex')}`;
    const db: Database = await createDatabase({
      kind: 'postgres',
      url: POSTGRES_URL,
      schema,
      maxConnections: 8,
    });
    const children: ChildProcess[] = [];
    try {
      await migrate(db, [...busMigrations, ...deliveryWorkerMigrations]);
      // The worker processes share this key: they open the segments this process seals.
      const busKey = randomBytes(32);
      const crypto = createCryptoService({ keyring: createKeyring({ current: busKey }) });
      const bus = createPostgresBus({
        db,
        logger: silentLogger,
        crypto,
        pollIntervalMs: 20,
        sessionTimeoutMs: 2000,
      });
      const cache = createMemoryCache({ namespace });
      const vendor = await sink();
      const integrationId = 'wh-fault';
      const processor = createEventProcessor({
        bus,
        dedup: cache,
        consentStore: createCacheConsentStateStore({ cache }),
        dataLayers: { getConfig: async () => ({ version: 1, pii_rules: { hash_fields: ['traits.email'] } }) },
        integrations: {
          listIntegrations: async () => [
            { id: integrationId, vendor: 'webhook', enabled: true, consent: { category: 'marketing' } },
          ],
        },
        namespace,
        logger: silentLogger,
        metrics: createMetrics({ processMetrics: false }),
        settings: { batchSize: 500 },
      });
      await processor.start();

      const spawnWorker = (): ChildProcess => {
        const child = spawn(process.execPath, ['--import', 'tsx', 'test/fault/support/worker-child.ts'], {
          cwd: repoRoot(),
          env: {
            PATH: process.env.PATH ?? '',
            SIGNAL_FAULT_DB: POSTGRES_URL,
            SIGNAL_FAULT_SCHEMA: schema,
            SIGNAL_FAULT_BUS_KEY: busKey.toString('hex'),
            SIGNAL_FAULT_NAMESPACE: namespace,
            SIGNAL_FAULT_INTEGRATION: JSON.stringify({
              id: integrationId,
              url: vendor.url,
              caPem: ca.certPem,
              signingSecret: SIGNING_SECRET,
            }),
          },
          stdio: ['ignore', 'ignore', 'inherit'],
        });
        children.push(child);
        return child;
      };

      const total = 10_000;
      const events: CanonicalEvent[] = Array.from({ length: total }, (_, i) =>
        makeEvent({ anonymousId: `visitor-${i % 997}`, org: 'org_f', pipelineId: 'pl_f' }),
      );
      const raw = topics.rawEvents(namespace);
      for (let i = 0; i < total; i += 1000) await publishTo(bus, raw, events.slice(i, i + 1000));

      let worker = spawnWorker();
      const kills: number[] = [];
      for (let k = 0; k < 5; k += 1) {
        const target = Math.floor(((k + 1) * total) / 7);
        await waitFor(
          () => vendor.countByMessage().size >= target,
          `${target} deliveries before kill ${k + 1}`,
          60_000,
        );
        worker.kill('SIGKILL');
        await once(worker, 'exit');
        kills.push(vendor.countByMessage().size);
        worker = spawnWorker();
      }
      await waitFor(() => vendor.countByMessage().size === total, 'every event at the vendor', 90_000);
      const ledger = await db.query<{ n: string; pairs: string }>(
        'SELECT count(*)::text AS n, count(DISTINCT (integration_id, message_id))::text AS pairs FROM delivery_ledger',
      );
      await waitFor(
        async () => {
          const { rows } = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM delivery_ledger');
          return Number(rows[0]?.n) === total;
        },
        'every acceptance in the ledger',
        30_000,
      );
      const counts = [...vendor.countByMessage().values()];
      const duplicates = counts.reduce((sum, c) => sum + (c - 1), 0);
      console.log(
        `fault 1: ${total} events, 5 SIGKILLs at ${kills.join(', ')} delivered; ${vendor.requests.length} requests, ` +
          `${duplicates} duplicate requests (acceptances lost with the killed process before their ledger row), ` +
          `ledger rows ${ledger.rows[0]?.n}/${ledger.rows[0]?.pairs} distinct`,
      );
      expect(new Set(vendor.requests.map((r) => r.messageId)).size).toBe(total);
      for (const e of events) expect(vendor.countByMessage().has(e.messageId)).toBe(true);
      const final = await db.query<{ n: string; pairs: string }>(
        'SELECT count(*)::text AS n, count(DISTINCT message_id)::text AS pairs FROM delivery_ledger',
      );
      expect(final.rows[0]).toEqual({ n: String(total), pairs: String(total) });
      // At-least-once: only batches in flight at a kill can be re-sent (≤ consumers × batch size per kill).
      expect(duplicates).toBeLessThanOrEqual(5 * 4 * 50);
      await processor.stop(2000);
      await bus.close();
      await cache.close();
    } finally {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      await db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await db.close();
    }
  }, 150_000);
});

describe('a flaky vendor: 30 % 500, 429 with Retry-After, stalls', () => {
  it('ends with every event delivered or dead-lettered, retries spaced by the schedule', async () => {
    const h = await createHarness({
      // Leases that a loaded CI machine cannot let lapse: a partition taken over mid-batch is redelivered
      // (at-least-once, the ledger keeps it harmless) and would add vendor requests beyond the 5 attempts
      // counted here. Takeovers have tests of their own (fault 1 above, the bus contract).
      bus: { sessionTimeoutMs: 20_000, heartbeatIntervalMs: 1000 },
      workerSettings: {
        retryMaxAttempts: 5,
        retryBackoffBaseMs: 200,
        retryBackoffFactor: 2,
        requestTimeoutMs: 300,
        breakerFailureThreshold: 50,
        rateLimitPerSecond: 10_000,
        consumersPerIntegration: 4,
        batchSize: 50,
      },
    });
    try {
      const vendor = await sink();
      const pipelineId = 'pl_flaky';
      const integrationId = 'wh-flaky';
      h.control.addWebhook({ id: integrationId, pipelineId, url: vendor.url, caPem: ca.certPem });
      const answers = new Map<number, string>();
      let n = 0;
      vendor.reply(() => {
        const roll = ((n * 7919) % 100) / 100;
        n += 1;
        const index = vendor.requests.length - 1;
        if (roll < 0.3) {
          answers.set(index, '500');
          return { status: 500, body: 'upstream down' };
        }
        if (roll < 0.4) {
          answers.set(index, '429');
          return { status: 429, headers: { 'retry-after': '1' } };
        }
        if (roll < 0.45) {
          answers.set(index, 'stall');
          return 'stall';
        }
        answers.set(index, '200');
        return { status: 200, body: '{}' };
      });
      await h.processor.start();
      await h.worker.start();
      const total = 200;
      const events = Array.from({ length: total }, () => makeEvent({ pipelineId }));
      await h.publishRaw(events);
      const dlq = createDlqStore(h.db, h.control.crypto);
      const settled = async () => {
        const { rows } = await h.db.query<{ n: string }>(
          'SELECT count(*)::text AS n FROM delivery_ledger WHERE integration_id = $1',
          [integrationId],
        );
        const dead = await dlq.list({ integrationId, limit: 1000 });
        return Number(rows[0]?.n) + dead.length === total;
      };
      await waitFor(settled, 'every event delivered or dead-lettered', 60_000);
      const dead = await dlq.list({ integrationId, limit: 1000 });
      // Spacing per event: after a 429 never sooner than its Retry-After; never more than maxAttempts tries.
      const byMessage = new Map<string, number[]>();
      vendor.requests.forEach((r, i) => {
        const list = byMessage.get(r.messageId) ?? [];
        list.push(i);
        byMessage.set(r.messageId, list);
      });
      let minAfter429 = Number.POSITIVE_INFINITY;
      let minOther = Number.POSITIVE_INFINITY;
      for (const indices of byMessage.values()) {
        expect(indices.length).toBeLessThanOrEqual(5);
        for (let k = 1; k < indices.length; k += 1) {
          const prev = vendor.requests[indices[k - 1] ?? 0];
          const cur = vendor.requests[indices[k] ?? 0];
          if (prev === undefined || cur === undefined) continue;
          const gap = cur.at - prev.at;
          if (answers.get(indices[k - 1] ?? 0) === '429') minAfter429 = Math.min(minAfter429, gap);
          else minOther = Math.min(minOther, gap);
        }
      }
      expect(minAfter429).toBeGreaterThanOrEqual(1000);
      expect(dead.every((d) => d.error === 'retries_exhausted')).toBe(true);
      console.log(
        `fault 2: ${total} events, ${vendor.requests.length} requests (${(vendor.requests.length / total).toFixed(2)} per event), ` +
          `${total - dead.length} delivered, ${dead.length} dead-lettered after 5 attempts; ` +
          `min spacing after a 429 ${Math.round(minAfter429)} ms (Retry-After 1 s), after 500/stall ${Math.round(minOther)} ms`,
      );
    } finally {
      await h.close();
    }
  }, 90_000);
});

describe('a vendor refusing everything (400), then fixed', () => {
  it('dead-letters at once, and a replay delivers each event exactly once', async () => {
    const h = await createHarness();
    try {
      const vendor = await sink();
      const pipelineId = 'pl_400';
      const integrationId = 'wh-400';
      h.control.addIntegration({
        id: integrationId,
        pipelineId,
        vendor: 'webhook',
        enabled: true,
        settings: { url: vendor.url },
        consent: { category: 'marketing' },
        extraCaPem: ca.certPem,
        credentials: { signingSecret: SIGNING_SECRET },
      });
      vendor.reply(() => ({ status: 400, body: '{"error":"bad field"}' }));
      await h.processor.start();
      await h.worker.start();
      const events = Array.from({ length: 50 }, () => makeEvent({ pipelineId }));
      await h.publishRaw(events);
      const dlq = createDlqStore(h.db, h.control.crypto);
      await waitFor(async () => (await dlq.list({ integrationId })).length === 50, 'fifty dead letters');
      expect(vendor.requests).toHaveLength(50);
      const [entry] = await dlq.list({ integrationId, limit: 1 });
      expect(entry).toMatchObject({ error: 'vendor_rejected', attempts: 1, lastResponse: { status: 400 } });

      vendor.reply(() => ({ status: 200, body: '{}' }));
      const deps = { db: h.db, bus: h.bus, namespace: h.namespace, crypto: h.control.crypto };
      const result = await replayDlq(deps, { integrationId });
      expect(result).toEqual({ replayed: 50, skipped: [] });
      await waitFor(() => vendor.requests.length === 100, 'the replayed deliveries');
      // A second replay finds nothing pending, and re-publishing would be absorbed by the ledger.
      expect((await replayDlq(deps, { integrationId })).replayed).toBe(0);
      await new Promise((r) => setTimeout(r, 300));
      const counts = vendor.countByMessage();
      for (const e of events) expect(counts.get(e.messageId)).toBe(2);
      expect(await dlq.depth()).toBe(0);
    } finally {
      await h.close();
    }
  }, 60_000);
});
