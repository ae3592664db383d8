import { randomBytes } from 'node:crypto';
import { busMigrations, DEAD_LETTER_RESERVE_BYTES, publishTo } from '@signal/bus';
import { type DeliveryMessage, topics } from '@signal/events';
import { createTestPki, type TestCa, type TestPki } from '@signal/http';
import { createDatabase, type Database, migrate, StoreError } from '@signal/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDlqStore, deliveryWorkerMigrations, replayDlq } from '../src/index';
import { createHarness, type Harness, makeEvent, waitFor } from './support/harness';
import { type HttpsSink, startHttpsSink } from './support/https-sink';
import { metric } from './support/metric';

/**
 * Dead letters must always reach the DLQ and its index: a letter that cannot be published or indexed makes its
 * batch fail, be redelivered and fail again forever (re-sending the event to the vendor each time, or holding
 * back every later dead letter of the partition).
 */

const NUL = 'a\u0000b';
const LONE = 'x\ud800y';

let pki: TestPki;
let ca: TestCa;
let h: Harness;
const sinks: HttpsSink[] = [];

async function sink(): Promise<HttpsSink> {
  const cert = await ca.issueServerCertificate({ ipAddresses: ['127.0.0.1'] });
  const s = await startHttpsSink({ cert: cert.certPem, key: cert.keyPem });
  sinks.push(s);
  return s;
}

function webhook(s: HttpsSink, harness: Harness = h): string {
  return harness.control.addWebhook({ pipelineId: 'pl_1', url: s.url, caPem: ca.certPem });
}

async function deliver(
  integrationId: string,
  event: DeliveryMessage['event'],
  harness: Harness = h,
): Promise<void> {
  await publishTo(harness.bus, topics.delivery(harness.namespace, integrationId), [
    { integrationId, event, attempt: { number: 1 } } satisfies DeliveryMessage,
  ]);
}

beforeAll(async () => {
  pki = await createTestPki();
  ca = await pki.createCa({ commonName: 'Signal Dead Letter Test CA' });
  // One dlq-events partition, so a letter that blocked the index would block every later one; two attempts,
  // the second one soon.
  h = await createHarness({
    workerSettings: { topicPartitions: 1, retryMaxAttempts: 2, retryBackoffBaseMs: 100 },
  });
  await h.worker.start();
});

afterAll(async () => {
  await h?.close();
  for (const s of sinks) await s.close();
  await pki?.cleanup();
});

describe('dead letters', () => {
  it('a letter whose event holds U+0000 / an unpaired surrogate is indexed, does not block later ones, and replays exactly', async () => {
    const vendor = await sink();
    vendor.reply(() => ({ status: 400, body: '{"error":"bad"}' }));
    const integrationId = webhook(vendor);
    const poison = makeEvent({ properties: { note: NUL, [`k${NUL}`]: [LONE], value: 1 } });
    const later = makeEvent();
    await deliver(integrationId, poison);
    await waitFor(() => vendor.requests.length === 1, 'the first refusal');
    await deliver(integrationId, later);

    const dlq = createDlqStore(h.db, h.control.crypto);
    await waitFor(
      async () => (await dlq.list({ integrationId })).length === 2,
      'both dead letters indexed',
      15_000,
    );
    expect(vendor.requests).toHaveLength(2);
    await waitFor(async () => (await metric(h, 'signal_dlq_depth')) >= 2, 'signal_dlq_depth');

    vendor.reply(() => ({ status: 200, body: '{}' }));
    const deps = { db: h.db, bus: h.bus, namespace: h.namespace, crypto: h.control.crypto };
    expect(await replayDlq(deps, { integrationId })).toEqual({
      replayed: 2,
      skipped: [],
    });
    await waitFor(() => vendor.requests.length === 4, 'the replayed deliveries');
    const replayed = vendor.requests.find((r, i) => i >= 2 && r.messageId === poison.messageId);
    expect(JSON.parse(replayed?.body ?? '{}').properties).toEqual(poison.properties);
  });

  it("a dead-lettered event's personal data is sealed in the DLQ index; listing masks it, a replay sends it exactly", async () => {
    const vendor = await sink();
    const email = `buyer-${randomBytes(3).toString('hex')}@planted.example`;
    // The vendor's answer echoes what it was sent (the vendors package scrubs e-mails and IPs, not phone
    // numbers or names): it is personal data too.
    vendor.reply(() => ({ status: 400, body: '{"error":"invalid user_data.ph +44 7700 900555"}' }));
    const integrationId = webhook(vendor);
    const event = makeEvent({
      userId: email,
      traits: { email, phone: '+44 7700 900555' },
      context: {
        consent: { categories: { analytics: true, marketing: true } },
        provenance: 'pipeline_key',
        ip: '198.51.100.23',
        userAgent: 'PlantedBrowser/1.0',
      },
    });
    await deliver(integrationId, event);

    const dlq = createDlqStore(h.db, h.control.crypto);
    await waitFor(async () => (await dlq.list({ integrationId })).length === 1, 'the dead letter', 15_000);
    const { rows } = await h.db.query<Record<string, unknown>>(
      'SELECT * FROM delivery_dlq WHERE integration_id = $1',
      [integrationId],
    );
    const raw = JSON.stringify(rows);
    for (const planted of [
      email,
      '7700 900555',
      '198.51.100.23',
      'PlantedBrowser',
      event.anonymousId ?? '-',
    ]) {
      expect(raw).not.toContain(planted);
    }
    expect(rows[0]).toMatchObject({
      letter: expect.stringMatching(/^v1\./),
      letter_key_id: h.control.crypto.keyring.currentKeyId,
      message_id: event.messageId,
    });

    const [entry] = await dlq.list({ integrationId });
    expect(JSON.stringify(entry)).not.toContain(email);
    expect(entry?.original).toMatchObject({ event: { messageId: event.messageId, type: 'track' } });
    const [row] = await dlq.forReplay({ integrationId });
    expect(row?.original).toMatchObject({ event: { userId: email, traits: { email } } });
    expect(row?.original_key).toBe(event.anonymousId);
    expect(row?.last_response?.body).toContain('7700 900555');

    vendor.reply(() => ({ status: 200, body: '{}' }));
    const deps = { db: h.db, bus: h.bus, namespace: h.namespace, crypto: h.control.crypto };
    expect(await replayDlq(deps, { integrationId })).toEqual({ replayed: 1, skipped: [] });
    await waitFor(() => vendor.requests.length === 2, 'the replayed delivery');
    expect(JSON.parse(vendor.requests[1]?.body ?? '{}')).toMatchObject({ messageId: event.messageId });
  });

  it('a vendor status outside 100-599 (999) dead-letters the event after its attempts, the status kept as an error code', async () => {
    const vendor = await sink();
    vendor.reply(() => ({ status: 999, body: 'Request denied' }));
    const integrationId = webhook(vendor);
    const event = makeEvent();
    await deliver(integrationId, event);

    const dlq = createDlqStore(h.db, h.control.crypto);
    await waitFor(async () => (await dlq.list({ integrationId })).length === 1, 'the dead letter', 15_000);
    const [entry] = await dlq.list({ integrationId });
    expect(entry).toMatchObject({
      error: 'retries_exhausted',
      lastResponse: { errorCode: 'http_status_999', body: 'Request denied' },
    });
    // Offset committed: the event is not redelivered and re-sent beyond its two attempts.
    await new Promise((r) => setTimeout(r, 1000));
    expect(vendor.countByMessage().get(event.messageId)).toBe(2);
  });

  it('an event keyed by an anonymous id with U+0000 / an unpaired surrogate gets its two attempts, not a loop', async () => {
    const vendor = await sink();
    vendor.reply(() => ({ status: 503, body: '{}' }));
    const integrationId = webhook(vendor);
    const event = makeEvent({ anonymousId: `anon-${NUL}-${LONE}` });
    await deliver(integrationId, event);

    const dlq = createDlqStore(h.db, h.control.crypto);
    await waitFor(async () => (await dlq.list({ integrationId })).length === 1, 'the dead letter', 15_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(vendor.countByMessage().get(event.messageId)).toBe(2);
    expect(JSON.parse(vendor.requests[1]?.body ?? '{}').anonymousId).toBe(event.anonymousId);
    const [row] = await dlq.forReplay({ integrationId });
    expect(row?.original_key).toBe(event.anonymousId);
  });
});

/** The database, except that it refuses (as PostgreSQL refuses a value: SQLSTATE 22xxx) DLQ rows holding `marker`. */
function refusingDlqRowsWith(db: Database, marker: string): Database {
  return {
    kind: db.kind,
    query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]) {
      if (sql.includes('INSERT INTO delivery_dlq') && JSON.stringify(params ?? []).includes(marker)) {
        return Promise.reject(
          new StoreError('query_failed', 'statement failed (SQLSTATE 22P05)', { sqlState: '22P05' }),
        );
      }
      return db.query<R>(sql, params);
    },
    exec: (sql) => db.exec(sql),
    transaction: (fn, options) => db.transaction(fn, options),
    close: () => db.close(),
  };
}

describe("a destination in the deployment's own network", () => {
  it('is never connected to unless allowed: the event is dead-lettered at once, nothing reaches it', async () => {
    // A worker as deployed: no private address allowed (DELIVERY_ALLOWED_PRIVATE_CIDRS empty).
    const own = await createHarness({
      workerSettings: { topicPartitions: 1, allowedPrivateDestinations: [] },
    });
    try {
      await own.worker.start();
      // An editor pointed the integration at an internal HTTPS service (here, on loopback).
      const internal = await sink();
      const integrationId = webhook(internal, own);
      const event = makeEvent();
      await deliver(integrationId, event, own);
      const dlq = createDlqStore(own.db, own.control.crypto);
      await waitFor(async () => (await dlq.list({ integrationId })).length === 1, 'the dead letter', 15_000);
      const [entry] = await dlq.list({ integrationId });
      expect(JSON.stringify(entry)).toContain('ERR_DESTINATION_NOT_ALLOWED');
      expect(entry?.attempts).toBe(1);
      expect(internal.requests).toHaveLength(0);
    } finally {
      await own.close();
    }
  });
});

describe('the DLQ indexer', () => {
  it('skips (logs and counts) a letter the database refuses, so it cannot hold back the later ones', async () => {
    const marker = `refused-${randomBytes(4).toString('hex')}`;
    const real = await createDatabase({ kind: 'pglite' });
    const own = await createHarness({
      db: refusingDlqRowsWith(real, marker),
      workerSettings: { topicPartitions: 1, retryMaxAttempts: 1 },
    });
    try {
      await own.worker.start();
      const vendor = await sink();
      vendor.reply(() => ({ status: 400, body: '{}' }));
      const integrationId = webhook(vendor, own);
      // The marker in a column that stays plaintext: the sealed part never shows it to the database.
      const refused = makeEvent({ messageId: marker });
      const later = makeEvent();
      await deliver(integrationId, refused, own);
      await waitFor(() => vendor.requests.length === 1, 'the first refusal');
      await deliver(integrationId, later, own);

      const dlq = createDlqStore(own.db, own.control.crypto);
      await waitFor(async () => (await dlq.list({ integrationId })).length === 1, 'the later letter', 15_000);
      const [entry] = await dlq.list({ integrationId });
      expect(entry?.messageId).toBe(later.messageId);
      expect(await metric(own, 'signal_dlq_unindexed_total')).toBe(1);
      expect(vendor.requests).toHaveLength(2);
    } finally {
      await own.close();
      await real.close();
    }
  });
});

describe('the worker on a database indexed before encryption at rest', () => {
  it('seals every plaintext dead letter when it starts', async () => {
    const real = await createDatabase({ kind: 'pglite' });
    // The release before: 0001 and 0002, one dead letter indexed in plaintext.
    await migrate(real, [...busMigrations, ...deliveryWorkerMigrations.slice(0, 2)]);
    const event = makeEvent({ traits: { email: 'legacy.buyer@planted.example' } });
    const integrationId = `wh-${randomBytes(4).toString('hex')}`;
    const original = { integrationId, event, attempt: { number: 2 } };
    await real.query(
      `INSERT INTO delivery_dlq (dlq_partition, dlq_offset, error, details, topic, integration_id, message_id,
                                 original_key, original, last_response, attempts, failed_at)
       VALUES (0, 1, 'retries_exhausted', 'the vendor answered 503 twice', $1, $2, $3, $4, $5::jsonb, NULL, 2, now())`,
      ['ns.delivery-x', integrationId, event.messageId, event.anonymousId, JSON.stringify(original)],
    );
    const own = await createHarness({ db: real, workerSettings: { topicPartitions: 1 } });
    try {
      const raw = async () =>
        JSON.stringify(
          (await real.query('SELECT * FROM delivery_dlq WHERE integration_id = $1', [integrationId])).rows,
        );
      expect(await raw()).toContain('legacy.buyer@planted.example');
      await own.worker.start();
      const after = await raw();
      expect(after).not.toContain('legacy.buyer@planted.example');
      expect(after).not.toContain(event.anonymousId ?? '-');
      const [row] = await createDlqStore(own.db, own.control.crypto).forReplay({ integrationId });
      expect(row).toMatchObject({ original, original_key: event.anonymousId, unreadable: null });
    } finally {
      await own.close();
      await real.close();
    }
  });
});

describe("an integration's pipeline that makes the event invalid", () => {
  it('dead-letters it for that integration only, and a replay after the fix reaches it (not taken for a duplicate)', async () => {
    const own = await createHarness({ workerSettings: { topicPartitions: 1 } });
    try {
      const pipelineId = `pl_${randomBytes(4).toString('hex')}`;
      const good = await sink();
      const broken = await sink();
      const goodId = own.control.addWebhook({ pipelineId, url: good.url, caPem: ca.certPem });
      const brokenId = own.control.addWebhook({ pipelineId, url: broken.url, caPem: ca.certPem });
      const stored = own.control.integrations.get(brokenId);
      if (stored === undefined) throw new Error('no integration');
      // A track call without its name is not a valid event.
      own.control.integrations.set(brokenId, { ...stored, pipeline: [{ type: 'map', remove: ['event'] }] });
      await own.processor.start();
      await own.worker.start();

      const event = makeEvent({ pipelineId });
      await own.publishRaw([event]);
      await waitFor(() => good.requests.length === 1, 'the delivery to the healthy integration');
      const dlq = createDlqStore(own.db, own.control.crypto);
      await waitFor(async () => (await dlq.list({})).length === 1, 'the dead letter');
      const [letter] = await dlq.list({});
      expect(letter).toMatchObject({
        error: 'pipeline_invalid_event',
        topic: topics.rawEvents(own.namespace).name,
      });
      expect(letter?.details).toContain(brokenId);
      expect(letter?.details).not.toContain(goodId);
      expect(broken.requests).toHaveLength(0);

      // The editor fixes the pipeline; the operator replays the letter well inside the dedup window.
      own.control.integrations.set(brokenId, { ...stored, pipeline: [] });
      const deps = { db: own.db, bus: own.bus, namespace: own.namespace, crypto: own.control.crypto };
      expect(await replayDlq(deps, {})).toEqual({ replayed: 1, skipped: [] });
      await waitFor(() => broken.requests.length === 1, 'the replayed delivery to the fixed integration');
      expect(broken.requests[0]?.messageId).toBe(event.messageId);
      // The healthy integration had it already: the worker's ledger skips it.
      await waitFor(
        async () =>
          (await metric(own, 'signal_delivery_skipped_total', { reason: 'already_delivered' })) === 1,
        'the ledger skip',
      );
      expect(good.requests).toHaveLength(1);
      expect(await metric(own, 'signal_processor_events_dropped_total', { reason: 'duplicate' })).toBe(0);
    } finally {
      await own.close();
    }
  });
});

describe("an integration's pipeline that makes the event larger than the bus carries", () => {
  it('dead-letters it for that integration only instead of stopping the partition on it', async () => {
    // A bus that carries 16 KiB beyond a dead letter's reserve: the event as sent fits, one pipeline's
    // additions (4 × 8 KiB) do not.
    const own = await createHarness({
      workerSettings: { topicPartitions: 1 },
      bus: { maxMessageBytes: DEAD_LETTER_RESERVE_BYTES + 16 * 1024 },
    });
    try {
      const pipelineId = `pl_${randomBytes(4).toString('hex')}`;
      const good = await sink();
      const bloating = await sink();
      const goodId = own.control.addWebhook({ pipelineId, url: good.url, caPem: ca.certPem });
      const bloatingId = own.control.addWebhook({ pipelineId, url: bloating.url, caPem: ca.certPem });
      const stored = own.control.integrations.get(bloatingId);
      if (stored === undefined) throw new Error('no integration');
      const set = Object.fromEntries(['a', 'b', 'c', 'd'].map((k) => [`properties.${k}`, k.repeat(8192)]));
      own.control.integrations.set(bloatingId, { ...stored, pipeline: [{ type: 'map', set }] });
      await own.processor.start();
      await own.worker.start();

      const first = makeEvent({ pipelineId });
      const second = makeEvent({ pipelineId, anonymousId: first.anonymousId });
      await own.publishRaw([first]);
      await own.publishRaw([second]);
      // The partition goes on past the first event: the second reaches the healthy integration too.
      await waitFor(() => good.requests.length === 2, 'both deliveries to the healthy integration');
      const dlq = createDlqStore(own.db, own.control.crypto);
      await waitFor(async () => (await dlq.list({})).length === 2, 'the two dead letters');
      for (const letter of await dlq.list({})) {
        expect(letter).toMatchObject({
          error: 'pipeline_invalid_event',
          topic: topics.rawEvents(own.namespace).name,
        });
        expect(letter.details).toMatch(
          new RegExp(
            `^integration ${bloatingId}: the delivery message is \\d+ bytes; the event bus carries at most 16384$`,
          ),
        );
        expect(letter.details).not.toContain(goodId);
      }
      expect(bloating.requests).toHaveLength(0);
      expect(
        await metric(own, 'signal_processor_integration_skips_total', { reason: 'invalid_result' }),
      ).toBe(2);
    } finally {
      await own.close();
    }
  });
});
