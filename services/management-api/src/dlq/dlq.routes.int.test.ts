import { randomBytes } from 'node:crypto';
import type { Bus, ConsumedMessage } from '@signal/bus';
import { countRecordsByKeyId } from '@signal/control-plane';
import { createCryptoService, createKeyring } from '@signal/crypto';
import {
  createDlqStore,
  createRetryStore,
  DLQ_LETTER_COLUMN,
  RETRY_PAYLOAD_COLUMN,
} from '@signal/delivery-worker';
import { deliveryMessageSchema, topics } from '@signal/events';
import type { Database } from '@signal/store';
import { postgresAvailable } from '@signal/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type DbTarget, pgliteTarget, postgresTarget } from '../../test/db-targets';
import { FULL_SCHEMA, seedOrg, startTestApi, type TestApi } from '../../test/harness';
import { plantDeadLetter, sampleEvent } from '../../test/operations.support';

/**
 * Dead letters are sealed at rest (`delivery_dlq.letter`): the routes open them with the API's crypto and keep
 * their JSON shapes, and the API's re-encryption job walks them (a rotation must not leave a dead letter under
 * a key about to be dropped, nor one indexed before encryption at rest in plaintext).
 */

const A = '/v1/admin';
const entrySchema = z.strictObject({
  id: z.string(),
  error: z.string(),
  details: z.string(),
  topic: z.string(),
  integration_id: z.string().nullable(),
  message_id: z.string().nullable(),
  attempts: z.number().nullable(),
  last_response: z.unknown(),
  failed_at: z.string(),
  replayed_at: z.string().nullable(),
  replay_count: z.number(),
  original: z.unknown(),
});
const pageSchema = z.strictObject({
  data: z.array(entrySchema),
  next_cursor: z.string().nullable(),
  has_more: z.boolean(),
});

const PLANTED = {
  email: 'sealed-buyer@planted.example',
  phone: '+44 7700 900321',
  ip: '203.0.113.7',
} as const;

const integrationId = () => `int_${randomBytes(14).toString('hex')}`;

async function readOne(bus: Bus, topic: string): Promise<ConsumedMessage> {
  let resolve: (message: ConsumedMessage) => void = () => {};
  const first = new Promise<ConsumedMessage>((r) => {
    resolve = r;
  });
  const subscription = await bus.subscribe({
    groupId: `reader-${randomBytes(4).toString('hex')}`,
    topics: [topic],
    fromBeginning: true,
    async handler(batch) {
      const [message] = batch.messages;
      if (message !== undefined) resolve(message);
    },
  });
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`nothing on ${topic}`)), 10_000).unref(),
  );
  try {
    return await Promise.race([first, timeout]);
  } finally {
    await subscription.stop({ deadlineMs: 1000 });
  }
}

async function rawRows(db: Database, integration: string): Promise<Record<string, unknown>[]> {
  const { rows } = await db.query<Record<string, unknown>>(
    'SELECT * FROM delivery_dlq WHERE integration_id = $1 ORDER BY id',
    [integration],
  );
  return rows;
}

/** An org with a pipeline and an integration: dead letters are an org's through their integration. */
async function orgWithIntegration(t: TestApi) {
  const org = await seedOrg(t.cp, t.db);
  const { pipeline } = await t.cp.pipelines.create(org.orgId, { name: 'Shop', type: 'web' });
  const integration = await t.cp.integrations.create(org.orgId, pipeline.id, { vendor: 'ga4', name: 'GA4' });
  return { org, integrationId: integration.id };
}

function expectNothingPlanted(text: string, anonymousId?: string): void {
  for (const value of Object.values(PLANTED)) expect(text).not.toContain(value);
  if (anonymousId !== undefined) expect(text).not.toContain(anonymousId);
}

const targets: { target: DbTarget; skip: boolean }[] = [
  { target: pgliteTarget(), skip: false },
  { target: postgresTarget(), skip: !(await postgresAvailable()) },
];

describe.each(targets)(
  'dead letters sealed at rest, through the Management API on $target.name',
  ({ target, skip }) => {
    const open: TestApi[] = [];
    beforeAll(async () => {
      if (!skip) await target.setup();
    });
    afterAll(async () => {
      for (const t of open) await t.close();
      if (!skip) await target.teardown();
    });

    it.skipIf(skip)('lists, inspects and replays sealed letters in the same JSON shapes', async () => {
      const t = await startTestApi(await target.fresh(FULL_SCHEMA), { operations: {} });
      open.push(t);
      const { org, integrationId: mine } = await orgWithIntegration(t);
      const viewer = await t.tokenFor(org.users.viewer);
      const editor = await t.tokenFor(org.users.editor);
      const namespace = t.operations?.namespace ?? '';
      const event = sampleEvent({
        userId: PLANTED.email,
        traits: { email: PLANTED.email, phone: PLANTED.phone, plan: 'pro' },
      });
      const id = await plantDeadLetter(t.db, namespace, mine, { event, crypto: t.crypto });

      const [raw] = await rawRows(t.db, mine);
      expectNothingPlanted(JSON.stringify(raw), event.anonymousId);
      expect(raw).toMatchObject({
        letter: expect.stringMatching(/^v1\./),
        letter_key_id: t.crypto.keyring.currentKeyId,
        message_id: event.messageId,
      });

      const listed = await t.call('GET', `${A}/dlq?integration_id=${mine}`, { token: viewer });
      expect(listed.status, listed.text).toBe(200);
      const inspected = await t.call('GET', `${A}/dlq/${id}`, { token: viewer });
      expect(inspected.status, inspected.text).toBe(200);
      const page = pageSchema.parse(listed.json);
      expect(page.data.map((e) => e.id)).toEqual([id]);
      for (const entry of [page.data[0], entrySchema.parse(inspected.json)]) {
        expect(entry).toMatchObject({
          id,
          error: 'vendor_rejected',
          details: 'the vendor refused the event (HTTP 400)',
          integration_id: mine,
          message_id: event.messageId,
          attempts: 5,
          last_response: { status: 400, body: '{"error":"invalid parameter"}' },
          original: { integrationId: mine, event: { type: 'identify', messageId: event.messageId } },
        });
      }
      for (const body of [listed.text, inspected.text]) expectNothingPlanted(body);

      const replayed = await t.call('POST', `${A}/dlq/replay`, { token: editor, body: { ids: [id] } });
      expect(replayed.status, replayed.text).toBe(200);
      expect(replayed.json).toEqual({ replayed: 1, skipped: [], not_pending: 0, has_more: false });
      const bus = t.operations?.bus;
      if (bus === undefined) throw new Error('operations not wired');
      const message = await readOne(bus, topics.delivery(namespace, mine).name);
      const value = deliveryMessageSchema.parse(JSON.parse(message.value));
      expect(value.event).toEqual(event);
      expect(message.key).toBe(event.anonymousId);
    });

    it.skipIf(skip)(
      "an org never lists, reads or replays another org's dead letters: its id answers as an unknown one",
      async () => {
        const t = await startTestApi(await target.fresh(FULL_SCHEMA), { operations: {} });
        open.push(t);
        const namespace = t.operations?.namespace ?? '';
        const a = await orgWithIntegration(t);
        const b = await orgWithIntegration(t);
        const theirs = await plantDeadLetter(t.db, namespace, a.integrationId, { crypto: t.crypto });
        const ours = await plantDeadLetter(t.db, namespace, b.integrationId, { crypto: t.crypto });
        // A letter of an integration no org has (deleted since, or never known here) is nobody's.
        const orphan = await plantDeadLetter(t.db, namespace, integrationId(), { crypto: t.crypto });
        const viewer = await t.tokenFor(b.org.users.viewer);
        const editor = await t.tokenFor(b.org.users.editor);

        // Listing: only B's own letters, with or without filters naming A's integration.
        for (const query of ['', '?include_replayed=true', `?integration_id=${a.integrationId}`]) {
          const listed = await t.call('GET', `${A}/dlq${query}`, { token: viewer });
          expect(listed.status, listed.text).toBe(200);
          const ids = pageSchema.parse(listed.json).data.map((e) => e.id);
          expect(ids).toEqual(query.includes(a.integrationId) ? [] : [ours]);
          expect(listed.text).not.toContain(a.integrationId);
        }

        // Reading: A's letter answers exactly like an id nobody has.
        const unknown = await t.call('GET', `${A}/dlq/${BigInt(orphan) + 1_000_000n}`, { token: viewer });
        expect(unknown.status).toBe(404);
        for (const id of [theirs, orphan]) {
          const res = await t.call('GET', `${A}/dlq/${id}`, { token: viewer });
          expect(res.status).toBe(404);
          expect(res.json).toEqual(unknown.json);
        }
        expect((await t.call('GET', `${A}/dlq/${ours}`, { token: viewer })).status).toBe(200);

        // Replaying: nothing of A's, by id or by A's integration.
        const byIds = await t.call('POST', `${A}/dlq/replay`, {
          token: editor,
          body: { ids: [theirs, orphan] },
        });
        expect(byIds.status, byIds.text).toBe(200);
        expect(byIds.json).toEqual({ replayed: 0, skipped: [], not_pending: 2, has_more: false });
        const byIntegration = await t.call('POST', `${A}/dlq/replay`, {
          token: editor,
          body: { integration_id: a.integrationId },
        });
        expect(byIntegration.status, byIntegration.text).toBe(200);
        expect(byIntegration.json).toEqual({ replayed: 0, skipped: [], has_more: false });
        const { rows } = await t.db.query<{ id: string; replayed_at: Date | null }>(
          'SELECT id::text AS id, replayed_at FROM delivery_dlq WHERE id = ANY($1::bigint[]) ORDER BY id',
          [[theirs, orphan]],
        );
        expect(rows.map((r) => r.replayed_at)).toEqual([null, null]);

        // A itself still sees and replays its letter.
        const owner = await t.tokenFor(a.org.users.editor);
        expect((await t.call('GET', `${A}/dlq/${theirs}`, { token: owner })).status).toBe(200);
        const replayed = await t.call('POST', `${A}/dlq/replay`, { token: owner, body: { ids: [theirs] } });
        expect(replayed.json).toEqual({ replayed: 1, skipped: [], not_pending: 0, has_more: false });
      },
    );

    it.skipIf(skip)(
      "the API's re-encryption job re-encrypts dead letters and scheduled retries under the new key and seals plaintext ones",
      async () => {
        const db = await target.fresh(FULL_SCHEMA);
        const oldKey = randomBytes(32);
        const newKey = randomBytes(32);
        const before = await startTestApi(db, { keys: { current: oldKey }, operations: {} });
        open.push(before);
        const namespace = before.operations?.namespace ?? '';
        const mine = integrationId();
        const event = () =>
          sampleEvent({ userId: PLANTED.email, traits: { email: PLANTED.email, phone: PLANTED.phone } });
        const planted = [event(), event(), event()] as const;
        const sealedIds = [
          await plantDeadLetter(db, namespace, mine, { event: planted[0], crypto: before.crypto }),
          await plantDeadLetter(db, namespace, mine, { event: planted[1], crypto: before.crypto }),
        ];
        // Indexed before delivery-worker/0003: plaintext, no key id.
        const legacyId = await plantDeadLetter(db, namespace, mine, { event: planted[2] });
        expect((await rawRows(db, mine)).map((r) => r.letter_key_id)).toEqual([
          before.crypto.keyring.currentKeyId,
          before.crypto.keyring.currentKeyId,
          null,
        ]);
        expect(JSON.stringify(await rawRows(db, mine))).toContain(PLANTED.email);
        // The worker's retry schedule lives beside the DLQ index: one retry sealed under the old key, one
        // scheduled before delivery-worker/0004 (plaintext, no key id).
        const retried = [event(), event()] as const;
        const retryOf = (e: (typeof retried)[number]) => ({
          integrationId: mine,
          messageId: e.messageId,
          attempt: 2,
          dueAt: new Date(Date.now() - 1000),
          key: e.anonymousId ?? '',
          message: JSON.stringify({ integrationId: mine, event: e, attempt: { number: 2 } }),
          lastError: 'vendor_unavailable',
        });
        await createRetryStore(db, before.crypto).schedule([retryOf(retried[0])]);
        const legacyRetry = retryOf(retried[1]);
        await db.query(
          `INSERT INTO delivery_retries (integration_id, message_id, attempt, due_at, payload)
           VALUES ($1, $2, 2, date_trunc('milliseconds', now()), $3)`,
          [
            mine,
            legacyRetry.messageId,
            JSON.stringify({ key: legacyRetry.key, message: legacyRetry.message, lastError: null }),
          ],
        );

        // Dual-key deployment, then the runbook's re-encryption job, as the API runs it.
        const rotated = await startTestApi(db, {
          keys: { current: newKey, previous: oldKey },
          operations: {},
        });
        open.push(rotated);
        const started = await rotated.api.reencryption.start(null);
        expect(started.kind).toBe('started');
        await rotated.api.reencryption.idle();
        expect(await rotated.api.reencryption.status()).toMatchObject({
          status: 'completed',
          failed_records: 0,
        });

        const newKeyId = rotated.crypto.keyring.currentKeyId;
        const after = await rawRows(db, mine);
        expect(after.map((r) => r.letter_key_id)).toEqual([newKeyId, newKeyId, newKeyId]);
        expectNothingPlanted(JSON.stringify(after));
        expect(await countRecordsByKeyId(db, [DLQ_LETTER_COLUMN])).toEqual(new Map([[newKeyId, 3]]));

        // With the new key alone (the previous one dropped), every letter still opens to its original.
        const onlyNew = createCryptoService({ keyring: createKeyring({ current: newKey }) });
        const entries = await createDlqStore(db, onlyNew).list({ integrationId: mine });
        expect(entries.map((e) => e.id)).toEqual([legacyId, ...[...sealedIds].reverse()]);
        expect(entries.map((e) => e.messageId)).toEqual(planted.map((e) => e.messageId).reverse());
        for (const entry of entries) expect(entry.details).toBe('the vendor refused the event (HTTP 400)');

        const retryRows = await db.query<Record<string, unknown>>(
          'SELECT * FROM delivery_retries WHERE integration_id = $1',
          [mine],
        );
        expect(retryRows.rows.map((r) => r.payload_key_id)).toEqual([newKeyId, newKeyId]);
        expectNothingPlanted(JSON.stringify(retryRows.rows));
        expect(await countRecordsByKeyId(db, [RETRY_PAYLOAD_COLUMN])).toEqual(new Map([[newKeyId, 2]]));
        const claimed = await createRetryStore(db, onlyNew).claimDue(100, 60_000);
        expect(claimed.unreadable).toEqual([]);
        expect(new Map(claimed.due.map((e) => [e.messageId, e.message]))).toEqual(
          new Map(retried.map((e) => [e.messageId, retryOf(e).message])),
        );
      },
    );
  },
);
