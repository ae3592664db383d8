import { randomBytes } from 'node:crypto';
import { busMigrations, type OutgoingMessage } from '@signal/bus';
import { type DlqMessage, deliveryMessageSchema, type JsonValue } from '@signal/events';
import { createDatabase, type Database, migrate } from '@signal/store';
import { POSTGRES_URL, postgresAvailable } from '@signal/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliveryWorkerMigrations } from '../migrations';
import { createDlqStore } from './dlq-store';
import { replayDlq } from './replay';

/**
 * The DLQ index must take every dead letter the schema accepts: one it cannot store is retried forever and
 * holds back every later letter of its partition. PostgreSQL refuses U+0000 in text and jsonb, and unpaired
 * surrogates in jsonb; the gateway accepts both in any string of an event.
 */

const NUL = 'a\u0000b';
const LONE = 'x\ud800y';

interface Backend {
  readonly name: string;
  open(): Promise<{ db: Database; close(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'PGlite',
    open: async () => {
      const db = await createDatabase({ kind: 'pglite' });
      return { db, close: () => db.close() };
    },
  },
];
if (await postgresAvailable()) {
  backends.push({
    name: 'PostgreSQL',
    open: async () => {
      const schema = `dw_dlq_${randomBytes(5).toString('hex')}`;
      const db = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 2, schema });
      return {
        db,
        close: async () => {
          await db.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
          await db.close();
        },
      };
    },
  });
}

function deliveryLetter(integrationId: string, event: Record<string, JsonValue>, key: string): DlqMessage {
  return {
    error: 'vendor_rejected',
    details: `the vendor refused properties.${NUL}`,
    original: { integrationId, event, attempt: { number: 1 } },
    originalKey: key,
    topic: `ns.delivery-${integrationId}`,
    integrationId,
    attempts: 1,
    lastResponse: { status: 400, body: `bad ${NUL}` },
    failedAt: new Date().toISOString(),
  };
}

function event(
  messageId: string,
  anonymousId: string,
  properties: Record<string, JsonValue>,
): Record<string, JsonValue> {
  const now = new Date().toISOString();
  return {
    type: 'track',
    event: 'Order Completed',
    anonymousId,
    messageId,
    properties,
    traits: {},
    context: { consent: {}, provenance: 'pipeline_key' },
    timestamp: now,
    receivedAt: now,
    org: 'org_1',
    pipelineId: 'pl_1',
  };
}

describe.each(backends)('DLQ store on $name', (backend) => {
  let db: Database;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ db, close } = await backend.open());
    await migrate(db, [...busMigrations, ...deliveryWorkerMigrations]);
  });
  afterAll(async () => {
    await close?.();
  });

  it('stores letters with U+0000 and unpaired surrogates anywhere, losslessly, next to plain ones', async () => {
    const integrationId = `wh-${randomBytes(4).toString('hex')}`;
    const poisoned = deliveryLetter(
      integrationId,
      event('m-nul', `anon-${NUL}`, { note: NUL, [`k${NUL}`]: [LONE, { deep: NUL }], value: 1 }),
      `anon-${NUL}`,
    );
    const plain: DlqMessage = {
      ...deliveryLetter(integrationId, event('m-plain', 'anon-plain', { value: 2 }), 'anon-plain'),
      details: 'plain',
      lastResponse: { status: 400, body: 'bad' },
    };
    const store = createDlqStore(db);
    expect(
      await store.index([
        { partition: 0, offset: '1', letter: poisoned },
        { partition: 0, offset: '2', letter: plain },
      ]),
    ).toBe(2);

    const rows = await store.forReplay({ integrationId });
    expect(rows.map((r) => r.message_id)).toEqual(['m-nul', 'm-plain']);
    const [stored, other] = rows;
    expect(stored?.original).toEqual(poisoned.original);
    expect(stored?.original_key).toBe(poisoned.originalKey);
    expect(stored?.details).toBe(poisoned.details);
    expect(stored?.last_response).toEqual(poisoned.lastResponse);
    expect(other?.original).toEqual(plain.original);
    expect(other?.original_key).toBe('anon-plain');

    // Only the letter that needs it is escaped; a plain one stays plain jsonb.
    const { rows: flags } = await db.query<{ message_id: string; escaped: boolean; plain: string | null }>(
      `SELECT message_id, escaped, original->'event'->>'messageId' AS plain FROM delivery_dlq
       WHERE integration_id = $1 ORDER BY id`,
      [integrationId],
    );
    expect(flags.map((f) => [f.escaped, f.plain])).toEqual([
      [true, null],
      [false, 'm-plain'],
    ]);

    // Listing decodes, then masks.
    const listed = await store.list({ integrationId });
    expect(listed.map((e) => e.messageId)).toEqual(['m-plain', 'm-nul']);
    expect(listed[1]?.details).toBe(poisoned.details);
    expect(await store.depth()).toBeGreaterThanOrEqual(2);
  });

  it('a replay gives back the exact original event, key included', async () => {
    const integrationId = `wh-${randomBytes(4).toString('hex')}`;
    const letter = deliveryLetter(
      integrationId,
      event('m-replay', `anon-${NUL}`, { note: NUL, lone: LONE, nested: { [`k${NUL}`]: NUL } }),
      `anon-${NUL}`,
    );
    const store = createDlqStore(db);
    await store.index([{ partition: 3, offset: '7', letter }]);
    const published: { topic: string; messages: readonly OutgoingMessage[] }[] = [];
    const result = await replayDlq(
      {
        db,
        bus: {
          publish: async (topic, messages) => {
            published.push({ topic, messages });
            return [];
          },
        },
        namespace: 'ns',
      },
      { integrationId },
    );
    expect(result).toEqual({ replayed: 1, skipped: [] });
    const [message] = published[0]?.messages ?? [];
    expect(published[0]?.topic).toBe(letter.topic);
    expect(message?.key).toBe(`anon-${NUL}`);
    const replayed = deliveryMessageSchema.parse(JSON.parse(message?.value ?? 'null'));
    const original = deliveryMessageSchema.parse(letter.original);
    expect(replayed.event).toEqual(original.event);
    expect(replayed.event.properties.note).toBe(NUL);
    expect(replayed.event.properties.lone).toBe(LONE);
  });

  it('indexes a letter whose failedAt PostgreSQL cannot read (year 0000) at the time of indexing', async () => {
    const integrationId = `wh-${randomBytes(4).toString('hex')}`;
    const letter: DlqMessage = {
      ...deliveryLetter(integrationId, event('m-y0', 'anon-y0', { value: 3 }), 'anon-y0'),
      failedAt: '0000-01-01T00:00:00Z',
    };
    const before = Date.now();
    expect(await createDlqStore(db).index([{ partition: 0, offset: '99', letter }])).toBe(1);
    const [entry] = await createDlqStore(db).list({ integrationId });
    expect(entry?.failedAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
  });
});
