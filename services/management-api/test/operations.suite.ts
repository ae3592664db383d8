import { randomBytes, randomUUID } from 'node:crypto';
import { type Bus, BusError, type ConsumedMessage, POSTGRES_MAX_MESSAGE_BYTES } from '@signal/bus';
import { type CanonicalEvent, deliveryMessageSchema, topics } from '@signal/events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { DbTarget } from './db-targets';
import { FULL_SCHEMA, type SeededOrg, seedOrg, startTestApi, type TestApi } from './harness';
import { plantDeadLetter, sampleEvent } from './operations.support';

const A = '/v1/admin';
const errorSchema = z.strictObject({ error: z.strictObject({ code: z.string(), message: z.string() }) });
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
const replaySchema = z.strictObject({
  replayed: z.number(),
  skipped: z.array(z.strictObject({ id: z.string(), reason: z.string() })),
  not_pending: z.number().optional(),
  has_more: z.boolean(),
});
const errorCode = (json: unknown) => errorSchema.parse(json).error.code;

/** Every message on `topic` (from the beginning) once `count` have arrived. */
async function readTopic(bus: Bus, topic: string, count: number): Promise<ConsumedMessage[]> {
  const seen: ConsumedMessage[] = [];
  let done: () => void = () => {};
  const enough = new Promise<void>((resolve) => {
    done = resolve;
  });
  const subscription = await bus.subscribe({
    groupId: `reader-${randomBytes(4).toString('hex')}`,
    topics: [topic],
    fromBeginning: true,
    async handler(batch) {
      seen.push(...batch.messages);
      if (seen.length >= count) done();
    },
  });
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(
      () => reject(new Error(`only ${seen.length} of ${count} messages on ${topic}`)),
      10_000,
    ).unref(),
  );
  try {
    await Promise.race([enough, timeout]);
  } finally {
    await subscription.stop({ deadlineMs: 1000 });
  }
  return seen;
}

/** A raw event of `orgId`'s visitor, as the identity hub consumes it. */
function eventOf(orgId: string, fields: Parameters<typeof sampleEvent>[0]): CanonicalEvent {
  return { ...sampleEvent(fields), org: orgId };
}

export function describeOperationsSuite(target: DbTarget, skip = false): void {
  describe.skipIf(skip)(`Management API dead letters and identity erasure on ${target.name}`, () => {
    let t: TestApi;
    let org: SeededOrg;
    let tokens: Record<'owner' | 'admin' | 'editor' | 'viewer', string>;
    let namespace: string;
    let pipelineId: string;
    /** A new integration of `org`: the DLQ routes show an org the letters of its own integrations only. */
    const integrationId = async (): Promise<string> =>
      (await t.cp.integrations.create(org.orgId, pipelineId, { vendor: 'ga4', name: 'GA4' })).id;

    beforeAll(async () => {
      await target.setup();
      t = await startTestApi(await target.fresh(FULL_SCHEMA), { operations: {} });
      org = await seedOrg(t.cp, t.db);
      tokens = {
        owner: await t.tokenFor(org.users.owner),
        admin: await t.tokenFor(org.users.admin),
        editor: await t.tokenFor(org.users.editor),
        viewer: await t.tokenFor(org.users.viewer),
      };
      namespace = t.operations?.namespace ?? '';
      pipelineId = (await t.cp.pipelines.create(org.orgId, { name: 'Shop', type: 'web' })).pipeline.id;
    });
    afterAll(async () => {
      await t?.close();
      await target.teardown();
    });

    const list = async (query: string, token = tokens.viewer) => {
      const res = await t.call('GET', `${A}/dlq${query}`, { token });
      expect(res.status, res.text).toBe(200);
      return pageSchema.parse(res.json);
    };
    const replay = (body: unknown, token = tokens.editor) =>
      t.call('POST', `${A}/dlq/replay`, { token, body });

    describe('GET /dlq', () => {
      it('lists newest first and filters by integration and by time range [from, to)', async () => {
        const mine = await integrationId();
        const other = await integrationId();
        const base = Date.parse('2026-03-01T10:00:00Z');
        const at = (minutes: number) => new Date(base + minutes * 60_000);
        const ids = [];
        for (let i = 0; i < 4; i++)
          ids.push(await plantDeadLetter(t.db, namespace, mine, { failedAt: at(i) }));
        await plantDeadLetter(t.db, namespace, other, { failedAt: at(1) });

        const page = await list(`?integration_id=${mine}`);
        expect(page.data.map((e) => e.id)).toEqual([...ids].reverse());
        expect(page.data.every((e) => e.integration_id === mine)).toBe(true);
        expect(page).toMatchObject({ next_cursor: null, has_more: false });

        const ranged = await list(
          `?integration_id=${mine}&from=${at(1).toISOString()}&to=${encodeURIComponent('2026-03-01T12:03:00+02:00')}`,
        );
        expect(ranged.data.map((e) => e.id)).toEqual([ids[2], ids[1]]);
      });

      it('pages with an opaque cursor, never repeating or skipping an entry', async () => {
        const mine = await integrationId();
        const planted = [];
        for (let i = 0; i < 5; i++) planted.push(await plantDeadLetter(t.db, namespace, mine));
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page = await list(
            `?integration_id=${mine}&limit=2${cursor === null ? '' : `&cursor=${cursor}`}`,
          );
          seen.push(...page.data.map((e) => e.id));
          expect(page.has_more).toBe(page.next_cursor !== null);
          cursor = page.next_cursor;
          pages++;
        } while (cursor !== null);
        expect(pages, JSON.stringify({ seen, planted })).toBe(3);
        expect(seen).toEqual([...planted].reverse());
      });

      it('defaults to 50 entries and refuses a limit above 100 or a malformed filter', async () => {
        const mine = await integrationId();
        for (let i = 0; i < 51; i++) await plantDeadLetter(t.db, namespace, mine);
        const page = await list(`?integration_id=${mine}`);
        expect(page.data).toHaveLength(50);
        expect(page.has_more).toBe(true);
        expect((await list(`?integration_id=${mine}&limit=100`)).data).toHaveLength(51);
        for (const query of [
          '?limit=101',
          '?limit=0',
          '?limit=ten',
          '?from=yesterday',
          '?to=2026-13-01T00:00:00Z',
          '?cursor=not-a-cursor',
          '?include_replayed=maybe',
        ]) {
          const res = await t.call('GET', `${A}/dlq${query}`, { token: tokens.viewer });
          expect(res.status, query).toBe(400);
          expect(['bad_request', 'validation_failed']).toContain(errorCode(res.json));
        }
      });

      it('masks personal data in listed and inspected entries', async () => {
        const mine = await integrationId();
        const event = sampleEvent({
          userId: 'customer-42@example.com',
          traits: { email: 'jane.doe@example.com', phone: '+44 7700 900123', plan: 'pro' },
        });
        const id = await plantDeadLetter(t.db, namespace, mine, { event });
        const listed = await t.call('GET', `${A}/dlq?integration_id=${mine}`, { token: tokens.viewer });
        const inspected = await t.call('GET', `${A}/dlq/${id}`, { token: tokens.viewer });
        expect(inspected.status).toBe(200);
        const entry = entrySchema.parse(inspected.json);
        expect(entry).toMatchObject({ id, integration_id: mine, error: 'vendor_rejected', attempts: 5 });
        expect(entry.message_id).toBe(event.messageId);
        for (const body of [listed.text, inspected.text]) {
          for (const secret of ['jane.doe@example.com', 'customer-42', '7700 900123', '203.0.113.7']) {
            expect(body).not.toContain(secret);
          }
        }
        // What a human needs to decide on a replay stays readable.
        expect(entry.original).toMatchObject({ integrationId: mine, event: { type: 'identify' } });
      });

      it('answers 404 for an unknown or malformed id', async () => {
        for (const id of ['999999999999', 'abc', '0']) {
          const res = await t.call('GET', `${A}/dlq/${id}`, { token: tokens.viewer });
          expect(res.status, id).toBe(404);
        }
      });
    });

    describe('POST /dlq/replay', () => {
      it('replays the given ids onto their topic as fresh first attempts, once, and audits counts only', async () => {
        const mine = await integrationId();
        const events = [sampleEvent({}), sampleEvent({})] as const;
        const first = await plantDeadLetter(t.db, namespace, mine, { event: events[0] });
        const second = await plantDeadLetter(t.db, namespace, mine, { event: events[1] });
        const untouched = await plantDeadLetter(t.db, namespace, mine);

        const res = await replay({ ids: [first, second, '987654321987'] });
        expect(res.status, res.text).toBe(200);
        expect(replaySchema.parse(res.json)).toEqual({
          replayed: 2,
          skipped: [],
          not_pending: 1,
          has_more: false,
        });

        const bus = t.operations?.bus;
        if (bus === undefined) throw new Error('operations not wired');
        const messages = await readTopic(bus, topics.delivery(namespace, mine).name, 2);
        const replayed = messages.map((m) => deliveryMessageSchema.parse(JSON.parse(m.value)));
        expect(replayed.map((m) => m.event.messageId).sort()).toEqual(events.map((e) => e.messageId).sort());
        expect(replayed.every((m) => m.attempt.number === 1)).toBe(true);
        expect(messages.every((m) => m.headers['x-signal-replay'] === '1')).toBe(true);

        // Replayed entries leave the pending list; the rest stay.
        expect((await list(`?integration_id=${mine}`)).data.map((e) => e.id)).toEqual([untouched]);
        const all = await list(`?integration_id=${mine}&include_replayed=true`);
        expect(all.data.find((e) => e.id === first)).toMatchObject({ replay_count: 1 });
        expect(all.data.find((e) => e.id === first)?.replayed_at).not.toBeNull();

        // Again: nothing left to replay for those ids.
        expect(replaySchema.parse((await replay({ ids: [first, second] })).json)).toMatchObject({
          replayed: 0,
          not_pending: 2,
        });

        const audit = await t.audit.list({ action: 'dlq.replayed', user_id: org.users.editor.id });
        expect(audit.data.map((e) => e.changes)).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ replayed: { old: null, new: 2 }, skipped: { old: null, new: 0 } }),
            expect.objectContaining({ replayed: { old: null, new: 0 } }),
          ]),
        );
        const dump = await t.auditDump();
        for (const e of events) {
          expect(dump).not.toContain(e.messageId);
          expect(dump).not.toContain(e.userId ?? '-');
        }
        expect(dump).not.toContain('jane.doe@example.com');
      });

      it('replays one integration within a time range, in pages of `limit`, leaving the rest pending', async () => {
        const mine = await integrationId();
        const other = await integrationId();
        const base = Date.parse('2026-02-01T00:00:00Z');
        const at = (hours: number) => new Date(base + hours * 3600_000);
        const inRange = [];
        for (let h = 1; h <= 3; h++)
          inRange.push(await plantDeadLetter(t.db, namespace, mine, { failedAt: at(h) }));
        const later = await plantDeadLetter(t.db, namespace, mine, { failedAt: at(10) });
        const otherId = await plantDeadLetter(t.db, namespace, other, { failedAt: at(2) });
        const range = { integration_id: mine, from: at(0).toISOString(), to: at(5).toISOString() };

        const firstPage = replaySchema.parse((await replay({ ...range, limit: 2 })).json);
        expect(firstPage).toEqual({ replayed: 2, skipped: [], has_more: true });
        const secondPage = replaySchema.parse((await replay(range)).json);
        expect(secondPage).toEqual({ replayed: 1, skipped: [], has_more: false });

        expect((await list(`?integration_id=${mine}`)).data.map((e) => e.id)).toEqual([later]);
        expect((await list(`?integration_id=${other}`)).data.map((e) => e.id)).toEqual([otherId]);
      });

      it('skips an entry whose original no longer parses, leaving it pending', async () => {
        const mine = await integrationId();
        const broken = await plantDeadLetter(t.db, namespace, mine, { original: 'not json at all' });
        const body = replaySchema.parse((await replay({ integration_id: mine })).json);
        expect(body).toEqual({
          replayed: 0,
          skipped: [{ id: broken, reason: 'not_replayable' }],
          has_more: false,
        });
        expect((await list(`?integration_id=${mine}`)).data.map((e) => e.id)).toEqual([broken]);
      });

      it('refuses ambiguous or malformed selections', async () => {
        const mine = await integrationId();
        for (const body of [
          {},
          { ids: ['1'], integration_id: mine },
          { ids: [] },
          { ids: ['x1'] },
          { ids: ['1'], limit: 5 },
          { integration_id: mine, from: '2026-03-02T00:00:00Z', to: '2026-03-01T00:00:00Z' },
          { integration_id: mine, from: 'last week' },
          { integration_id: mine, limit: 1001 },
          { integration_id: mine, payload: 'x' },
        ]) {
          const res = await replay(body);
          expect(res.status, JSON.stringify(body)).toBe(400);
          expect(errorCode(res.json)).toBe('validation_failed');
        }
      });

      it('answers 503 when the bus refuses the publish, and marks nothing replayed', async () => {
        const failing = await startTestApi(t.db, {
          keys: t.keys,
          operations: {
            bus: {
              maxMessageBytes: POSTGRES_MAX_MESSAGE_BYTES,
              async publish() {
                throw new BusError('bus_publish_failed', 'the bus is unavailable');
              },
            },
          },
        });
        try {
          const ns = failing.operations?.namespace ?? '';
          const mine = await integrationId();
          const id = await plantDeadLetter(t.db, ns, mine);
          const res = await failing.call('POST', `${A}/dlq/replay`, {
            token: await failing.tokenFor(org.users.editor),
            body: { ids: [id] },
          });
          expect(res.status).toBe(503);
          expect(errorCode(res.json)).toBe('unavailable');
          expect((await list(`?integration_id=${mine}`)).data.map((e) => e.id)).toEqual([id]);
        } finally {
          await failing.close();
        }
      });
    });

    describe('DELETE /identity/{id}', () => {
      it('erases every profile, identifier and trait of a user, records identity.erased once, then 404', async () => {
        const graph = t.operations?.graph;
        if (graph === undefined) throw new Error('operations not wired');
        const userId = `erase-me-${randomBytes(4).toString('hex')}@example.com`;
        const anonymousIds = [randomUUID(), randomUUID()] as const;
        for (const anonymousId of anonymousIds) {
          await graph.ingest(
            eventOf(org.orgId, { anonymousId, userId, traits: { email: userId, plan: 'pro' } }),
          );
        }
        expect(await graph.lookup(org.orgId, { userId }, { consent: true, kinds: [] })).not.toBeNull();
        const before = (await t.audit.list({ action: 'identity.erased' })).data.length;
        // Their events the worker still holds: a dead letter of each device (one sealed, one a pre-0003
        // plaintext row), and one of someone else that stays.
        const integration = await integrationId();
        const theirs = [
          await plantDeadLetter(t.db, namespace, integration, {
            event: eventOf(org.orgId, { anonymousId: anonymousIds[0], userId: null }),
            crypto: t.crypto,
          }),
          await plantDeadLetter(t.db, namespace, integration, {
            event: eventOf(org.orgId, { anonymousId: anonymousIds[1], userId }),
          }),
        ];
        const someoneElse = await plantDeadLetter(t.db, namespace, integration, {
          event: eventOf(org.orgId, { userId: null }),
          crypto: t.crypto,
        });

        const res = await t.call('DELETE', `${A}/identity/${encodeURIComponent(userId)}`, {
          token: tokens.admin,
        });
        expect(res.status, res.text).toBe(200);
        expect(res.json).toEqual({ erased: { profiles: 1, identifiers: 3, traits: 1 } });
        expect(await graph.lookup(org.orgId, { userId }, { consent: true, kinds: [] })).toBeNull();
        for (const anonymousId of anonymousIds) {
          expect(await graph.lookup(org.orgId, { anonymousId }, { consent: true, kinds: [] })).toBeNull();
        }

        const letters = (await list(`?integration_id=${integration}&include_replayed=true`)).data;
        expect(letters.map((e) => e.id)).toEqual([someoneElse]);
        for (const id of theirs) {
          expect((await t.call('GET', `${A}/dlq/${id}`, { token: tokens.viewer })).status).toBe(404);
        }

        const recorded = (await t.audit.list({ action: 'identity.erased' })).data;
        expect(recorded.length - before).toBe(1);
        expect(recorded[0]).toMatchObject({
          user_id: org.users.admin.id,
          org_id: org.orgId,
          resource_type: 'identity',
          changes: { dead_letters: { old: 2, new: 0 }, scheduled_retries: { old: 0, new: 0 } },
        });
        expect(await t.auditDump()).not.toContain(userId);

        const again = await t.call('DELETE', `${A}/identity/${encodeURIComponent(userId)}`, {
          token: tokens.admin,
        });
        expect(again.status).toBe(404);
        expect(errorCode(again.json)).toBe('not_found');
      });

      it('erases by anonymous id too', async () => {
        const graph = t.operations?.graph;
        if (graph === undefined) throw new Error('operations not wired');
        const anonymousId = randomUUID();
        await graph.ingest(eventOf(org.orgId, { anonymousId, userId: null }));
        const res = await t.call('DELETE', `${A}/identity/${anonymousId}`, { token: tokens.owner });
        expect(res.status, res.text).toBe(200);
        expect(res.json).toMatchObject({ erased: { profiles: 1 } });
        expect(await graph.lookup(org.orgId, { anonymousId }, { consent: true, kinds: [] })).toBeNull();
      });

      it("another org's admin erasing this org's person gets the same 404 as for an unknown id, and erases nothing", async () => {
        const graph = t.operations?.graph;
        if (graph === undefined) throw new Error('operations not wired');
        const other = await seedOrg(t.cp, t.db);
        const otherAdmin = await t.tokenFor(other.users.admin);
        const userId = `cross-${randomBytes(4).toString('hex')}@example.com`;
        const anonymousId = randomUUID();
        await graph.ingest(eventOf(org.orgId, { anonymousId, userId, traits: { email: userId } }));
        const before = await t.db.query('SELECT count(*)::int AS n FROM identity_identifiers');

        const unknown = await t.call(
          'DELETE',
          `${A}/identity/${encodeURIComponent(`nobody-${randomBytes(4).toString('hex')}@example.com`)}`,
          { token: otherAdmin },
        );
        expect(unknown.status).toBe(404);
        for (const id of [userId, anonymousId]) {
          const res = await t.call('DELETE', `${A}/identity/${encodeURIComponent(id)}`, {
            token: otherAdmin,
          });
          expect({ id, status: res.status, body: res.json }).toEqual({
            id,
            status: unknown.status,
            body: unknown.json,
          });
        }
        expect(await t.db.query('SELECT count(*)::int AS n FROM identity_identifiers')).toMatchObject({
          rows: before.rows,
        });
        expect(
          await graph.lookup(org.orgId, { userId }, { consent: true, kinds: ['anonymous_id'], traits: true }),
        ).toMatchObject({ identifiers: { anonymous_id: anonymousId }, traits: { email: userId } });

        // Its own admin still can.
        const own = await t.call('DELETE', `${A}/identity/${encodeURIComponent(userId)}`, {
          token: tokens.admin,
        });
        expect(own.status, own.text).toBe(200);
        expect(own.json).toEqual({ erased: { profiles: 1, identifiers: 2, traits: 1 } });
      });

      it("the same user id in two orgs is two people: each admin erases their own org's only", async () => {
        const graph = t.operations?.graph;
        if (graph === undefined) throw new Error('operations not wired');
        const [x, y] = [await seedOrg(t.cp, t.db), await seedOrg(t.cp, t.db)];
        const userId = '42';
        await graph.ingest(eventOf(x.orgId, { userId, traits: { email: 'x@x.example' } }));
        await graph.ingest(eventOf(y.orgId, { userId, traits: { email: 'y@y.example' } }));
        const everything = { consent: true, kinds: [], traits: true } as const;
        expect(await graph.lookup(y.orgId, { userId }, everything)).toMatchObject({
          traits: { email: 'y@y.example' },
        });

        const res = await t.call('DELETE', `${A}/identity/${userId}`, {
          token: await t.tokenFor(y.users.admin),
        });
        expect(res.status, res.text).toBe(200);
        expect(res.json).toEqual({ erased: { profiles: 1, identifiers: 2, traits: 1 } });
        expect(await graph.lookup(y.orgId, { userId }, everything)).toBeNull();
        expect(await graph.lookup(x.orgId, { userId }, everything)).toMatchObject({
          traits: { email: 'x@x.example' },
        });
      });
    });

    it('answers 503 unavailable on the DLQ and erasure routes when their dependencies are not wired', async () => {
      const bare = await startTestApi(t.db);
      try {
        const token = await bare.tokenFor(org.users.owner);
        for (const [method, path, body] of [
          ['GET', '/dlq', undefined],
          ['GET', '/dlq/1', undefined],
          ['POST', '/dlq/replay', { ids: ['1'] }],
          ['DELETE', '/identity/someone', undefined],
        ] as const) {
          const res = await bare.call(method, `${A}${path}`, { token, ...(body ? { body } : {}) });
          expect(res.status, path).toBe(503);
          expect(errorSchema.parse(res.json).error).toMatchObject({
            code: 'unavailable',
            message: expect.stringMatching(/not available in this process/),
          });
        }
      } finally {
        await bare.close();
      }
    });
  });
}
