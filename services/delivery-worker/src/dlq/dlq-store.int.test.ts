import { randomBytes } from 'node:crypto';
import { busMigrations, type OutgoingMessage, POSTGRES_MAX_MESSAGE_BYTES } from '@signal/bus';
import { controlPlaneMigrations, countRecordsByKeyId } from '@signal/control-plane';
import { createCryptoService, createKeyring } from '@signal/crypto';
import { type DlqMessage, deliveryMessageSchema, type JsonValue } from '@signal/events';
import { type Database, migrate } from '@signal/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseBackends } from '../../test/support/database-backends';
import { seedOrgIntegrations } from '../../test/support/org-integrations';
import { deliveryWorkerMigrations } from '../migrations';
import { createDlqStore } from './dlq-store';
import { DELIVERY_WORKER_ENCRYPTED_COLUMNS } from './encrypted-columns';
import { replayDlq } from './replay';

/**
 * The DLQ index must take every dead letter the schema accepts: one it cannot store is retried forever and
 * holds back every later letter of its partition. PostgreSQL refuses U+0000 in text and jsonb, and unpaired
 * surrogates in jsonb; the gateway accepts both in any string of an event.
 *
 * And it must never keep personal data in plaintext: the original event (IP, user agent, traits, e-mail
 * addresses), its key, the details and the vendor's answer are sealed in `delivery_dlq.letter`.
 */

const NUL = 'a\u0000b';
const LONE = 'x\ud800y';

const backends = await databaseBackends('dw_dlq');

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

const crypto = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) });

/** Personal data planted in a letter, none of which may be found in the table. */
const PLANTED = {
  email: 'jane.planted@example.com',
  ip: '198.51.100.77',
  userAgent: 'PlantedAgent/9.9 (planted)',
  anonymousId: 'anon-planted-7f3e',
  phone: '+44 7700 900777',
} as const;

function plantedLetter(integrationId: string, messageId: string): DlqMessage {
  const e = event(messageId, PLANTED.anonymousId, { value: 9, email: PLANTED.email });
  return {
    error: 'vendor_rejected',
    details: `the vendor refused ${PLANTED.email}`,
    original: {
      integrationId,
      event: {
        ...e,
        userId: PLANTED.email,
        traits: { email: PLANTED.email, phone: PLANTED.phone },
        context: { consent: {}, provenance: 'pipeline_key', ip: PLANTED.ip, userAgent: PLANTED.userAgent },
      },
      attempt: { number: 1 },
    },
    originalKey: PLANTED.anonymousId,
    topic: `ns.delivery-${integrationId}`,
    integrationId,
    attempts: 1,
    lastResponse: { status: 400, body: `{"error":"invalid email ${PLANTED.email}"}` },
    failedAt: new Date().toISOString(),
  };
}

function expectNothingPlanted(raw: string): void {
  for (const value of Object.values(PLANTED)) expect(raw).not.toContain(value);
  expect(raw).not.toContain('jane.planted');
}

describe.each(backends)('DLQ store on $name', (backend) => {
  let db: Database;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ db, close } = await backend.open());
    // The control plane's tables too: an org's letters are those of its pipelines' integrations.
    await migrate(db, [...controlPlaneMigrations, ...busMigrations, ...deliveryWorkerMigrations]);
  });
  afterAll(async () => {
    await close?.();
  });

  /** An org with one pipeline and one integration, written as the control plane stores them. */
  async function orgWithIntegration(): Promise<{ orgId: string; integrationId: string }> {
    const suffix = randomBytes(6).toString('hex');
    const [orgId, integrationId] = [`org_${suffix}`, `int_${suffix}`];
    await seedOrgIntegrations(db, orgId, [integrationId]);
    return { orgId, integrationId };
  }

  it("scoped to an org, lists, gets and replays only the letters of that org's integrations", async () => {
    const a = await orgWithIntegration();
    const b = await orgWithIntegration();
    const orphan = `int_${randomBytes(6).toString('hex')}`;
    const store = createDlqStore(db, crypto);
    await store.index([
      { partition: 5, offset: '51', letter: plantedLetter(a.integrationId, 'm-org-a') },
      { partition: 5, offset: '52', letter: plantedLetter(b.integrationId, 'm-org-b') },
      { partition: 5, offset: '53', letter: plantedLetter(orphan, 'm-orphan') },
    ]);
    const all = await store.list({ includeReplayed: true, limit: 1000 });
    const idOf = (messageId: string): string => all.find((e) => e.messageId === messageId)?.id ?? '';
    const [ofA, ofB, ofNobody] = [idOf('m-org-a'), idOf('m-org-b'), idOf('m-orphan')] as const;
    expect([ofA, ofB, ofNobody]).not.toContain('');

    expect((await store.list({ orgId: b.orgId })).map((e) => e.id)).toEqual([ofB]);
    expect(await store.list({ orgId: b.orgId, integrationId: a.integrationId })).toEqual([]);
    expect(await store.get(ofA, { orgId: b.orgId })).toBeNull();
    expect(await store.get(ofNobody, { orgId: b.orgId })).toBeNull();
    expect((await store.get(ofB, { orgId: b.orgId }))?.messageId).toBe('m-org-b');
    // Deployment-wide (the operator's CLI): every letter.
    expect((await store.get(ofA))?.messageId).toBe('m-org-a');

    const published: OutgoingMessage[] = [];
    const deps = {
      db,
      bus: {
        maxMessageBytes: POSTGRES_MAX_MESSAGE_BYTES,
        publish: async (_topic: string, messages: readonly OutgoingMessage[]) => {
          published.push(...messages);
          return [];
        },
      },
      namespace: 'ns',
      crypto,
    };
    expect(await replayDlq(deps, { orgId: b.orgId, ids: [ofA, ofNobody] })).toEqual({
      replayed: 0,
      skipped: [],
    });
    expect(await replayDlq(deps, { orgId: b.orgId, integrationId: a.integrationId })).toEqual({
      replayed: 0,
      skipped: [],
    });
    expect(published).toEqual([]);
    expect(await replayDlq(deps, { orgId: a.orgId, ids: [ofA, ofB] })).toEqual({ replayed: 1, skipped: [] });
    expect(published).toHaveLength(1);
    expect((await store.get(ofB))?.replayedAt).toBeNull();
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
    // U+0000 in a column that stays plaintext (the message id).
    const idNul = deliveryLetter(integrationId, event(`m-${NUL}`, 'anon-idnul', { value: 3 }), 'anon-idnul');
    const store = createDlqStore(db, crypto);
    expect(
      await store.index([
        { partition: 0, offset: '1', letter: poisoned },
        { partition: 0, offset: '2', letter: plain },
        { partition: 0, offset: '3', letter: idNul },
      ]),
    ).toBe(3);

    const rows = await store.forReplay({ integrationId });
    expect(rows.map((r) => r.message_id)).toEqual(['m-nul', 'm-plain', `m-${NUL}`]);
    const [stored, other, third] = rows;
    expect(stored?.original).toEqual(poisoned.original);
    expect(stored?.original_key).toBe(poisoned.originalKey);
    expect(stored?.details).toBe(poisoned.details);
    expect(stored?.last_response).toEqual(poisoned.lastResponse);
    expect(other?.original).toEqual(plain.original);
    expect(other?.original_key).toBe('anon-plain');
    expect(third?.original).toEqual(idNul.original);

    // The sealed part holds any text; only a row whose plaintext columns need it is escaped.
    const { rows: flags } = await db.query<{ escaped: boolean; message_id: string }>(
      'SELECT escaped, message_id FROM delivery_dlq WHERE integration_id = $1 ORDER BY id',
      [integrationId],
    );
    expect(flags).toEqual([
      { escaped: false, message_id: 'm-nul' },
      { escaped: false, message_id: 'm-plain' },
      { escaped: true, message_id: JSON.stringify(`m-${NUL}`) },
    ]);

    // Listing opens, decodes, then masks.
    const listed = await store.list({ integrationId });
    expect(listed.map((e) => e.messageId)).toEqual([`m-${NUL}`, 'm-plain', 'm-nul']);
    expect(listed[2]?.details).toBe(poisoned.details);
    expect(await store.depth()).toBeGreaterThanOrEqual(3);
  });

  it('seals the personal data of a letter at rest; listing and replay still give back the original', async () => {
    const integrationId = `wh-${randomBytes(4).toString('hex')}`;
    const letter = plantedLetter(integrationId, 'm-sealed');
    const store = createDlqStore(db, crypto);
    await store.index([{ partition: 1, offset: '11', letter }]);

    const { rows: raw } = await db.query<Record<string, unknown>>(
      'SELECT * FROM delivery_dlq WHERE integration_id = $1',
      [integrationId],
    );
    expect(raw).toHaveLength(1);
    expectNothingPlanted(JSON.stringify(raw));
    expect(raw[0]).toMatchObject({
      letter: expect.stringMatching(/^v1\./),
      letter_key_id: crypto.keyring.currentKeyId,
      message_id: 'm-sealed',
      error: 'vendor_rejected',
    });
    // No column but the sealed one could hold the event any more.
    const plaintextColumns = /^(original|original_key|details|last_response)$/;
    expect(Object.keys(raw[0] ?? {}).filter((column) => plaintextColumns.test(column))).toEqual([]);

    const [row] = await store.forReplay({ integrationId });
    expect(row).toMatchObject({
      original: letter.original,
      original_key: PLANTED.anonymousId,
      details: letter.details,
      last_response: letter.lastResponse,
      unreadable: null,
    });
    const [entry] = await store.list({ integrationId });
    expect(entry).toMatchObject({ messageId: 'm-sealed', details: letter.details });
    expect(JSON.stringify(entry?.original)).not.toContain(PLANTED.email);
    expect(entry?.original).toMatchObject({ event: { event: 'Order Completed' } });

    // Counted by key id through the registry (what `/health/crypto` and the re-encryption job use).
    const counts = await countRecordsByKeyId(db, DELIVERY_WORKER_ENCRYPTED_COLUMNS);
    expect(counts.get(crypto.keyring.currentKeyId)).toBeGreaterThanOrEqual(1);
  });

  it('a letter copied to another row, or a row moved to another topic, does not open: listed as unreadable, not replayed', async () => {
    const integrationId = `wh-${randomBytes(4).toString('hex')}`;
    const store = createDlqStore(db, crypto);
    await store.index([
      { partition: 2, offset: '21', letter: plantedLetter(integrationId, 'm-donor') },
      { partition: 2, offset: '22', letter: plantedLetter(integrationId, 'm-victim') },
      { partition: 2, offset: '23', letter: plantedLetter(integrationId, 'm-moved') },
    ]);
    const ids = new Map(
      (await store.forReplay({ integrationId })).map((r) => [r.message_id ?? '', r.id] as const),
    );
    const idOf = (messageId: string): string => ids.get(messageId) ?? '';
    const [donor, victim, moved] = [idOf('m-donor'), idOf('m-victim'), idOf('m-moved')] as const;
    await db.query(
      'UPDATE delivery_dlq SET letter = (SELECT letter FROM delivery_dlq WHERE id = $2::bigint) WHERE id = $1::bigint',
      [victim, donor],
    );
    await db.query(`UPDATE delivery_dlq SET topic = 'ns.delivery-elsewhere' WHERE id = $1::bigint`, [moved]);

    const listed = new Map((await store.list({ integrationId })).map((e) => [e.id, e] as const));
    expect(listed.get(donor)?.details).toContain('refused');
    for (const id of [victim, moved]) {
      expect(listed.get(id)).toMatchObject({ original: null, lastResponse: null });
      expect(listed.get(id)?.details).toMatch(/cannot be opened \(commitment_mismatch\)/);
    }
    const published: OutgoingMessage[] = [];
    const result = await replayDlq(
      {
        db,
        bus: {
          maxMessageBytes: POSTGRES_MAX_MESSAGE_BYTES,
          publish: async (_topic, messages) => {
            published.push(...messages);
            return [];
          },
        },
        namespace: 'ns',
        crypto,
      },
      { integrationId },
    );
    expect(result).toEqual({
      replayed: 1,
      skipped: [
        { id: victim, reason: 'unreadable' },
        { id: moved, reason: 'unreadable' },
      ],
    });
    expect(published).toHaveLength(1);
  });

  it('a letter over the bus limit is skipped as too_large, and does not hold back the rest of its topic', async () => {
    const integrationId = `wh-${randomBytes(4).toString('hex')}`;
    const store = createDlqStore(db, crypto);
    const small = plantedLetter(integrationId, 'm-small');
    const large = plantedLetter(integrationId, 'm-large');
    const original = large.original as { event: { properties: Record<string, unknown> } };
    original.event.properties = { ...original.event.properties, note: 'n'.repeat(5000) };
    // Positions of their own: the index keeps one letter per (partition, offset).
    await store.index([
      { partition: 9, offset: '900', letter: small },
      { partition: 9, offset: '901', letter: large },
    ]);
    const published: OutgoingMessage[] = [];
    // A bus that carries less than the large letter's message (one moved to after the letter was written).
    const limit = 4000;
    const result = await replayDlq(
      {
        db,
        bus: {
          maxMessageBytes: limit,
          publish: async (_topic, messages) => {
            if (messages.some((m) => m.value.length > limit)) throw new Error('refused whole');
            published.push(...messages);
            return [];
          },
        },
        namespace: 'ns',
        crypto,
      },
      { integrationId },
    );
    const largeId = (await store.list({ integrationId })).find((e) => e.messageId === 'm-large')?.id;
    expect(largeId).toBeDefined();
    expect(result).toEqual({ replayed: 1, skipped: [{ id: largeId, reason: 'too_large' }] });
    expect(published.map((m) => JSON.parse(m.value).event.messageId)).toEqual(['m-small']);
    // Still pending, for a bus that can carry it.
    expect((await store.get(largeId ?? ''))?.replayedAt).toBeNull();
  });

  it('a letter sealed under the previous key opens in dual-key mode', async () => {
    const integrationId = `wh-${randomBytes(4).toString('hex')}`;
    const oldKey = randomBytes(32);
    const before = createCryptoService({ keyring: createKeyring({ current: oldKey }) });
    const letter = plantedLetter(integrationId, 'm-rotated');
    await createDlqStore(db, before).index([{ partition: 4, offset: '41', letter }]);
    const rotated = createCryptoService({
      keyring: createKeyring({ current: randomBytes(32), previous: oldKey }),
    });
    const [row] = await createDlqStore(db, rotated).forReplay({ integrationId });
    expect(row?.original).toEqual(letter.original);
    // Without the old key it is unreadable, never plaintext or an exception.
    const [entry] = await createDlqStore(db, crypto).list({ integrationId });
    expect(entry?.details).toMatch(/cannot be opened \(unknown_key_id\)/);
  });

  it('a replay gives back the exact original event, key included', async () => {
    const integrationId = `wh-${randomBytes(4).toString('hex')}`;
    const letter = deliveryLetter(
      integrationId,
      event('m-replay', `anon-${NUL}`, { note: NUL, lone: LONE, nested: { [`k${NUL}`]: NUL } }),
      `anon-${NUL}`,
    );
    const store = createDlqStore(db, crypto);
    await store.index([{ partition: 3, offset: '7', letter }]);
    const published: { topic: string; messages: readonly OutgoingMessage[] }[] = [];
    const result = await replayDlq(
      {
        db,
        bus: {
          maxMessageBytes: POSTGRES_MAX_MESSAGE_BYTES,
          publish: async (topic, messages) => {
            published.push({ topic, messages });
            return [];
          },
        },
        namespace: 'ns',
        crypto,
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
    expect(await createDlqStore(db, crypto).index([{ partition: 0, offset: '99', letter }])).toBe(1);
    const [entry] = await createDlqStore(db, crypto).list({ integrationId });
    expect(entry?.failedAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
  });
});

describe.each(backends)('DLQ rows indexed before encryption at rest, on $name', (backend) => {
  let db: Database;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ db, close } = await backend.open());
    // The schema of the release before: 0001 and 0002 only.
    await migrate(db, [...busMigrations, ...deliveryWorkerMigrations.slice(0, 2)]);
  });
  afterAll(async () => {
    await close?.();
  });

  it('are moved by the migration, read as they were, then sealed by sealLegacy (and only once)', async () => {
    const integrationId = `wh-${randomBytes(4).toString('hex')}`;
    const plain = plantedLetter(integrationId, 'm-legacy');
    const poisoned = deliveryLetter(
      integrationId,
      event('m-legacy-nul', `anon-${NUL}`, { note: NUL, lone: LONE, email: PLANTED.email }),
      `anon-${NUL}`,
    );
    // Exactly as the 0002 store wrote them: a plain row (jsonb) and an escaped one (JSON string literals).
    const insert = `INSERT INTO delivery_dlq (dlq_partition, dlq_offset, error, details, topic, integration_id,
        message_id, original_key, original, last_response, attempts, failed_at, escaped)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11, $12, $13)`;
    await db.query(insert, [
      0,
      '1',
      plain.error,
      plain.details,
      plain.topic,
      integrationId,
      'm-legacy',
      plain.originalKey,
      JSON.stringify(plain.original),
      JSON.stringify(plain.lastResponse),
      1,
      plain.failedAt,
      false,
    ]);
    const lit = (value: string) => JSON.stringify(value);
    await db.query(insert, [
      0,
      '2',
      lit(poisoned.error),
      lit(poisoned.details),
      poisoned.topic,
      integrationId,
      lit('m-legacy-nul'),
      lit(poisoned.originalKey ?? ''),
      JSON.stringify(JSON.stringify(poisoned.original)),
      JSON.stringify(JSON.stringify(poisoned.lastResponse)),
      1,
      poisoned.failedAt,
      true,
    ]);

    await migrate(db, [...busMigrations, ...deliveryWorkerMigrations]);
    const rawRows = async () =>
      (
        await db.query<Record<string, unknown>>(
          'SELECT * FROM delivery_dlq WHERE integration_id = $1 ORDER BY id',
          [integrationId],
        )
      ).rows;
    // A migration holds no key: the letters are legacy plaintext (no key id) until sealed.
    const moved = await rawRows();
    expect(moved.map((r) => r.letter_key_id)).toEqual([null, null]);
    expect(JSON.stringify(moved)).toContain(PLANTED.email);
    expect(await countRecordsByKeyId(db, DELIVERY_WORKER_ENCRYPTED_COLUMNS)).toEqual(new Map([[null, 2]]));

    const store = createDlqStore(db, crypto);
    const expectOriginals = async () => {
      const rows = await store.forReplay({ integrationId });
      expect(rows.map((r) => r.message_id)).toEqual(['m-legacy', 'm-legacy-nul']);
      expect(rows[0]).toMatchObject({
        original: plain.original,
        original_key: PLANTED.anonymousId,
        details: plain.details,
        last_response: plain.lastResponse,
        unreadable: null,
      });
      expect(rows[1]).toMatchObject({
        original: poisoned.original,
        original_key: `anon-${NUL}`,
        details: poisoned.details,
        last_response: poisoned.lastResponse,
        unreadable: null,
      });
    };
    await expectOriginals();

    expect(await store.sealLegacy({ batchSize: 1 })).toBe(2);
    const sealed = await rawRows();
    expectNothingPlanted(JSON.stringify(sealed));
    expect(sealed.map((r) => r.letter_key_id)).toEqual([
      crypto.keyring.currentKeyId,
      crypto.keyring.currentKeyId,
    ]);
    expect(sealed.every((r) => typeof r.letter === 'string' && r.letter.startsWith('v1.'))).toBe(true);
    await expectOriginals();
    expect(await store.sealLegacy()).toBe(0);
    expect(await countRecordsByKeyId(db, DELIVERY_WORKER_ENCRYPTED_COLUMNS)).toEqual(
      new Map([[crypto.keyring.currentKeyId, 2]]),
    );
  });
});
