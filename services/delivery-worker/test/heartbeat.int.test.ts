import { randomBytes } from 'node:crypto';
import { publishTo } from '@signal/bus';
import { type DeliveryMessage, topics } from '@signal/events';
import { createTestPki, type TestCa, type TestPki } from '@signal/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness, type HarnessOptions, makeEvent, waitFor } from './support/harness';
import { type HttpsSink, startHttpsSink } from './support/https-sink';
import { metric } from './support/metric';

/**
 * A batch that runs longer than the bus session timeout (2 s with `TEST_BUS`, 30 s by default) without
 * `Batch.heartbeat()` is taken for a dead consumer: its partition goes to another member, which sends the
 * same events again. Each case below takes well over 2 s in one batch, with a second consumer ready to take
 * the partition over.
 */

let pki: TestPki;
let ca: TestCa;
const sinks: HttpsSink[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  ca = await pki.createCa({ commonName: 'Signal Heartbeat Test CA' });
});
afterAll(async () => {
  for (const s of sinks) await s.close();
  await pki?.cleanup();
});

async function sink(delayMs: number): Promise<HttpsSink> {
  const cert = await ca.issueServerCertificate({ ipAddresses: ['127.0.0.1'] });
  const s = await startHttpsSink({ cert: cert.certPem, key: cert.keyPem });
  s.reply(() => ({ status: 200, body: '{}', delayMs }));
  sinks.push(s);
  return s;
}

function webhook(h: Harness, s: HttpsSink): string {
  return h.control.addWebhook({ pipelineId: 'pl_1', url: s.url, caPem: ca.certPem });
}

/** `count` events of one visitor (one partition, one batch) for the integration. */
async function publishBatch(h: Harness, integrationId: string, count: number): Promise<string[]> {
  const anonymousId = `anon-${randomBytes(4).toString('hex')}`;
  const events = Array.from({ length: count }, () => makeEvent({ anonymousId }));
  await publishTo(
    h.bus,
    topics.delivery(h.namespace, integrationId),
    events.map((event) => ({ integrationId, event, attempt: { number: 1 } }) satisfies DeliveryMessage),
  );
  return events.map((e) => e.messageId);
}

async function withHarness(
  workerSettings: HarnessOptions['workerSettings'],
  run: (h: Harness) => Promise<void>,
): Promise<void> {
  const h = await createHarness({
    workerSettings: { consumersPerIntegration: 2, heartbeatIntervalMs: 200, ...workerSettings },
  });
  try {
    await run(h);
  } finally {
    await h.close();
  }
}

/** Every event sent exactly once, also after a takeover would have happened (one more session timeout). */
async function expectEachSentOnce(s: HttpsSink, ids: readonly string[]): Promise<void> {
  await waitFor(() => ids.every((id) => s.countByMessage().has(id)), 'every event delivered', 25_000);
  await new Promise((r) => setTimeout(r, 2500));
  const counts = s.countByMessage();
  expect(ids.map((id) => counts.get(id))).toEqual(ids.map(() => 1));
}

/** Each case boots its own embedded database and waits out a session timeout. */
const CASE_TIMEOUT_MS = 90_000;

describe('a long batch keeps its partition (heartbeat)', { timeout: CASE_TIMEOUT_MS }, () => {
  it('a slow vendor: 12 requests of 400 ms in one batch, each sent once', async () => {
    await withHarness({}, async (h) => {
      const vendor = await sink(400);
      const integrationId = webhook(h, vendor);
      await h.worker.start();
      const ids = await publishBatch(h, integrationId, 12);
      await expectEachSentOnce(vendor, ids);
    });
  });

  it('a low rate limit: 16 events at 2 per second in one batch, each sent once', async () => {
    await withHarness({ rateLimitPerSecond: 2 }, async (h) => {
      const vendor = await sink(0);
      const integrationId = webhook(h, vendor);
      await h.worker.start();
      const ids = await publishBatch(h, integrationId, 16);
      await expectEachSentOnce(vendor, ids);
    });
  });

  it('a batch waiting for a slot behind a slow one is not taken over and redone', async () => {
    await withHarness({ maxConcurrentBatches: 1 }, async (h) => {
      const slow = await sink(400);
      const fast = await sink(0);
      const slowId = webhook(h, slow);
      const fastId = webhook(h, fast);
      await h.worker.start();
      const slowIds = await publishBatch(h, slowId, 14);
      await waitFor(() => slow.requests.length > 0, 'the slow batch started');
      const fastIds = await publishBatch(h, fastId, 4);
      await expectEachSentOnce(slow, slowIds);
      await expectEachSentOnce(fast, fastIds);
      // Taken over while waiting, the batch would have run twice: deferred, or skipped by the ledger.
      expect(await metric(h, 'signal_deliveries_total', { outcome: 'retry' })).toBe(0);
      expect(await metric(h, 'signal_delivery_skipped_total')).toBe(0);
    });
  });
});
