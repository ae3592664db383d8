import { randomBytes } from 'node:crypto';
import type { Database } from '@signal/store';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuditLog, createAuditLog } from './audit-log';
import { entryHash, GENESIS_HASH, verifyRows } from './chain';
import { cryptoAuditSink } from './crypto-sink';
import { auditRowSchema, type ChainedAuditEntry, chainedAuditEntrySchema } from './entry';
import { AuditError } from './errors';
import type { AuditLogger } from './logger';
import { MASK, MASK_CHANGED } from './mask';

/**
 * The behaviour suite of the audit log, run against every database adapter (PGlite in process, PostgreSQL).
 * Each test gets its own freshly migrated schema, so the suite never depends on what else is in the database.
 */
export interface AuditSuiteTarget {
  /** Opens whatever the target shares between tests (a PGlite instance); called once. */
  setup(): Promise<void>;
  /** A database whose search_path is a new schema holding only the migrated audit tables. */
  fresh(options?: { readonly maxConnections?: number }): Promise<Database>;
  /** Closes databases and drops schemas. */
  teardown(): Promise<void>;
}

const DAY = 86_400_000;
export const randomSchemaName = (): string => `audit_test_${randomBytes(6).toString('hex')}`;

export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly obj: object;
  readonly msg: string;
}

export function captureLogger(): AuditLogger & { readonly lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (obj: object, msg: string) => {
    lines.push({ level, obj, msg });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A clock the test moves by hand; starts at real time so the database's now() agrees about "the past". */
function manualClock(start = Date.now()) {
  let now = start;
  return {
    now: () => new Date(now),
    set(ms: number) {
      now = ms;
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof Error) return err;
    throw err;
  }
  throw new Error('expected the operation to be refused, but it succeeded');
}

async function collect(lines: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const line of lines) out.push(line);
  return out;
}

async function* fromArray<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

/** Simulates a database administrator: user triggers off, run SQL, triggers back on. */
async function asDbAdmin(db: Database, sql: string): Promise<void> {
  await db.exec(`ALTER TABLE audit_log DISABLE TRIGGER USER;
    ALTER TABLE audit_chain DISABLE TRIGGER USER;
    ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;
    ${sql};
    ALTER TABLE audit_log ENABLE TRIGGER USER;
    ALTER TABLE audit_chain ENABLE TRIGGER USER;
    ALTER TABLE audit_checkpoints ENABLE TRIGGER USER;`);
}

export function describeAuditLogSuite(name: string, makeTarget: () => AuditSuiteTarget, skip = false): void {
  describe.skipIf(skip)(`audit log on ${name}`, () => {
    const target = makeTarget();

    beforeAll(() => target.setup());
    afterAll(() => target.teardown());

    async function freshLog(options: { clock?: () => Date; maxConnections?: number } = {}) {
      const db = await target.fresh(
        options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections },
      );
      const logger = captureLogger();
      const log = createAuditLog({
        db,
        logger,
        ...(options.clock === undefined ? {} : { clock: options.clock }),
      });
      return { db, log, logger };
    }

    async function recordMany(log: AuditLog, count: number): Promise<void> {
      for (let i = 1; i <= count; i++) {
        await log.record({
          action: 'pipeline.updated',
          user_id: 'usr_admin',
          user_email: 'admin@example.com',
          resource_id: `pl_${i}`,
          changes: { name: { old: `before ${i}`, new: `after ${i}` } },
        });
      }
    }

    describe('record and list', () => {
      it('stores entries in the contract shape and lists them newest first', async () => {
        const clock = manualClock(Date.parse('2026-02-25T14:30:00.000Z') - 400 * DAY);
        const { log } = await freshLog({ clock: clock.now });
        const recorded = await log.record({
          action: 'integration.updated',
          user_id: 'usr_abc123',
          user_email: 'admin@example.com',
          resource_id: 'int_xyz789',
          changes: { enabled: { old: true, new: false } },
          ip_address: '203.0.113.42',
          user_agent: 'Mozilla/5.0 (test)',
        });
        clock.set(clock.now().getTime() + 1000);
        await log.record({
          action: 'auth.login_failed',
          user_email: 'someone@example.com',
          ip_address: '::1',
        });

        const page = await log.list();
        expect(page.has_more).toBe(false);
        expect(page.next_cursor).toBeNull();
        expect(page.data.map((e) => e.action)).toEqual(['auth.login_failed', 'integration.updated']);
        const entry = page.data[1];
        expect(entry).toEqual(recorded);
        expect(Object.keys(entry ?? {}).sort()).toEqual(
          [
            'id',
            'action',
            'user_id',
            'user_email',
            'resource_type',
            'resource_id',
            'changes',
            'ip_address',
            'user_agent',
            'timestamp',
            'org_id',
          ].sort(),
        );
        expect(entry).toMatchObject({
          action: 'integration.updated',
          user_id: 'usr_abc123',
          user_email: 'admin@example.com',
          resource_type: 'integration',
          resource_id: 'int_xyz789',
          changes: { enabled: { old: true, new: false } },
          ip_address: '203.0.113.42',
          user_agent: 'Mozilla/5.0 (test)',
          timestamp: new Date(Date.parse('2026-02-25T14:30:00.000Z') - 400 * DAY).toISOString(),
        });
        expect(entry?.id).toMatch(/^log_[0-9a-f]{32}$/);
        expect(page.data[0]).toMatchObject({
          user_id: null,
          resource_type: 'user',
          resource_id: null,
          changes: {},
        });
      });

      it('filters by action, user, resource and time range', async () => {
        const clock = manualClock(Date.now() - 10 * DAY);
        const { log } = await freshLog({ clock: clock.now });
        const t0 = clock.now().getTime();
        await log.record({ action: 'pipeline.created', user_id: 'usr_a', resource_id: 'pl_1' });
        clock.set(t0 + DAY);
        await log.record({ action: 'pipeline.updated', user_id: 'usr_b', resource_id: 'pl_1' });
        clock.set(t0 + 2 * DAY);
        await log.record({ action: 'integration.created', user_id: 'usr_a', resource_id: 'int_1' });
        clock.set(t0 + 3 * DAY);
        await log.record({ action: 'pipeline.updated', user_id: 'usr_a', resource_id: 'pl_2' });

        const ids = async (filters: Parameters<AuditLog['list']>[0]) =>
          (await log.list(filters)).data.map((e) => `${e.action}:${e.resource_id}`);
        expect(await ids({ action: 'pipeline.updated' })).toEqual([
          'pipeline.updated:pl_2',
          'pipeline.updated:pl_1',
        ]);
        expect(await ids({ user_id: 'usr_a' })).toEqual([
          'pipeline.updated:pl_2',
          'integration.created:int_1',
          'pipeline.created:pl_1',
        ]);
        expect(await ids({ resource_type: 'pipeline', resource_id: 'pl_1' })).toEqual([
          'pipeline.updated:pl_1',
          'pipeline.created:pl_1',
        ]);
        expect(
          await ids({ from: new Date(t0 + DAY).toISOString(), to: new Date(t0 + 3 * DAY).toISOString() }),
        ).toEqual(['integration.created:int_1', 'pipeline.updated:pl_1']);
        expect(await ids({ action: 'pipeline.updated', user_id: 'usr_a', from: new Date(t0 + DAY) })).toEqual(
          ['pipeline.updated:pl_2'],
        );

        const badRange = await rejection(log.list({ from: new Date(t0 + DAY), to: new Date(t0) }));
        expect(badRange).toBeInstanceOf(AuditError);
        expect((badRange as AuditError).code).toBe('audit.invalid_query');
        const badAction = await rejection(log.list({ action: 'pipeline.exploded' as 'pipeline.created' }));
        expect((badAction as AuditError).code).toBe('audit.invalid_query');
      });

      it("scopes reads to one org's entries; the deployment-wide ones only when asked for", async () => {
        const { log } = await freshLog();
        await log.record({
          action: 'pipeline.created',
          org_id: 'org_a',
          user_id: 'usr_a',
          resource_id: 'pl_a',
        });
        await log.record({
          action: 'pipeline.created',
          org_id: 'org_b',
          user_id: 'usr_b',
          resource_id: 'pl_b',
        });
        await log.record({ action: 'crypto.key_loaded', resource_type: 'crypto', resource_id: 'key_1' });
        // Org-less, but not deployment-wide (a failed login naming no user): nobody's view.
        await log.record({ action: 'auth.login_failed', ip_address: '203.0.113.9' });
        await log.record({ action: 'crypto.reencrypt_started', org_id: 'org_b', user_id: 'usr_b' });

        const seen = async (filters: Parameters<AuditLog['list']>[0]) =>
          (await log.list(filters)).data.map((e) => `${e.action}:${e.org_id}`);
        expect(await seen({ org_id: 'org_a' })).toEqual(['pipeline.created:org_a']);
        expect(await seen({ org_id: 'org_b' })).toEqual([
          'crypto.reencrypt_started:org_b',
          'pipeline.created:org_b',
        ]);
        // Whoever runs the deployment also sees its org-less key events (not the org-less failed login).
        expect(await seen({ org_id: 'org_a', with_deployment_entries: true })).toEqual([
          'crypto.key_loaded:null',
          'pipeline.created:org_a',
        ]);
        expect(await seen({ org_id: 'org_a', user_id: 'usr_b' })).toEqual([]);
        expect(await seen({ org_id: 'org_a', resource_id: 'pl_b' })).toEqual([]);
        expect((await log.list()).data).toHaveLength(5);
        const exported = await collect(log.exportNdjson({ org_id: 'org_a' }));
        expect(exported.map((line) => JSON.parse(line).action)).toEqual(['pipeline.created']);
        expect(JSON.parse(exported[0] ?? '{}')).toMatchObject({ org_id: 'org_a', user_id: 'usr_a' });
        const withDeployment = await collect(
          log.exportNdjson({ org_id: 'org_a', with_deployment_entries: true }),
        );
        expect(withDeployment.map((line) => JSON.parse(line).action)).toEqual([
          'pipeline.created',
          'crypto.key_loaded',
        ]);
        expect(await log.verify()).toMatchObject({ ok: true, rows: 5 });
      });

      it('paginates with opaque cursors: every entry exactly once, limit default 50 and max 100', async () => {
        const { log } = await freshLog();
        await recordMany(log, 7);
        const seen: string[] = [];
        let cursor: string | undefined;
        const pages: boolean[] = [];
        do {
          const page = await log.list({}, cursor === undefined ? { limit: 3 } : { limit: 3, cursor });
          seen.push(...page.data.map((e) => e.resource_id ?? ''));
          pages.push(page.has_more);
          if (page.next_cursor !== null) {
            expect(page.next_cursor).toMatch(/^[A-Za-z0-9_-]+$/);
            expect(page.next_cursor).not.toMatch(/^\d+$/);
          }
          cursor = page.next_cursor ?? undefined;
        } while (cursor !== undefined);
        expect(seen).toEqual(['pl_7', 'pl_6', 'pl_5', 'pl_4', 'pl_3', 'pl_2', 'pl_1']);
        expect(pages).toEqual([true, true, false]);

        // A filtered walk keeps the filter across pages.
        const first = await log.list({ resource_id: 'pl_2' }, { limit: 1 });
        expect(first).toMatchObject({ has_more: false, next_cursor: null });
        expect(first.data).toHaveLength(1);

        await recordMany(log, 50);
        const defaults = await log.list();
        expect(defaults.data).toHaveLength(50);
        expect(defaults.has_more).toBe(true);
        expect((await log.list({}, { limit: '100' })).data).toHaveLength(57);

        for (const limit of [0, 101, 1.5]) {
          const err = await rejection(log.list({}, { limit }));
          expect((err as AuditError).code).toBe('audit.invalid_query');
        }
        for (const bad of ['not-a-cursor', Buffer.from('audit:v1:abc').toString('base64url'), '12']) {
          const err = await rejection(log.list({}, { cursor: bad }));
          expect((err as AuditError).code).toBe('audit.invalid_cursor');
        }
      });

      it('exports NDJSON oldest first, with chain fields an auditor can verify offline', async () => {
        const { log } = await freshLog();
        await recordMany(log, 4);
        await log.record({ action: 'user.invited', user_id: 'usr_admin', resource_id: 'usr_new' });

        const lines = await collect(log.exportNdjson());
        expect(lines).toHaveLength(5);
        for (const line of lines) expect(line.endsWith('\n') && !line.slice(0, -1).includes('\n')).toBe(true);
        const entries: ChainedAuditEntry[] = lines.map((line) =>
          chainedAuditEntrySchema.parse(JSON.parse(line)),
        );
        expect(entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
        expect(entries[0]?.prev_hash).toBe(GENESIS_HASH);
        const last = entries[4];
        expect(last?.action).toBe('user.invited');
        const offline = await verifyRows(fromArray(entries), {
          start: { seq: 0, hash: GENESIS_HASH },
          head: { seq: 5, hash: last?.hash ?? '' },
          locate: async () => undefined,
        });
        expect(offline).toEqual({ ok: true, rows: 5, head: { seq: 5, hash: last?.hash } });

        const filtered = await collect(log.exportNdjson({ action: 'user.invited' }));
        expect(filtered.map((line) => JSON.parse(line).resource_id)).toEqual(['usr_new']);
        expect(await collect(log.exportNdjson({ action: 'dlq.replayed' }))).toEqual([]);
      });
    });

    describe('what is recorded', () => {
      it('masks secrets and strips key material before the entry reaches the database', async () => {
        const { db, log } = await freshLog();
        const keyHex = randomBytes(32).toString('hex');
        await log.record({
          action: 'integration.updated',
          user_id: 'usr_admin',
          resource_id: 'int_meta',
          changes: {
            enabled: { old: true, new: true },
            api_secret: { old: 'old-secret-value', new: 'new-secret-value' },
            'credentials.access_token': { old: 'EAAB-old', new: 'EAAB-new' },
            config: {
              old: { pixel_id: '123', hmac_secret: 'same' },
              new: { pixel_id: '456', hmac_secret: 'same', note: `key ${keyHex}` },
            },
          },
        });
        const { rows } = await db.query('SELECT changes::text AS changes FROM audit_log');
        const stored = String(rows[0]?.changes);
        for (const secret of [
          'old-secret-value',
          'new-secret-value',
          'EAAB-old',
          'EAAB-new',
          'same',
          keyHex,
        ]) {
          expect(stored).not.toContain(secret);
        }
        const [entry] = (await log.list()).data;
        expect(entry?.changes).toEqual({
          enabled: { old: true, new: true },
          api_secret: { old: MASK, new: MASK_CHANGED },
          'credentials.access_token': { old: MASK, new: MASK_CHANGED },
          config: {
            old: { pixel_id: '123', hmac_secret: MASK },
            new: { pixel_id: '456', hmac_secret: MASK, note: MASK },
          },
        });
      });

      it('refuses an invalid entry and records nothing', async () => {
        const { log } = await freshLog();
        const bad: unknown[] = [
          { action: 'pipeline.exploded' },
          { action: 'pipeline.created', ip_address: 'not-an-ip' },
          { action: 'pipeline.created', timestamp: '2020-01-01T00:00:00Z' },
          { action: 'pipeline.created', changes: { name: 'flat value' } },
          { action: 'data_layer.updated', changes: { doc: { old: null, new: 'x'.repeat(300 * 1024) } } },
        ];
        for (const entry of bad) {
          const err = await rejection(log.record(entry as Parameters<AuditLog['record']>[0]));
          expect(err).toBeInstanceOf(AuditError);
          expect((err as AuditError).code).toBe('audit.invalid_entry');
          expect(err.message).not.toContain('not-an-ip');
        }
        expect((await log.list()).data).toEqual([]);
        expect(await log.verify()).toMatchObject({ ok: true, rows: 0 });
      });

      it('stores hostile strings (NUL, lone surrogates, huge user agents) and still verifies', async () => {
        const { log } = await freshLog();
        const entry = await log.record({
          action: 'auth.login_failed',
          user_email: 'a\u0000b@example.com',
          user_agent: `bot\uD800${'x'.repeat(2000)}`,
          changes: { 'field\u0000name': { old: '\uDC00', new: 'ok\u0000' } },
        });
        expect(entry.user_email).toBe('a\uFFFDb@example.com');
        expect(entry.user_agent).toHaveLength(512);
        expect(entry.user_agent?.startsWith('bot\uFFFD')).toBe(true);
        expect(entry.changes).toEqual({ 'field\uFFFDname': { old: '\uFFFD', new: 'ok\uFFFD' } });
        expect(await log.verify()).toMatchObject({ ok: true, rows: 1 });
      });

      it('round-trips any JSON change through the database without breaking the chain', async () => {
        const { log } = await freshLog();
        // Full Unicode, including NUL and lone surrogates, which PostgreSQL cannot store as is.
        const json = fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' });
        let count = 0;
        await fc.assert(
          fc.asyncProperty(
            fc.dictionary(fc.string({ minLength: 1, maxLength: 12, unit: 'binary' }), json, { maxKeys: 3 }),
            async (doc) => {
              await log.record({
                action: 'data_layer.updated',
                changes: { settings: { old: doc, new: null } },
              });
              count++;
            },
          ),
          { numRuns: 25 },
        );
        expect(await log.verify()).toMatchObject({ ok: true, rows: count });
      });
    });

    describe('immutability', () => {
      it('refuses UPDATE, DELETE and TRUNCATE on the audit tables, whoever asks', async () => {
        const { db, log } = await freshLog();
        await recordMany(log, 3);
        const refusals = [
          "UPDATE audit_log SET user_email = 'x@example.com' WHERE seq = 2",
          "UPDATE audit_log SET changes = '{}'::jsonb",
          'DELETE FROM audit_log WHERE seq = 2',
          'DELETE FROM audit_log',
          'TRUNCATE audit_log',
          'UPDATE audit_chain SET last_seq = 0',
          'DELETE FROM audit_chain',
          'TRUNCATE audit_chain',
          'TRUNCATE audit_checkpoints',
          `INSERT INTO audit_checkpoints (through_seq, through_hash, purged_count, purged_before)
             SELECT seq, hash, 1, now() FROM audit_log WHERE seq = 1`,
        ];
        for (const sql of refusals) {
          const err = await rejection(db.query(sql));
          expect(err.message, sql).toMatch(/append-only|refused|maintained by|purge only/);
        }
        expect(await log.verify()).toMatchObject({ ok: true, rows: 3 });
        expect((await log.list()).data).toHaveLength(3);
      });

      it('refuses inserts that do not extend the chain head', async () => {
        const { db, log } = await freshLog();
        await recordMany(log, 2);
        const insert = (seq: number, prev: string) =>
          db.query(
            `INSERT INTO audit_log (seq, id, action, resource_type, changes, occurred_at, prev_hash, hash)
             VALUES ($1, $2, 'pipeline.created', 'pipeline', '{}'::jsonb, now(), $3, $4)`,
            [seq, `log_forged_${seq}`, prev, 'a'.repeat(64)],
          );
        const head = (await log.verify()) as { head: { seq: number; hash: string } };
        expect((await rejection(insert(5, head.head.hash))).message).toMatch(/extend the chain/);
        expect((await rejection(insert(3, 'b'.repeat(64)))).message).toMatch(/extend the chain/);
        expect((await rejection(insert(2, head.head.hash))).message).toMatch(
          /extend the chain|duplicate|unique/i,
        );
      });

      it('lets the purge switch delete only old entries, only oldest first, only behind a checkpoint', async () => {
        const clock = manualClock(Date.now() - 200 * DAY);
        const { db, log } = await freshLog({ clock: clock.now });
        await recordMany(log, 3);
        clock.set(Date.now());
        await recordMany(log, 1);
        const cutoff = new Date(Date.now() - 100 * DAY).toISOString();
        const inPurge = (sql: string) =>
          db.transaction(async (tx) => {
            await tx.query(
              "SELECT set_config('signal.audit_purge', 'on', true), set_config('signal.audit_purge_before', $1, true)",
              [cutoff],
            );
            await tx.query(sql);
          });
        // Young entry, a middle entry (not a prefix), and an old prefix without its checkpoint.
        expect((await rejection(inPurge('DELETE FROM audit_log WHERE seq = 4'))).message).toMatch(
          /older than/,
        );
        expect((await rejection(inPurge('DELETE FROM audit_log WHERE seq = 2'))).message).toMatch(
          /oldest entries first/,
        );
        expect((await rejection(inPurge('DELETE FROM audit_log WHERE seq <= 2'))).message).toMatch(
          /no checkpoint/,
        );
        // The switch is transaction-local: the next statement outside the purge is refused again.
        expect((await rejection(db.query('DELETE FROM audit_log WHERE seq = 1'))).message).toMatch(
          /append-only/,
        );
        // A purge with a cutoff in the future is refused outright.
        const future = db.transaction(async (tx) => {
          await tx.query(
            "SELECT set_config('signal.audit_purge', 'on', true), set_config('signal.audit_purge_before', $1, true)",
            [new Date(Date.now() + DAY).toISOString()],
          );
          await tx.query('DELETE FROM audit_log WHERE seq = 4');
        });
        expect((await rejection(future)).message).toMatch(/cutoff in the past/);
        expect(await log.verify()).toMatchObject({ ok: true, rows: 4 });
      });
    });

    describe('retention purge', () => {
      it('purges only entries past the window, audits the purge, and the chain still verifies', async () => {
        const clock = manualClock(Date.now() - 200 * DAY);
        const { db, log, logger } = await freshLog({ clock: clock.now });
        await recordMany(log, 5); // 200 days before now
        clock.set(Date.now() - 150 * DAY);
        await recordMany(log, 2); // 150 days before now
        clock.set(Date.now() - 100 * DAY);

        // Seen from 100 days ago, only the first five are past 90 days.
        expect(await log.purgeExpired()).toBe(5);
        const entries = (await log.list()).data;
        expect(entries.map((e) => e.action)).toEqual([
          'audit.purged',
          'pipeline.updated',
          'pipeline.updated',
        ]);
        expect(entries[0]).toMatchObject({
          user_id: null,
          resource_type: 'audit',
          changes: {
            through_seq: { old: null, new: 5 },
            purged_count: { old: null, new: 5 },
            retention_days: { old: null, new: 90 },
          },
        });
        expect(await log.verify()).toMatchObject({ ok: true, rows: 3, head: { seq: 8 } });
        const { rows } = await db.query('SELECT through_seq FROM audit_checkpoints');
        expect(rows.map((r) => Number(r.through_seq))).toEqual([5]);
        expect(logger.lines.some((l) => l.level === 'info' && l.msg.includes('purged'))).toBe(true);

        // Nothing more is old enough: a no-op that records nothing.
        expect(await log.purgeExpired()).toBe(0);
        expect((await log.list()).data).toHaveLength(3);

        // Today, everything so far is past the window, the first purge's own entry included.
        clock.set(Date.now());
        expect(await log.purgeExpired()).toBe(3);
        const after = await log.list();
        expect(after.data.map((e) => e.action)).toEqual(['audit.purged']);
        expect(after.data[0]?.changes.through_seq).toEqual({ old: 5, new: 8 });
        expect(await log.verify()).toMatchObject({ ok: true, rows: 1, head: { seq: 9 } });

        const err = await rejection(log.purgeExpired({ retentionDays: 0 }));
        expect((err as AuditError).code).toBe('audit.invalid_option');
      });

      it('purges a large backlog in batches, each behind its own checkpoint', async () => {
        const clock = manualClock(Date.now() - 100 * DAY);
        const { log } = await freshLog({ clock: clock.now });
        await recordMany(log, 7);
        clock.set(Date.now());
        expect(await log.purgeExpired({ batchSize: 3 })).toBe(7);
        const actions = (await log.list()).data.map((e) => [e.action, e.changes.purged_count?.new]);
        expect(actions).toEqual([
          ['audit.purged', 1],
          ['audit.purged', 3],
          ['audit.purged', 3],
        ]);
        expect(await log.verify()).toMatchObject({ ok: true, rows: 3 });
      });
    });

    describe('tamper detection (a database admin with triggers disabled)', () => {
      async function tampered(sql: string, count = 10) {
        const { db, log } = await freshLog();
        await recordMany(log, count);
        const before = await log.verify();
        expect(before).toMatchObject({ ok: true, rows: count });
        await asDbAdmin(db, sql);
        return { db, log, before };
      }

      it('an edited field fails at that seq', async () => {
        const { log } = await tampered(
          "UPDATE audit_log SET user_email = 'intruder@example.com' WHERE seq = 5",
        );
        expect(await log.verify()).toEqual({ ok: false, firstBadSeq: 5, reason: 'hash_mismatch', rows: 4 });
      });

      it('an entry moved to another org (or out of its org) fails at that seq', async () => {
        const { db, log } = await freshLog();
        await log.record({ action: 'pipeline.created', org_id: 'org_a', user_id: 'usr_a' });
        await log.record({ action: 'pipeline.updated', org_id: 'org_a', user_id: 'usr_a' });
        await asDbAdmin(db, "UPDATE audit_log SET org_id = 'org_b' WHERE seq = 2");
        expect(await log.verify()).toEqual({ ok: false, firstBadSeq: 2, reason: 'hash_mismatch', rows: 1 });
        await asDbAdmin(db, 'UPDATE audit_log SET org_id = NULL WHERE seq = 1');
        expect(await log.verify()).toEqual({ ok: false, firstBadSeq: 1, reason: 'hash_mismatch', rows: 0 });
      });

      it('an edited change value fails at that seq', async () => {
        const { log } = await tampered(
          `UPDATE audit_log SET changes = jsonb_set(changes, '{name,new}', '"other"') WHERE seq = 7`,
        );
        expect(await log.verify()).toMatchObject({ ok: false, firstBadSeq: 7, reason: 'hash_mismatch' });
      });

      it('an overwritten hash or prev_hash fails at that seq', async () => {
        const { log } = await tampered(`UPDATE audit_log SET hash = repeat('a', 64) WHERE seq = 5`);
        expect(await log.verify()).toMatchObject({ ok: false, firstBadSeq: 5, reason: 'hash_mismatch' });
        const { log: log2 } = await tampered(
          `UPDATE audit_log SET prev_hash = repeat('b', 64) WHERE seq = 6`,
        );
        expect(await log2.verify()).toMatchObject({ ok: false, firstBadSeq: 6, reason: 'chain_broken' });
      });

      it('an edit with its own hash recomputed fails at the next seq', async () => {
        const { db, log } = await tampered('SELECT 1');
        const { rows } = await db.query('SELECT * FROM audit_log WHERE seq = 5');
        const row = auditRowSchema.parse(rows[0]);
        const edited = { ...row, user_email: 'intruder@example.com' };
        await asDbAdmin(
          db,
          `UPDATE audit_log SET user_email = 'intruder@example.com', hash = '${entryHash(row.prev_hash, edited)}'
           WHERE seq = 5`,
        );
        expect(await log.verify()).toEqual({ ok: false, firstBadSeq: 6, reason: 'chain_broken', rows: 5 });
      });

      it('a deleted middle row fails at the missing seq', async () => {
        const { log } = await tampered('DELETE FROM audit_log WHERE seq = 5');
        expect(await log.verify()).toEqual({ ok: false, firstBadSeq: 5, reason: 'gap', rows: 4 });
      });

      it('deleted first or last rows are found too', async () => {
        const { log } = await tampered('DELETE FROM audit_log WHERE seq <= 2');
        expect(await log.verify()).toMatchObject({ ok: false, firstBadSeq: 1, reason: 'gap' });
        const { log: tail } = await tampered('DELETE FROM audit_log WHERE seq = 10');
        expect(await tail.verify()).toMatchObject({ ok: false, firstBadSeq: 10, reason: 'gap' });
        const { log: tailAndHead, before } = await tampered(
          `DELETE FROM audit_log WHERE seq = 10;
           UPDATE audit_chain SET last_seq = 9, last_hash = (SELECT hash FROM audit_log WHERE seq = 9)`,
        );
        // A consistent cut of the tail is the one edit the chain alone cannot see; an anchor can.
        expect(await tailAndHead.verify()).toMatchObject({ ok: true, rows: 9 });
        if (!before.ok) throw new Error('expected an intact chain');
        expect(await tailAndHead.verify({ anchor: before.head })).toMatchObject({
          ok: false,
          firstBadSeq: 10,
          reason: 'anchor_mismatch',
        });
      });

      it('two swapped rows fail as reordered at the first of them', async () => {
        const { log } = await tampered(
          `UPDATE audit_log SET seq = seq + 1000 WHERE seq IN (4, 5);
           UPDATE audit_log SET seq = 5 WHERE seq = 1004;
           UPDATE audit_log SET seq = 4 WHERE seq = 1005`,
        );
        expect(await log.verify()).toEqual({ ok: false, firstBadSeq: 4, reason: 'reordered', rows: 3 });
      });

      it('a row inserted into the middle (later rows renumbered) is found', async () => {
        const { db, log } = await tampered(
          `UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 5;
           UPDATE audit_log SET seq = seq - 999 WHERE seq > 1000;
           UPDATE audit_chain SET last_seq = 11`,
        );
        // The forger links the new row properly to seq 4 and hashes it correctly.
        const { rows } = await db.query('SELECT hash FROM audit_log WHERE seq = 4');
        const prev = String(rows[0]?.hash);
        const forged = {
          seq: 5,
          id: 'log_forged',
          action: 'pipeline.deleted' as const,
          user_id: 'usr_admin',
          user_email: null,
          resource_type: 'pipeline' as const,
          resource_id: 'pl_x',
          changes: {},
          ip_address: null,
          user_agent: null,
          timestamp: new Date().toISOString(),
          org_id: null,
        };
        await asDbAdmin(
          db,
          `INSERT INTO audit_log (seq, id, action, user_id, resource_type, resource_id, changes, occurred_at, prev_hash, hash)
           VALUES (5, 'log_forged', 'pipeline.deleted', 'usr_admin', 'pipeline', 'pl_x', '{}'::jsonb,
                   '${forged.timestamp}', '${prev}', '${entryHash(prev, forged)}')`,
        );
        expect(await log.verify()).toMatchObject({ ok: false, firstBadSeq: 6, reason: 'chain_broken' });
      });

      it('a row appended past the head without the trigger fails at its seq', async () => {
        const { log } = await tampered(
          `INSERT INTO audit_log (seq, id, action, resource_type, changes, occurred_at, prev_hash, hash)
           SELECT 11, 'log_extra', 'pipeline.created', 'pipeline', '{}'::jsonb, now(), hash, repeat('c', 64)
           FROM audit_log WHERE seq = 10`,
        );
        expect(await log.verify()).toMatchObject({ ok: false, firstBadSeq: 11, reason: 'head_mismatch' });
      });

      it('a prefix deleted behind a forged checkpoint fails as unaudited', async () => {
        const { log } = await tampered(
          `INSERT INTO audit_checkpoints (through_seq, through_hash, purged_count, purged_before)
             SELECT seq, hash, 3, now() FROM audit_log WHERE seq = 3;
           DELETE FROM audit_log WHERE seq <= 3`,
        );
        expect(await log.verify()).toMatchObject({
          ok: false,
          firstBadSeq: 4,
          reason: 'checkpoint_unaudited',
        });
      });

      it('an unparseable row is reported, not thrown', async () => {
        const { log } = await tampered("UPDATE audit_log SET action = 'pipeline.exploded' WHERE seq = 3");
        expect(await log.verify()).toMatchObject({ ok: false, firstBadSeq: 3, reason: 'invalid_row' });
      });

      it('an anchor noted earlier catches a rewrite with every hash recomputed', async () => {
        const { log, before } = await tampered('SELECT 1');
        if (!before.ok) throw new Error('expected an intact chain');
        expect(await log.verify({ anchor: before.head })).toMatchObject({ ok: true });
        expect(await log.verify({ anchor: { seq: 10, hash: 'f'.repeat(64) } })).toMatchObject({
          ok: false,
          firstBadSeq: 10,
          reason: 'anchor_mismatch',
        });
        expect(await log.verify({ anchor: { seq: 11, hash: before.head.hash } })).toMatchObject({
          ok: false,
          firstBadSeq: 11,
          reason: 'anchor_mismatch',
        });
      });
    });

    describe('concurrency', () => {
      it('50 parallel records form one valid chain with 50 consecutive seqs', async () => {
        const { log } = await freshLog({ maxConnections: 10 });
        await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            log.record({ action: 'auth.login', user_id: `usr_${i}`, ip_address: '198.51.100.7' }),
          ),
        );
        const lines = await collect(log.exportNdjson());
        expect(lines.map((line) => JSON.parse(line).seq)).toEqual(
          Array.from({ length: 50 }, (_, i) => i + 1),
        );
        expect(new Set(lines.map((line) => JSON.parse(line).user_id)).size).toBe(50);
        const timestamps = lines.map((line) => Date.parse(JSON.parse(line).timestamp));
        expect([...timestamps].sort((a, b) => a - b)).toEqual(timestamps);
        expect(await log.verify()).toMatchObject({ ok: true, rows: 50, head: { seq: 50 } });
      });
    });

    describe('crypto audit sink', () => {
      it('records crypto events as system entries with metadata only, in the background', async () => {
        const { log } = await freshLog();
        const logger = captureLogger();
        const sink = cryptoAuditSink(log, logger);
        const keyId = randomBytes(16).toString('hex');
        const previousKeyId = randomBytes(16).toString('hex');
        sink.record({
          action: 'crypto.key_loaded',
          provider: 'local',
          keyId,
          previousKeyId,
          dualKeyMode: true,
        });
        sink.record({ action: 'crypto.key_rotated', provider: 'local', keyId, previousKeyId });
        sink.record({
          action: 'crypto.decrypt_failed',
          code: 'commitment_mismatch',
          keyId,
          purpose: 'credentials',
          dataClass: 'credentials',
          table: 'integrations',
          column: 'credentials',
          rowId: '42',
        });
        await sink.drain();
        const entries = (await log.list({ resource_type: 'crypto' })).data;
        expect(entries.map((e) => e.action).sort()).toEqual([
          'crypto.decrypt_failed',
          'crypto.key_loaded',
          'crypto.key_rotated',
        ]);
        for (const entry of entries) {
          expect(entry).toMatchObject({
            user_id: null,
            user_email: null,
            resource_type: 'crypto',
            resource_id: keyId,
          });
        }
        const rotated = entries.find((e) => e.action === 'crypto.key_rotated');
        expect(rotated?.changes).toEqual({
          provider: { old: null, new: 'local' },
          key_id: { old: previousKeyId, new: keyId },
        });
        const failed = entries.find((e) => e.action === 'crypto.decrypt_failed');
        expect(failed?.changes).toMatchObject({
          code: { old: null, new: 'commitment_mismatch' },
          table: { old: null, new: 'integrations' },
          row_id: { old: null, new: '42' },
        });
        expect(logger.lines.filter((l) => l.level === 'error')).toEqual([]);
      });
    });
  });
}
