import { randomBytes } from 'node:crypto';
import { publishTo } from '@signal/bus';
import { type DeliveryMessage, topics } from '@signal/events';
import { createTestPki, type TestCa, type TestPki } from '@signal/http';
import { createIdentityGraph, loadBlindIndex } from '@signal/identity-hub';
import type { Database } from '@signal/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDlqStore } from '../src/index';
import { databaseBackends } from './support/database-backends';
import { createHarness, type Harness, makeEvent, SIGNING_SECRET, waitFor } from './support/harness';
import { type HttpsSink, startHttpsSink } from './support/https-sink';
import { metric } from './support/metric';

/**
 * An erasure (`DELETE /v1/admin/identity/{id}`) deletes the person's graph, dead letters and scheduled
 * retries at once; their events received before it may still be on the bus (a backlog behind a slow or
 * failing vendor, raw events not yet processed). The worker reads the graph's erasure records and drops those
 * events instead of sending them to the vendor. Events received after the erasure are new collection.
 */

const backends = await databaseBackends('dw_erasure', 4);

let pki: TestPki;
let ca: TestCa;
const sinks: HttpsSink[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  ca = await pki.createCa({ commonName: 'Signal Erasure Test CA' });
});
afterAll(async () => {
  for (const s of sinks) await s.close();
  await pki?.cleanup();
});

describe.each(backends)('erased people on the delivery topics, on $name', (backend) => {
  let db: Database;
  let closeDb: () => Promise<void>;
  let h: Harness;

  beforeAll(async () => {
    ({ db, close: closeDb } = await backend.open());
    h = await createHarness({
      db,
      // A short backoff: a refused delivery's retry is due after the vendor's Retry-After.
      workerSettings: {
        topicPartitions: 1,
        erasureRefreshMs: 100,
        retryMaxAttempts: 3,
        retryBackoffBaseMs: 100,
      },
      identityGraph: true,
    });
    await h.worker.start();
    await h.processor.start();
  });
  afterAll(async () => {
    await h?.close();
    await closeDb?.();
  });

  /** A webhook integration of `pipelineId` to a fresh HTTPS vendor that accepts everything. */
  async function acceptingWebhook(pipelineId = 'pl_1') {
    const cert = await ca.issueServerCertificate({ ipAddresses: ['127.0.0.1'] });
    const vendor = await startHttpsSink({ cert: cert.certPem, key: cert.keyPem });
    sinks.push(vendor);
    vendor.reply(() => ({ status: 200, body: '{}' }));
    const integrationId = h.control.addWebhook({ pipelineId, url: vendor.url, caPem: ca.certPem });
    return { vendor, integrationId };
  }

  /** The identity graph, as the identity hub erasing at `erasedAt` (org_1) would run it. */
  async function graphAt(erasedAt: number) {
    return createIdentityGraph({
      db,
      crypto: h.control.crypto,
      index: await loadBlindIndex(db, h.control.crypto),
      now: () => erasedAt,
    });
  }

  it("drops the erased person's backlog, delivers everyone else's and their new visits", async () => {
    const { vendor, integrationId } = await acceptingWebhook();

    // The person, known to the graph by two browsers and an e-mail, erased five minutes ago.
    const erasedAt = Date.now() - 5 * 60_000;
    const ago = (ms: number) => new Date(erasedAt - ms).toISOString();
    const [phone, laptop] = [
      `anon-${randomBytes(6).toString('hex')}`,
      `anon-${randomBytes(6).toString('hex')}`,
    ];
    const email = `erased.${randomBytes(4).toString('hex')}@example.com`;
    const graph = await graphAt(erasedAt);
    await graph.ingest(
      makeEvent({ type: 'identify', anonymousId: phone, userId: email, receivedAt: ago(60_000) }),
    );
    await graph.ingest(
      makeEvent({ type: 'identify', anonymousId: laptop, userId: email, receivedAt: ago(50_000) }),
    );
    await graph.erase('org_1', email);

    const backlog = [
      makeEvent({ anonymousId: phone, receivedAt: ago(40_000) }),
      makeEvent({ anonymousId: laptop, receivedAt: ago(30_000) }),
      makeEvent({
        anonymousId: `anon-server-${randomBytes(3).toString('hex')}`,
        userId: email,
        receivedAt: ago(20_000),
      }),
    ];
    const someoneElse = makeEvent({ receivedAt: ago(10_000) });
    const returning = makeEvent({ anonymousId: phone }); // received now: after the erasure
    const dropped = () => metric(h, 'signal_delivery_skipped_total', { reason: 'erased' });
    const before = await dropped();

    await waitFor(
      () => h.erasures?.erasedBefore(backlog[0] ?? someoneElse) === true,
      'the erasure records read',
    );
    await publishTo(
      h.bus,
      topics.delivery(h.namespace, integrationId),
      [...backlog, someoneElse, returning].map(
        (event) => ({ integrationId, event, attempt: { number: 1 } }) satisfies DeliveryMessage,
      ),
    );

    await waitFor(() => vendor.requests.length === 2, 'the deliveries of the others');
    await waitFor(async () => (await dropped()) === before + backlog.length, 'the backlog dropped');
    expect(vendor.requests.map((r) => r.messageId).sort()).toEqual(
      [someoneElse.messageId, returning.messageId].sort(),
    );
    // Nothing of the backlog reached the vendor, and nothing went to the DLQ or the retry schedule for it.
    for (const event of backlog) {
      expect(vendor.requests.some((r) => r.body.includes(event.messageId))).toBe(false);
    }
    const { rows } = await db.query(
      'SELECT count(*)::int AS n FROM delivery_retries WHERE integration_id = $1',
      [integrationId],
    );
    expect(rows[0]).toEqual({ n: 0 });
    expect(await metric(h, 'signal_deliveries_total', { outcome: 'dead_letter' })).toBe(0);
  });

  it("an erased person's event for a disabled integration is dropped, not dead-lettered", async () => {
    const integrationId = `wh-off-${randomBytes(4).toString('hex')}`;
    h.control.addIntegration({
      id: integrationId,
      pipelineId: 'pl_1',
      vendor: 'webhook',
      enabled: false,
      settings: { url: 'https://127.0.0.1:9/never' },
      consent: { category: 'marketing' },
      credentials: { signingSecret: SIGNING_SECRET },
    });
    const erasedAt = Date.now() - 5 * 60_000;
    const anonymousId = `anon-${randomBytes(6).toString('hex')}`;
    const email = `erased.${randomBytes(4).toString('hex')}@example.com`;
    const graph = await graphAt(erasedAt);
    await graph.ingest(
      makeEvent({
        type: 'identify',
        anonymousId,
        userId: email,
        receivedAt: new Date(erasedAt - 60_000).toISOString(),
      }),
    );
    await graph.erase('org_1', email);
    const erased = makeEvent({ anonymousId, receivedAt: new Date(erasedAt - 30_000).toISOString() });
    const other = makeEvent();
    await waitFor(() => h.erasures?.erasedBefore(erased) === true, 'the erasure records read');

    await publishTo(
      h.bus,
      topics.delivery(h.namespace, integrationId),
      [erased, other].map(
        (event) => ({ integrationId, event, attempt: { number: 1 } }) satisfies DeliveryMessage,
      ),
    );

    // The other event is dead-lettered (integration disabled, replayable once re-enabled); the erased one is not.
    const dlq = createDlqStore(db, h.control.crypto);
    await waitFor(async () => (await dlq.list({ integrationId })).length > 0, 'the dead letter of the other');
    expect((await dlq.list({ integrationId })).map((l) => l.messageId)).toEqual([other.messageId]);
  });

  it("the processor drops an erased person's raw events before any rule runs; the others go on", async () => {
    const pipelineId = `pl_${randomBytes(4).toString('hex')}`;
    const { vendor } = await acceptingWebhook(pipelineId);
    const erasedAt = Date.now() - 5 * 60_000;
    const email = `erased.${randomBytes(4).toString('hex')}@example.com`;
    const graph = await graphAt(erasedAt);
    await graph.erase('org_1', email);
    const erased = makeEvent({
      pipelineId,
      userId: email,
      receivedAt: new Date(erasedAt - 30_000).toISOString(),
    });
    const other = makeEvent({ pipelineId });
    await waitFor(() => h.erasures?.erasedBefore(erased) === true, 'the erasure records read');
    const droppedHere = () => metric(h, 'signal_processor_events_dropped_total', { reason: 'erased' });
    const before = await droppedHere();

    await h.publishRaw([erased, other]);

    await waitFor(() => vendor.requests.length === 1, 'the other event delivered');
    await waitFor(
      async () => (await droppedHere()) === before + 1,
      'the erased one dropped by the processor',
    );
    expect(vendor.requests[0]?.messageId).toBe(other.messageId);
  });

  it('a person erased while their event waits for a retry is not delivered, though a PII rule hashed their id', async () => {
    // The org hashes user ids before they leave: the delivery message no longer holds the e-mail the
    // erasure names, and the event came from a server, on a device id the graph never saw.
    const org = `org_${randomBytes(4).toString('hex')}`;
    const pipelineId = `pl_${randomBytes(4).toString('hex')}`;
    h.control.dataLayers.set(org, { version: 1, pii_rules: { hash_fields: ['userId'] } });
    const { vendor, integrationId } = await acceptingWebhook(pipelineId);
    vendor.reply(() =>
      vendor.requests.length === 1
        ? { status: 503, headers: { 'retry-after': '3' }, body: '{}' }
        : { status: 200, body: '{}' },
    );
    const email = `erased.${randomBytes(4).toString('hex')}@example.com`;
    const event = makeEvent({ org, pipelineId, userId: email });
    const dropped = () => metric(h, 'signal_delivery_skipped_total', { reason: 'erased' });
    const before = await dropped();

    await h.publishRaw([event]);
    await waitFor(() => vendor.requests.length === 1, 'the first, refused delivery');
    expect(vendor.requests[0]?.body).not.toContain(email);
    const retries = () =>
      db.query('SELECT 1 FROM delivery_retries WHERE integration_id = $1', [integrationId]);
    await waitFor(async () => (await retries()).rows.length === 1, 'the scheduled retry');

    // The erasure, while the retry waits (the graph's part only: the retry row is left for the worker).
    await (await graphAt(Date.now())).erase(org, email);
    await waitFor(
      () => h.erasures?.erasedBefore({ org, userId: email, receivedAt: event.receivedAt }) === true,
      'the erasure records read',
    );

    await waitFor(async () => (await dropped()) === before + 1, 'the retry dropped', 15_000);
    await waitFor(async () => (await retries()).rows.length === 0, 'the retry row done');
    expect(vendor.requests).toHaveLength(1);
  });
});
