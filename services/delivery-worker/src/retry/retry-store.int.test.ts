import { randomBytes } from 'node:crypto';
import { busMigrations } from '@signal/bus';
import { countRecordsByKeyId } from '@signal/control-plane';
import { createCryptoService, createKeyring } from '@signal/crypto';
import type { DeliveryMessage } from '@signal/events';
import { type Database, migrate } from '@signal/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseBackends } from '../../test/support/database-backends';
import { DELIVERY_WORKER_ENCRYPTED_COLUMNS } from '../dlq/encrypted-columns';
import { deliveryWorkerMigrations } from '../migrations';
import { RETRY_PAYLOAD_COLUMN } from './encrypted-columns';
import { createRetryStore, type RetryEntry, type RetryStore } from './retry-store';

/**
 * The retry schedule holds the whole event being retried (IP, user agent, traits, e-mail addresses before
 * hashing), its partition key (an anonymous or user id) and the last error: none of it may be on disk in
 * plaintext (`delivery_retries.payload` is one v1 ciphertext bound to the row's integration and message id),
 * and a retry must still go out exactly as it was scheduled.
 */

const NUL = 'a\u0000b';
const LONE = 'x\ud800y';

const backends = await databaseBackends('dw_retry');

const crypto = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) });

/** Personal data planted in a retry, none of which may be found in the table. */
const PLANTED = {
  email: 'jane.retry@planted.example',
  ip: '198.51.100.78',
  userAgent: 'PlantedAgent/7.7 (retry)',
  anonymousId: 'anon-planted-retry-5c1d',
  phone: '+44 7700 900778',
} as const;

function expectNothingPlanted(raw: string): void {
  for (const value of Object.values(PLANTED)) expect(raw).not.toContain(value);
  expect(raw).not.toContain('jane.retry');
}

function message(integrationId: string, messageId: string, key: string, attempt: number): string {
  const now = new Date().toISOString();
  const value: DeliveryMessage = {
    integrationId,
    event: {
      type: 'identify',
      anonymousId: key,
      userId: PLANTED.email,
      messageId,
      properties: { note: NUL, lone: LONE },
      traits: { email: PLANTED.email, phone: PLANTED.phone },
      context: {
        consent: {},
        provenance: 'pipeline_key',
        ip: PLANTED.ip,
        userAgent: PLANTED.userAgent,
      },
      timestamp: now,
      receivedAt: now,
      org: 'org_1',
      pipelineId: 'pl_1',
    },
    attempt: { number: attempt, lastError: 'vendor_unavailable' },
  };
  return JSON.stringify(value);
}

function entry(
  integrationId: string,
  messageId: string,
  options: { key?: string; attempt?: number; dueInMs?: number } = {},
): RetryEntry {
  const key = options.key ?? PLANTED.anonymousId;
  const attempt = options.attempt ?? 2;
  return {
    integrationId,
    messageId,
    attempt,
    dueAt: new Date(Date.now() + (options.dueInMs ?? -1000)),
    key,
    message: message(integrationId, messageId, key, attempt),
    // A last error is a code, but the store does not rely on that: it is sealed with the rest.
    lastError: `vendor_unavailable (${PLANTED.phone})`,
  };
}

async function rawRows(db: Database, integrationId: string): Promise<Record<string, unknown>[]> {
  const { rows } = await db.query<Record<string, unknown>>(
    'SELECT * FROM delivery_retries WHERE integration_id = $1 ORDER BY message_id',
    [integrationId],
  );
  return rows;
}

/** Claims every due row with a 1 ms lease (so the next call can claim them again), for one integration. */
async function claimOf(store: RetryStore, integrationId: string) {
  await new Promise((r) => setTimeout(r, 5));
  const { due, unreadable } = await store.claimDue(1000, 1);
  return {
    due: due.filter((e) => e.integrationId === integrationId),
    unreadable: unreadable.filter((e) => e.integrationId === integrationId),
  };
}

const integration = () => `wh-${randomBytes(4).toString('hex')}`;

describe.each(backends)('retry store on $name', (backend) => {
  let db: Database;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ db, close } = await backend.open());
    await migrate(db, [...busMigrations, ...deliveryWorkerMigrations]);
  });
  afterAll(async () => {
    await close?.();
  });

  it('seals the event, its key and the last error at rest; a claimed retry gives back exactly what was scheduled', async () => {
    const integrationId = integration();
    const store = createRetryStore(db, crypto);
    const scheduled = [
      entry(integrationId, 'm-1'),
      // The anonymous id may hold text PostgreSQL cannot store: kept exactly (the partition depends on it).
      entry(integrationId, 'm-2', { key: `anon-${NUL}-${LONE}` }),
      entry(integrationId, 'm-3', { key: '"anon-quoted"' }),
      // A DLQ replay's retry: re-published as a replay again (the flag is sealed with the rest).
      { ...entry(integrationId, 'm-4'), replay: true },
    ];
    await store.schedule(scheduled);

    const rows = await rawRows(db, integrationId);
    expect(rows).toHaveLength(4);
    expectNothingPlanted(JSON.stringify(rows));
    for (const row of rows) {
      expect(row).toMatchObject({
        integration_id: integrationId,
        attempt: 2,
        payload: expect.stringMatching(/^v1\./),
        payload_key_id: crypto.keyring.currentKeyId,
      });
    }
    // Only ids, the schedule and the ciphertext are stored.
    expect(Object.keys(rows[0] ?? {}).sort()).toEqual(
      [
        'attempt',
        'claimed_until',
        'created_at',
        'due_at',
        'id_text',
        'integration_id',
        'message_id',
        'payload',
        'payload_key_id',
      ].sort(),
    );

    const { due, unreadable } = await claimOf(store, integrationId);
    expect(unreadable).toEqual([]);
    const byId = new Map(due.map((e) => [e.messageId, e]));
    for (const s of scheduled) {
      expect(byId.get(s.messageId)).toEqual({ ...s, dueAt: expect.any(Date) });
      expect(byId.get(s.messageId)?.dueAt.getTime()).toBe(s.dueAt.getTime());
    }
    await store.complete(due);
    expect(await rawRows(db, integrationId)).toEqual([]);
  });

  it('a later attempt replaces the row, sealed again; an earlier one does not', async () => {
    const integrationId = integration();
    const store = createRetryStore(db, crypto);
    await store.schedule([entry(integrationId, 'm-up', { attempt: 3 })]);
    await store.schedule([entry(integrationId, 'm-up', { attempt: 2 })]);
    await store.schedule([entry(integrationId, 'm-up', { attempt: 4 })]);
    const { due, unreadable } = await claimOf(store, integrationId);
    expect(unreadable).toEqual([]);
    expect(due.map((e) => [e.attempt, JSON.parse(e.message).attempt.number])).toEqual([[4, 4]]);
    await store.complete(due);
  });

  it('a payload copied to another row or moved to another integration does not open, and holds back no other retry', async () => {
    const [integrationId, elsewhere] = [integration(), integration()];
    const store = createRetryStore(db, crypto);
    await store.schedule([
      entry(integrationId, 'm-donor'),
      entry(integrationId, 'm-victim'),
      entry(integrationId, 'm-moved'),
    ]);
    await db.query(
      `UPDATE delivery_retries SET payload = (SELECT payload FROM delivery_retries WHERE integration_id = $1
         AND message_id = 'm-donor') WHERE integration_id = $1 AND message_id = 'm-victim'`,
      [integrationId],
    );
    // The scheduler publishes to the row's integration's topic: a row moved there must not open.
    await db.query(
      `UPDATE delivery_retries SET integration_id = $2 WHERE integration_id = $1 AND message_id = 'm-moved'`,
      [integrationId, elsewhere],
    );

    const mine = await claimOf(store, integrationId);
    const moved = await claimOf(store, elsewhere);
    expect(mine.due.map((e) => e.messageId)).toEqual(['m-donor']);
    expect([...mine.unreadable, ...moved.unreadable]).toEqual([
      { integrationId, messageId: 'm-victim', attempt: 2, reason: 'commitment_mismatch' },
      { integrationId: elsewhere, messageId: 'm-moved', attempt: 2, reason: 'commitment_mismatch' },
    ]);
    expect(moved.due).toEqual([]);
    // Never dropped: an unreadable retry stays scheduled (a key put back makes it go out).
    await store.complete(mine.due);
    expect((await rawRows(db, integrationId)).map((r) => r.message_id)).toEqual(['m-victim']);
    expect((await rawRows(db, elsewhere)).map((r) => r.message_id)).toEqual(['m-moved']);
    await db.query('DELETE FROM delivery_retries WHERE integration_id = ANY($1::text[])', [
      [integrationId, elsewhere],
    ]);
  });

  it('a retry sealed under the previous key opens in dual-key mode, and is unreadable (not plaintext) without it', async () => {
    const integrationId = integration();
    const oldKey = randomBytes(32);
    const before = createCryptoService({ keyring: createKeyring({ current: oldKey }) });
    const scheduled = entry(integrationId, 'm-rotated');
    await createRetryStore(db, before).schedule([scheduled]);

    const alone = await claimOf(createRetryStore(db, crypto), integrationId);
    expect(alone).toEqual({
      due: [],
      unreadable: [{ integrationId, messageId: 'm-rotated', attempt: 2, reason: 'unknown_key_id' }],
    });
    const rotated = createCryptoService({
      keyring: createKeyring({ current: randomBytes(32), previous: oldKey }),
    });
    const store = createRetryStore(db, rotated);
    const { due } = await claimOf(store, integrationId);
    expect(due.map((e) => [e.message, e.key])).toEqual([[scheduled.message, scheduled.key]]);
    expect(await countRecordsByKeyId(db, [RETRY_PAYLOAD_COLUMN])).toEqual(
      new Map([[before.keyring.currentKeyId, 1]]),
    );
    await store.complete(due);
  });
});

describe.each(backends)('retries scheduled before encryption at rest, on $name', (backend) => {
  let db: Database;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ db, close } = await backend.open());
    // The schema of the release before: 0001 to 0003.
    await migrate(db, [...busMigrations, ...deliveryWorkerMigrations.slice(0, 3)]);
  });
  afterAll(async () => {
    await close?.();
  });

  it('are moved by the migration, read as they were, then sealed by sealLegacy (and only once)', async () => {
    const integrationId = integration();
    const plain = entry(integrationId, 'm-legacy');
    const escaped = entry(integrationId, 'm-legacy-nul', { key: `anon-${NUL}` });
    // Exactly as the 0002 store wrote them: a plain key, and one with U+0000 as a JSON string literal.
    const insert = `INSERT INTO delivery_retries (integration_id, message_id, attempt, due_at, message_key,
        message, last_error, message_key_escaped) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`;
    for (const [e, key, flag] of [
      [plain, plain.key, false],
      [escaped, JSON.stringify(escaped.key), true],
    ] as const) {
      await db.query(insert, [
        e.integrationId,
        e.messageId,
        e.attempt,
        e.dueAt.toISOString(),
        key,
        e.message,
        e.lastError,
        flag,
      ]);
    }

    await migrate(db, [...busMigrations, ...deliveryWorkerMigrations]);
    // A migration holds no key: the payloads are legacy plaintext (no key id) until sealed.
    const moved = await rawRows(db, integrationId);
    expect(moved.map((r) => r.payload_key_id)).toEqual([null, null]);
    expect(JSON.stringify(moved)).toContain(PLANTED.email);
    expect(await countRecordsByKeyId(db, DELIVERY_WORKER_ENCRYPTED_COLUMNS)).toEqual(new Map([[null, 2]]));

    const store = createRetryStore(db, crypto);
    const expectScheduled = async () => {
      const { due, unreadable } = await claimOf(store, integrationId);
      expect(unreadable).toEqual([]);
      expect(new Map(due.map((e) => [e.messageId, { ...e, dueAt: e.dueAt.getTime() }]))).toEqual(
        new Map([plain, escaped].map((e) => [e.messageId, { ...e, dueAt: e.dueAt.getTime() }])),
      );
    };
    await expectScheduled();

    expect(await store.sealLegacy({ batchSize: 1 })).toBe(2);
    const sealed = await rawRows(db, integrationId);
    expectNothingPlanted(JSON.stringify(sealed));
    expect(sealed.map((r) => r.payload_key_id)).toEqual([
      crypto.keyring.currentKeyId,
      crypto.keyring.currentKeyId,
    ]);
    expect(sealed.every((r) => typeof r.payload === 'string' && r.payload.startsWith('v1.'))).toBe(true);
    await expectScheduled();
    expect(await store.sealLegacy()).toBe(0);
    expect(await countRecordsByKeyId(db, DELIVERY_WORKER_ENCRYPTED_COLUMNS)).toEqual(
      new Map([[crypto.keyring.currentKeyId, 2]]),
    );
  });
});
