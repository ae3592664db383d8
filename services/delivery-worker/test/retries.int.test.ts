import { randomBytes } from 'node:crypto';
import { busMigrations, DEAD_LETTER_RESERVE_BYTES, publishTo } from '@signal/bus';
import { type CanonicalEvent, type DeliveryMessage, topics } from '@signal/events';
import { createTestPki, type TestCa, type TestPki } from '@signal/http';
import { type Database, migrate } from '@signal/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRetryStore, deliveryWorkerMigrations, REPLAY_HEADER } from '../src/index';
import { databaseBackends } from './support/database-backends';
import { createHarness, type Harness, makeEvent, SIGNING_SECRET, waitFor } from './support/harness';
import { type HttpsSink, startHttpsSink } from './support/https-sink';
import { metric } from './support/metric';

/**
 * An event waiting for its next attempt sits in `delivery_retries` for minutes to hours: the whole event (IP,
 * user agent, traits, e-mail addresses before hashing), its partition key and the last error are sealed there
 * (`payload`), and the retry still sends the vendor exactly the event it first refused.
 */

const backends = await databaseBackends('dw_retries', 8);

let pki: TestPki;
let ca: TestCa;
const sinks: HttpsSink[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  ca = await pki.createCa({ commonName: 'Signal Retry Test CA' });
});
afterAll(async () => {
  for (const s of sinks) await s.close();
  await pki?.cleanup();
});

async function sink(): Promise<HttpsSink> {
  const cert = await ca.issueServerCertificate({ ipAddresses: ['127.0.0.1'] });
  const s = await startHttpsSink({ cert: cert.certPem, key: cert.keyPem });
  sinks.push(s);
  return s;
}

function webhook(h: Harness, s: HttpsSink, integrationId = `wh-${randomBytes(4).toString('hex')}`): string {
  return h.control.addWebhook({ id: integrationId, pipelineId: 'pl_1', url: s.url, caPem: ca.certPem });
}

async function rawRows(db: Database, integrationId: string): Promise<Record<string, unknown>[]> {
  const { rows } = await db.query<Record<string, unknown>>(
    'SELECT * FROM delivery_retries WHERE integration_id = $1',
    [integrationId],
  );
  return rows;
}

/** An event full of personal data, each value unique to the test. */
function plantedEvent(): { event: CanonicalEvent; planted: string[] } {
  const tag = randomBytes(3).toString('hex');
  const email = `buyer-${tag}@planted.example`;
  const phone = `+44 7700 9${tag.slice(0, 5).replace(/[a-f]/g, '1')}`;
  const ip = '198.51.100.41';
  const userAgent = `PlantedBrowser/${tag}`;
  const event = makeEvent({
    userId: email,
    traits: { email, phone },
    context: {
      consent: { categories: { analytics: true, marketing: true } },
      provenance: 'pipeline_key',
      ip,
      userAgent,
    },
  });
  return { event, planted: [email, phone, ip, userAgent, event.anonymousId ?? '-'] };
}

function expectNone(raw: string, planted: readonly string[]): void {
  for (const value of planted) expect(raw).not.toContain(value);
}

describe.each(backends)('the retry schedule on $name', (backend) => {
  let db: Database;
  let closeDb: () => Promise<void>;
  let h: Harness;
  beforeAll(async () => {
    ({ db, close: closeDb } = await backend.open());
    // A short backoff: the vendor's Retry-After (a floor) decides when the retry is due.
    h = await createHarness({
      db,
      workerSettings: { topicPartitions: 1, retryMaxAttempts: 3, retryBackoffBaseMs: 100 },
    });
    await h.worker.start();
  });
  afterAll(async () => {
    await h?.close();
    await closeDb?.();
  });

  it("seals a retried event's personal data at rest, and the retry delivers the event intact", async () => {
    const vendor = await sink();
    // Refused once with Retry-After (so the retry waits long enough to look at its row), then accepted.
    vendor.reply(() =>
      vendor.requests.length === 1
        ? { status: 503, headers: { 'retry-after': '2' }, body: '{}' }
        : { status: 200, body: '{}' },
    );
    const integrationId = webhook(h, vendor);
    const { event, planted } = plantedEvent();
    await publishTo(h.bus, topics.delivery(h.namespace, integrationId), [
      { integrationId, event, attempt: { number: 1 } } satisfies DeliveryMessage,
    ]);

    await waitFor(async () => (await rawRows(db, integrationId)).length === 1, 'the scheduled retry');
    const rows = await rawRows(db, integrationId);
    expectNone(JSON.stringify(rows), planted);
    expect(rows[0]).toMatchObject({
      message_id: event.messageId,
      attempt: 2,
      payload: expect.stringMatching(/^v1\./),
      payload_key_id: h.control.crypto.keyring.currentKeyId,
    });
    expect(vendor.requests).toHaveLength(1);

    await waitFor(() => vendor.requests.length === 2, 'the retried delivery', 15_000);
    const [first, retried] = vendor.requests;
    expect(retried?.body).toBe(first?.body);
    expect(JSON.parse(retried?.body ?? '{}')).toMatchObject({
      messageId: event.messageId,
      anonymousId: event.anonymousId,
      userId: event.userId,
      context: { ip: event.context.ip, userAgent: event.context.userAgent },
    });
    await waitFor(async () => (await rawRows(db, integrationId)).length === 0, 'the retry row completed');
  });

  it("the vendor's age window drops a replayed event and dead-letters a first delivery", async () => {
    const vendor = await sink();
    vendor.reply(() => ({ status: 200, body: '{}' }));
    const integrationId = webhook(h, vendor);
    const outcome = (name: string) =>
      metric(h, 'signal_deliveries_total', { vendor: 'webhook', outcome: name });
    const [droppedBefore, deadBefore] = [await outcome('dropped'), await outcome('dead_letter')];
    const old = () => makeEvent({ timestamp: new Date(Date.now() - 31 * 86_400_000).toISOString() });
    const topic = topics.delivery(h.namespace, integrationId);
    await publishTo(h.bus, topic, [{ integrationId, event: old(), attempt: { number: 1 } }], {
      [REPLAY_HEADER]: '1',
    });
    await publishTo(h.bus, topic, [{ integrationId, event: old(), attempt: { number: 1 } }]);
    await waitFor(
      async () => (await outcome('dropped')) > droppedBefore && (await outcome('dead_letter')) > deadBefore,
      'one drop and one dead letter',
    );
    expect(await outcome('dropped')).toBe(droppedBefore + 1);
    expect(await outcome('dead_letter')).toBe(deadBefore + 1);
    expect(vendor.requests).toHaveLength(0);
  });

  it('a replayed dead letter whose retry falls out of the vendor age window is dropped, not dead-lettered again', async () => {
    const vendor = await sink();
    // Refused once with Retry-After; by the retry the event has passed the integration's one-hour window.
    vendor.reply(() => ({ status: 503, headers: { 'retry-after': '20' }, body: '{}' }));
    const integrationId = `wh-${randomBytes(4).toString('hex')}`;
    h.control.addIntegration({
      id: integrationId,
      pipelineId: 'pl_1',
      vendor: 'webhook',
      enabled: true,
      settings: { url: vendor.url, maxEventAgeMs: 3_600_000 },
      consent: { category: 'marketing' },
      extraCaPem: ca.certPem,
      credentials: { signingSecret: SIGNING_SECRET },
    });
    // 15 s of the window left: room for a slow first delivery on a loaded machine; the retry comes after 20 s.
    const event = makeEvent({ timestamp: new Date(Date.now() - 3_600_000 + 15_000).toISOString() });
    const dropped = () => metric(h, 'signal_deliveries_total', { vendor: 'webhook', outcome: 'dropped' });
    const deadLettered = () =>
      metric(h, 'signal_deliveries_total', { vendor: 'webhook', outcome: 'dead_letter' });
    const droppedBefore = await dropped();
    const deadLetteredBefore = await deadLettered();
    // As `replayDlq` publishes a dead letter back: with the replay header.
    await publishTo(
      h.bus,
      topics.delivery(h.namespace, integrationId),
      [{ integrationId, event, attempt: { number: 1 } } satisfies DeliveryMessage],
      { [REPLAY_HEADER]: '1' },
    );
    await waitFor(async () => (await rawRows(db, integrationId)).length === 1, 'the scheduled retry');
    expect(vendor.requests).toHaveLength(1);

    // The retry goes out after Retry-After, meets the age window, and is dropped as a late replay.
    await waitFor(async () => (await dropped()) > droppedBefore, 'the retry dropped', 40_000);
    await waitFor(async () => (await rawRows(db, integrationId)).length === 0, 'the retry row completed');
    expect(vendor.requests).toHaveLength(1);
    expect(await deadLettered()).toBe(deadLetteredBefore);
  }, 60_000);

  it('a retry whose payload does not open is counted and left scheduled; it holds back no other retry', async () => {
    const vendor = await sink();
    vendor.reply(() => ({ status: 200, body: '{}' }));
    const integrationId = webhook(h, vendor);
    const { event } = plantedEvent();
    const other = makeEvent();
    const due = new Date(Date.now() + 60_000).toISOString();
    // Two scheduled retries, as the worker seals them; then one gets the other's ciphertext.
    const message = (e: CanonicalEvent) =>
      JSON.stringify({ integrationId, event: e, attempt: { number: 2 } } satisfies DeliveryMessage);
    const store = createRetryStore(db, h.control.crypto);
    await store.schedule(
      [event, other].map((e) => ({
        integrationId,
        messageId: e.messageId,
        attempt: 2,
        dueAt: new Date(due),
        key: e.anonymousId ?? '',
        message: message(e),
        lastError: 'vendor_unavailable',
      })),
    );
    await db.query(
      `UPDATE delivery_retries SET payload = (SELECT payload FROM delivery_retries WHERE integration_id = $1
         AND message_id = $2) WHERE integration_id = $1 AND message_id = $3`,
      [integrationId, other.messageId, event.messageId],
    );
    const before = await metric(h, 'signal_delivery_retries_unreadable_total');
    // Due now, to the millisecond (as the worker writes due times: `complete` matches them exactly).
    await db.query(
      `UPDATE delivery_retries SET due_at = date_trunc('milliseconds', now()) WHERE integration_id = $1`,
      [integrationId],
    );

    await waitFor(() => vendor.requests.length === 1, 'the readable retry');
    expect(vendor.requests[0]?.messageId).toBe(other.messageId);
    await waitFor(
      async () => (await metric(h, 'signal_delivery_retries_unreadable_total')) > before,
      'the unreadable retry counted',
    );
    await waitFor(
      async () => (await rawRows(db, integrationId)).length === 1,
      'the readable retry completed',
    );
    expect((await rawRows(db, integrationId)).map((r) => r.message_id)).toEqual([event.messageId]);
    expect(vendor.requests).toHaveLength(1);
    await db.query('DELETE FROM delivery_retries WHERE integration_id = $1', [integrationId]);
  });
});

describe.each(backends)('a retry over the bus limit, on $name', (backend) => {
  it('stays scheduled, and does not hold back the other retries of its integration', async () => {
    const { db, close } = await backend.open();
    // A bus carrying 1 KiB beyond a dead letter's reserve, as after a move to a bus with a lower limit than
    // the one the retry was scheduled on.
    const h = await createHarness({
      db,
      workerSettings: { topicPartitions: 1 },
      bus: { maxMessageBytes: DEAD_LETTER_RESERVE_BYTES + 1024 },
    });
    try {
      await h.worker.start();
      const vendor = await sink();
      vendor.reply(() => ({ status: 200, body: '{}' }));
      const integrationId = webhook(h, vendor);
      const large = makeEvent({
        properties: Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`p${i}`, 'x'.repeat(8192)])),
      });
      const small = makeEvent();
      await createRetryStore(db, h.control.crypto).schedule(
        [large, small].map((e) => ({
          integrationId,
          messageId: e.messageId,
          attempt: 2,
          dueAt: new Date(Date.now() + 60_000),
          key: e.anonymousId ?? '',
          message: JSON.stringify({
            integrationId,
            event: e,
            attempt: { number: 2 },
          } satisfies DeliveryMessage),
          lastError: 'vendor_unavailable',
        })),
      );
      await db.query(
        `UPDATE delivery_retries SET due_at = date_trunc('milliseconds', now()) WHERE integration_id = $1`,
        [integrationId],
      );
      await waitFor(() => vendor.requests.length === 1, 'the retry that fits');
      expect(vendor.requests[0]?.messageId).toBe(small.messageId);
      await waitFor(
        async () => (await rawRows(db, integrationId)).length === 1,
        'the retry that fits completed',
      );
      expect((await rawRows(db, integrationId)).map((r) => r.message_id)).toEqual([large.messageId]);
    } finally {
      await h.close();
      await close();
    }
  });
});

describe.each(backends)(
  'the worker on a retry schedule from before encryption at rest, on $name',
  (backend) => {
    it('seals every plaintext retry when it starts, then delivers it intact', async () => {
      const { db, close } = await backend.open();
      // The release before: 0001 to 0003, one retry scheduled in plaintext as that release's store wrote it.
      await migrate(db, [...busMigrations, ...deliveryWorkerMigrations.slice(0, 3)]);
      const { event, planted } = plantedEvent();
      const integrationId = `wh-${randomBytes(4).toString('hex')}`;
      const original: DeliveryMessage = {
        integrationId,
        event,
        attempt: { number: 2, lastError: 'vendor_unavailable' },
      };
      await db.query(
        `INSERT INTO delivery_retries (integration_id, message_id, attempt, due_at, message_key, message,
                                     last_error, message_key_escaped)
       VALUES ($1, $2, 2, date_trunc('milliseconds', now()), $3, $4, 'vendor_unavailable', false)`,
        [integrationId, event.messageId, event.anonymousId, JSON.stringify(original)],
      );
      const vendor = await sink();
      vendor.reply(() => ({ status: 200, body: '{}' }));
      let own: Harness | undefined;
      try {
        // The harness brings the schema to this release (the plaintext moves into payload, no key id).
        own = await createHarness({ db, workerSettings: { topicPartitions: 1 } });
        webhook(own, vendor, integrationId);
        // Due shortly after the start, so the row can be looked at once the worker has started.
        await db.query(
          `UPDATE delivery_retries SET due_at = date_trunc('milliseconds', now() + interval '3 seconds')`,
        );
        expect(JSON.stringify(await rawRows(db, integrationId))).toContain(planted[0]);

        await own.worker.start();
        const sealed = await rawRows(db, integrationId);
        expect(sealed).toHaveLength(1);
        expectNone(JSON.stringify(sealed), planted);
        expect(sealed[0]).toMatchObject({
          payload: expect.stringMatching(/^v1\./),
          payload_key_id: own.control.crypto.keyring.currentKeyId,
        });

        await waitFor(() => vendor.requests.length === 1, 'the legacy retry delivered', 15_000);
        expect(JSON.parse(vendor.requests[0]?.body ?? '{}')).toMatchObject({
          messageId: event.messageId,
          anonymousId: event.anonymousId,
          userId: event.userId,
          context: { ip: event.context.ip, userAgent: event.context.userAgent },
        });
        await waitFor(async () => (await rawRows(db, integrationId)).length === 0, 'the retry row completed');
      } finally {
        await own?.close();
        await close();
      }
    });
  },
);
