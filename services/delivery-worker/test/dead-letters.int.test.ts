import { randomBytes } from 'node:crypto';
import { publishTo } from '@signal/bus';
import { type DeliveryMessage, topics } from '@signal/events';
import { createTestPki, type TestCa, type TestPki } from '@signal/http';
import { createDatabase, type Database, StoreError } from '@signal/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDlqStore, replayDlq } from '../src/index';
import { createHarness, type Harness, makeEvent, SIGNING_SECRET, waitFor } from './support/harness';
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
  const integrationId = `wh-${randomBytes(4).toString('hex')}`;
  harness.control.addIntegration({
    id: integrationId,
    pipelineId: 'pl_1',
    vendor: 'webhook',
    enabled: true,
    settings: { url: s.url },
    consent: { category: 'marketing' },
    extraCaPem: ca.certPem,
    credentials: { signingSecret: SIGNING_SECRET },
  });
  return integrationId;
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

    const dlq = createDlqStore(h.db);
    await waitFor(
      async () => (await dlq.list({ integrationId })).length === 2,
      'both dead letters indexed',
      15_000,
    );
    expect(vendor.requests).toHaveLength(2);
    await waitFor(async () => (await metric(h, 'signal_dlq_depth')) >= 2, 'signal_dlq_depth');

    vendor.reply(() => ({ status: 200, body: '{}' }));
    expect(await replayDlq({ db: h.db, bus: h.bus, namespace: h.namespace }, { integrationId })).toEqual({
      replayed: 2,
      skipped: [],
    });
    await waitFor(() => vendor.requests.length === 4, 'the replayed deliveries');
    const replayed = vendor.requests.find((r, i) => i >= 2 && r.messageId === poison.messageId);
    expect(JSON.parse(replayed?.body ?? '{}').properties).toEqual(poison.properties);
  });

  it('a vendor status outside 100-599 (999) dead-letters the event after its attempts, the status kept as an error code', async () => {
    const vendor = await sink();
    vendor.reply(() => ({ status: 999, body: 'Request denied' }));
    const integrationId = webhook(vendor);
    const event = makeEvent();
    await deliver(integrationId, event);

    const dlq = createDlqStore(h.db);
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

    const dlq = createDlqStore(h.db);
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
      const refused = makeEvent({ properties: { note: marker } });
      const later = makeEvent();
      await deliver(integrationId, refused, own);
      await waitFor(() => vendor.requests.length === 1, 'the first refusal');
      await deliver(integrationId, later, own);

      const dlq = createDlqStore(own.db);
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
