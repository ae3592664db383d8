import { randomBytes } from 'node:crypto';
import {
  countRecordsUnderKey,
  ensureDemoOrg,
  integrationCredentialsContext,
  pipelineSecretContext,
} from '@signal/control-plane';
import { type CryptoService, createCryptoService, createKeyring } from '@signal/crypto';
import { type Database, type Queryable, StoreError } from '@signal/store';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { MANAGEMENT_API_SCHEMA } from '../src/container';
import type { ReencryptionJobs } from '../src/crypto/reencrypt-job';
import type { DbTarget } from './db-targets';
import { seedOperatorOrg, seedOrg, startTestApi, type TestApi, type TestApiOptions } from './harness';

const PATH = '/v1/admin/crypto/re-encrypt';
const errorSchema = z.strictObject({ error: z.strictObject({ code: z.string(), message: z.string() }) });
const ISO_SECONDS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const statusSchema = z.strictObject({
  status: z.enum(['running', 'completed', 'failed']),
  total_records: z.number().int(),
  processed_records: z.number().int(),
  failed_records: z.number().int(),
  started_at: z.string().regex(ISO_SECONDS),
  completed_at: z.string().regex(ISO_SECONDS).nullable(),
});

interface Seeded {
  readonly orgId: string;
  readonly adminToken: (api: TestApi) => Promise<string>;
  /** pipeline_secrets.id → the secret's plaintext. */
  readonly secrets: Map<string, string>;
  /** integrations.id → credentials. */
  readonly credentials: Map<string, Record<string, string>>;
}

/**
 * Records under key A: 4 pipelines (one rotated: 5 secrets), 4 integrations with credentials, 1 legacy
 * plaintext; in the operator org, whose admin may run the job.
 */
async function seedUnderOldKey(t: TestApi): Promise<Seeded> {
  const org = await seedOperatorOrg(t.cp, t.db);
  const secrets = new Map<string, string>();
  const credentials = new Map<string, Record<string, string>>();
  const secretIdOf = async (pipelineId: string) => {
    const { rows } = await t.db.query<{ id: string }>(
      'SELECT id FROM pipeline_secrets WHERE pipeline_id = $1 AND grace_ends_at IS NULL',
      [pipelineId],
    );
    return rows[0]?.id ?? '';
  };
  let firstPipeline = '';
  for (let i = 0; i < 4; i++) {
    const made = await t.cp.pipelines.create(org.orgId, { name: `Pipeline ${i}`, type: 'server' });
    firstPipeline ||= made.pipeline.id;
    secrets.set(await secretIdOf(made.pipeline.id), made.hmacSecret);
    const creds = { access_token: `token-${randomBytes(12).toString('hex')}` };
    const integration = await t.cp.integrations.create(org.orgId, made.pipeline.id, {
      vendor: 'meta',
      name: `Meta ${i}`,
      credentials: creds,
    });
    credentials.set(integration.id, creds);
  }
  const rotated = await t.cp.pipelines.rotateSecret(org.orgId, firstPipeline);
  secrets.set(rotated.secretInfo.id, rotated.hmacSecret);
  // A value written before encryption existed: no `v1.` prefix, no key id.
  await t.db.query(
    `INSERT INTO pipeline_secrets (id, pipeline_id, secret, key_id, created_at, grace_ends_at)
     VALUES ('ps_legacy0000000000000000000000', $1, 'legacy-plaintext-secret', NULL, now(), now() + interval '1 day')`,
    [firstPipeline],
  );
  secrets.set('ps_legacy0000000000000000000000', 'legacy-plaintext-secret');
  return {
    orgId: org.orgId,
    adminToken: (api) => api.tokenFor(org.users.admin),
    secrets,
    credentials,
  };
}

const TOTAL = 10;

/** Every record is under `crypto`'s current key, opens with that key alone, and holds exactly its original value. */
async function expectAllUnder(
  db: Database,
  onlyNewKey: CryptoService,
  seeded: Seeded,
  except: readonly string[] = [],
) {
  const keyId = onlyNewKey.keyring.currentKeyId;
  const secrets = await db.query<{ id: string; secret: string; key_id: string }>(
    'SELECT id, secret, key_id FROM pipeline_secrets',
  );
  for (const row of secrets.rows) {
    if (except.includes(row.id)) continue;
    expect(row.key_id, row.id).toBe(keyId);
    // Opening once gives the original plaintext: it was not sealed twice.
    expect(onlyNewKey.openText(row.secret, pipelineSecretContext(row.id)).toString()).toBe(
      seeded.secrets.get(row.id),
    );
  }
  const integrations = await db.query<{ id: string; credentials: string; credentials_key_id: string }>(
    'SELECT id, credentials, credentials_key_id FROM integrations',
  );
  for (const row of integrations.rows) {
    if (except.includes(row.id)) continue;
    expect(row.credentials_key_id, row.id).toBe(keyId);
    const opened = JSON.parse(
      onlyNewKey.openText(row.credentials, integrationCredentialsContext(row.id)).toString(),
    );
    expect(opened).toEqual(seeded.credentials.get(row.id));
  }
}

type Hook = (sql: string, params: readonly unknown[]) => Promise<void> | void;

/**
 * Wraps the port for fault injection: `before` runs ahead of every statement (it may throw, as the database
 * would), `after` once a statement has returned; inside and outside transactions.
 */
function interceptDb(db: Database, hooks: { before?: Hook; after?: Hook }): Database {
  const wrap = (q: Queryable): Queryable => ({
    async query<R>(sql: string, params?: readonly unknown[]) {
      await hooks.before?.(sql, params ?? []);
      const result = await q.query<R>(sql, params);
      await hooks.after?.(sql, params ?? []);
      return result;
    },
    exec: (sql) => q.exec(sql),
  });
  const outer = wrap(db);
  return {
    kind: db.kind,
    query: outer.query,
    exec: outer.exec,
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    close: () => db.close(),
  };
}

/** Optional: a target that can run the job in a child process and SIGKILL it (PostgreSQL). */
export interface CrashTarget {
  /** Spawns the worker fixture against `db`'s schema and resolves once it committed `batches` batches, then kills it. */
  runAndKill(db: Database, keys: { current: Buffer; previous: Buffer }, batches: number): Promise<void>;
}

export function describeReencryptSuite(target: DbTarget, skip = false, crashTarget?: CrashTarget): void {
  describe.skipIf(skip)(`re-encryption job on ${target.name}`, () => {
    beforeAll(() => target.setup());
    afterAll(() => target.teardown());

    const keyA = () => randomBytes(32);

    /** Key A for seeding, then a "restart" with B current and A previous. */
    async function rotated(options: Omit<TestApiOptions, 'keys'> = {}, db?: Database) {
      const a = keyA();
      const b = randomBytes(32);
      const database = db ?? (await target.fresh(MANAGEMENT_API_SCHEMA));
      const before = await startTestApi(database, { keys: { current: a } });
      const seeded = await seedUnderOldKey(before);
      const oldKeyId = before.crypto.keyring.currentKeyId;
      await before.close();
      const after = await startTestApi(database, { ...options, keys: { current: b, previous: a } });
      const onlyB = createCryptoService({ keyring: createKeyring({ current: b }) });
      return { db: database, a, b, seeded, oldKeyId, after, onlyB };
    }

    it('re-encrypts every record under the new key, legacy plaintext included: failed_records 0', async () => {
      const { db, seeded, oldKeyId, after, onlyB } = await rotated({ reencryption: { batchSize: 3 } });
      try {
        const token = await seeded.adminToken(after);
        const started = await after.call('POST', PATH, { token });
        expect(started.status).toBe(202);
        expect(statusSchema.parse(started.json)).toMatchObject({
          status: 'running',
          total_records: TOTAL,
          processed_records: 0,
          failed_records: 0,
          completed_at: null,
        });
        await after.api.reencryption.idle();
        const done = await after.call('GET', PATH, { token });
        expect(Object.keys(done.json as object)).toEqual([
          'status',
          'total_records',
          'processed_records',
          'failed_records',
          'started_at',
          'completed_at',
        ]);
        expect(statusSchema.parse(done.json)).toMatchObject({
          status: 'completed',
          total_records: TOTAL,
          processed_records: TOTAL,
          failed_records: 0,
        });
        await expectAllUnder(db, onlyB, seeded);
        expect(await countRecordsUnderKey(db, oldKeyId)).toBe(0);
        const actions = (await after.audit.list({ resource_type: 'crypto' })).data.map((e) => e.action);
        expect(actions).toContain('crypto.reencrypt_started');
        expect(actions).toContain('crypto.reencrypt_completed');
        // The gateway's view still works, now from the new key alone.
        const again = await after.call('POST', PATH, { token });
        expect(statusSchema.parse(again.json)).toMatchObject({ status: 'completed', total_records: 0 });
      } finally {
        await after.close();
      }
    });

    it('leaves a corrupted ciphertext untouched, counts it failed and logs the reason (no data in audit or logs)', async () => {
      const { db, seeded, oldKeyId, after, onlyB } = await rotated();
      try {
        const [victimId] = [...seeded.credentials.keys()];
        const { rows } = await db.query<{ credentials: string }>(
          'SELECT credentials FROM integrations WHERE id = $1',
          [victimId],
        );
        const original = rows[0]?.credentials ?? '';
        // Flip one character inside the last GCM chunk: the tag no longer verifies.
        const at = original.length - 30;
        const corrupted = `${original.slice(0, at)}${original[at] === 'A' ? 'B' : 'A'}${original.slice(at + 1)}`;
        await db.query('UPDATE integrations SET credentials = $2 WHERE id = $1', [victimId, corrupted]);

        const token = await seeded.adminToken(after);
        expect((await after.call('POST', PATH, { token })).status).toBe(202);
        await after.api.reencryption.idle();
        const status = statusSchema.parse((await after.call('GET', PATH, { token })).json);
        expect(status).toMatchObject({
          status: 'completed',
          failed_records: 1,
          processed_records: TOTAL - 1,
        });

        const row = await db.query<{ credentials: string; credentials_key_id: string }>(
          'SELECT credentials, credentials_key_id FROM integrations WHERE id = $1',
          [victimId],
        );
        expect(row.rows[0]).toEqual({ credentials: corrupted, credentials_key_id: oldKeyId });
        await expectAllUnder(db, onlyB, seeded, [victimId ?? '']);
        expect(await after.api.reencryption.failures()).toEqual([
          expect.objectContaining({
            column: 'integrations.credentials',
            recordId: victimId,
            reason: 'authentication_failed',
          }),
        ]);
        expect(after.logs.lines).toContainEqual(
          expect.objectContaining({
            level: 'warn',
            obj: expect.objectContaining({ record_id: victimId, reason: 'authentication_failed' }),
          }),
        );
        const dump = await after.auditDump();
        const logs = after.logs.text();
        for (const text of [dump, logs]) {
          expect(text).not.toContain(corrupted.slice(3, 40));
          for (const creds of seeded.credentials.values()) expect(text).not.toContain(creds.access_token);
          for (const secret of seeded.secrets.values()) expect(text).not.toContain(secret);
        }
        // Nothing else is left under the old key, so the operator sees exactly one record to investigate.
        expect(await countRecordsUnderKey(db, oldKeyId)).toBe(1);
      } finally {
        await after.close();
      }
    });

    it('reports a record sealed under a key this process does not hold as unknown_key_id', async () => {
      const { db, seeded, after } = await rotated();
      try {
        const [victimId] = [...seeded.secrets.keys()];
        const stranger = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) });
        const foreign = stranger.sealText('x', pipelineSecretContext(victimId ?? ''));
        await db.query('UPDATE pipeline_secrets SET secret = $2, key_id = $3 WHERE id = $1', [
          victimId,
          foreign,
          stranger.keyring.currentKeyId,
        ]);
        const token = await seeded.adminToken(after);
        await after.call('POST', PATH, { token });
        await after.api.reencryption.idle();
        expect(statusSchema.parse((await after.call('GET', PATH, { token })).json)).toMatchObject({
          status: 'completed',
          failed_records: 1,
        });
        expect((await after.api.reencryption.failures())[0]).toMatchObject({
          recordId: victimId,
          reason: 'unknown_key_id',
        });
      } finally {
        await after.close();
      }
    });

    it('answers 409 while a job runs (in this or another process) and resumes after a crash without losing or double-encrypting', async () => {
      let jobs: ReencryptionJobs | undefined;
      let crash: Promise<void> | undefined;
      const {
        db,
        seeded,
        after: first,
        onlyB,
        a,
        b,
      } = await rotated({
        reencryption: {
          batchSize: 2,
          // Long enough that a loaded machine cannot let it lapse before the 409 checks below; the test ends
          // it itself (as time would) before the takeover.
          leaseMs: 10_000,
          // A killed process has no watcher either: without this, this process's own watcher could win the
          // race for the orphaned job against the second process on a loaded machine.
          watchIntervalMs: 60_000,
          // Simulated SIGKILL between batches: the loop stops after the first batch and keeps its lease.
          onProgress: () => {
            crash ??= jobs?.stop({ releaseLease: false });
          },
        },
      });
      jobs = first.api.reencryption;
      const second = await startTestApi(await target.reopen(db), {
        keys: { current: b, previous: a },
        // Its own watcher would take the job over by itself; here the takeover goes through POST.
        reencryption: { batchSize: 3, leaseMs: 10_000, watchIntervalMs: 60_000 },
      });
      try {
        const token = await seeded.adminToken(first);
        expect((await first.call('POST', PATH, { token })).status).toBe(202);
        await first.api.reencryption.idle();
        await crash;
        const paused = statusSchema.parse((await second.call('GET', PATH, { token })).json);
        expect(paused).toMatchObject({ status: 'running', processed_records: 2, total_records: TOTAL });

        // The lease is live: both processes refuse a second job.
        for (const api of [first, second]) {
          const conflict = await api.call('POST', PATH, { token });
          expect(conflict.status).toBe(409);
          expect(conflict.json).toMatchObject({ error: { code: 'conflict' } });
        }

        // The crashed process's lease runs out (it renews nothing any more).
        await db.query(
          "UPDATE crypto_reencrypt_jobs SET lease_expires_at = now() - interval '1 millisecond'",
        );
        const resumed = await second.call('POST', PATH, { token });
        expect(resumed.status).toBe(202);
        expect(statusSchema.parse(resumed.json)).toMatchObject({ status: 'running', processed_records: 2 });
        await second.api.reencryption.idle();
        const done = statusSchema.parse((await second.call('GET', PATH, { token })).json);
        expect(done).toEqual(
          expect.objectContaining({ status: 'completed', processed_records: TOTAL, failed_records: 0 }),
        );
        expect(done.total_records).toBe(TOTAL);
        await expectAllUnder(db, onlyB, seeded);
        const { rows } = await db.query<{ n: string }>(
          "SELECT count(*) AS n FROM crypto_reencrypt_jobs WHERE status = 'completed'",
        );
        expect(Number(rows[0]?.n)).toBe(1);
      } finally {
        await second.close();
        await first.close();
      }
    });

    it.skipIf(crashTarget === undefined)(
      'continues after the process running the job is SIGKILLed mid-job (another process takes over)',
      async () => {
        const { db, seeded, after, onlyB, a, b } = await rotated({ reencryption: { leaseMs: 300 } });
        try {
          await crashTarget?.runAndKill(db, { current: b, previous: a }, 3);
          const paused = await after.api.reencryption.status();
          expect(paused).toMatchObject({ status: 'running' });
          expect(paused?.processed_records).toBeGreaterThanOrEqual(3);
          expect(paused?.processed_records).toBeLessThan(TOTAL);
          // Nobody calls anything: this process's watcher notices the expired lease and takes the job over.
          await vi.waitFor(
            async () =>
              expect(await after.api.reencryption.status()).toMatchObject({
                status: 'completed',
                processed_records: TOTAL,
                failed_records: 0,
              }),
            { timeout: 10_000, interval: 100 },
          );
          await expectAllUnder(db, onlyB, seeded);
        } finally {
          await after.close();
        }
      },
    );

    it('ends an orphaned job started for another key as failed, so a process with a newer key can start', async () => {
      let jobs: ReencryptionJobs | undefined;
      let crash: Promise<void> | undefined;
      const { db, seeded, after, b } = await rotated({
        reencryption: {
          batchSize: 2,
          leaseMs: 200,
          // This process "crashed": its own watcher must not pick the job up again.
          watchIntervalMs: 60_000,
          onProgress: () => {
            crash ??= jobs?.stop({ releaseLease: false });
          },
        },
      });
      jobs = after.api.reencryption;
      // The operator moved on to key C (B previous) while the job for B was orphaned: no process can finish it.
      const newer = await startTestApi(await target.reopen(db), {
        keys: { current: randomBytes(32), previous: b },
        reencryption: { watchIntervalMs: 60_000 },
      });
      try {
        const token = await seeded.adminToken(after);
        expect((await after.call('POST', PATH, { token })).status).toBe(202);
        await after.api.reencryption.idle();
        await crash;
        await new Promise((resolve) => setTimeout(resolve, 300));
        const replaced = await newer.call('POST', PATH, { token });
        expect(replaced.status).toBe(202);
        const { rows } = await db.query<{ status: string; error: string | null }>(
          'SELECT status, error FROM crypto_reencrypt_jobs ORDER BY started_at, id',
        );
        expect(rows[0]).toEqual({ status: 'failed', error: 'target_key_changed' });
        await newer.api.reencryption.idle();
        const completed = (await newer.audit.list({ action: 'crypto.reencrypt_completed' })).data;
        expect(completed.map((e) => e.changes)).toContainEqual(
          expect.objectContaining({ error: { old: null, new: 'target_key_changed' } }),
        );
      } finally {
        await newer.close();
        await after.close();
      }
    });

    it('a process that stops gracefully hands the job over at once (lease released)', async () => {
      let jobs: ReencryptionJobs | undefined;
      let stopped: Promise<void> | undefined;
      const {
        db,
        seeded,
        after: first,
        onlyB,
        a,
        b,
      } = await rotated({
        reencryption: {
          batchSize: 4,
          onProgress: () => {
            stopped ??= jobs?.stop();
          },
        },
      });
      jobs = first.api.reencryption;
      const second = await startTestApi(await target.reopen(db), { keys: { current: b, previous: a } });
      try {
        await first.call('POST', PATH, { token: await seeded.adminToken(first) });
        await first.api.reencryption.idle();
        await stopped;
        expect(await second.api.reencryption.status()).toMatchObject({
          status: 'running',
          processed_records: 4,
        });
        expect(await second.api.reencryption.resumeOrphaned()).toBe(true);
        await second.api.reencryption.idle();
        expect(await second.api.reencryption.status()).toMatchObject({
          status: 'completed',
          processed_records: TOTAL,
        });
        await expectAllUnder(db, onlyB, seeded);
      } finally {
        await second.close();
        await first.close();
      }
    });

    it('never overwrites a record changed between its read and its write', async () => {
      const database = await target.fresh(MANAGEMENT_API_SCHEMA);
      let raced: string | undefined;
      let writer: TestApi | undefined;
      const { db, seeded, after, onlyB } = await rotated(
        {
          wrapDb: (inner) =>
            interceptDb(inner, {
              after: async (sql) => {
                // Right after the job selected its integrations batch, the app rewrites one of them.
                if (raced === undefined && sql.includes('credentials AS value') && writer !== undefined) {
                  raced = [...seeded.credentials.keys()][0];
                  if (raced !== undefined) {
                    await writer.cp.integrations.update(seeded.orgId, raced, {
                      credentials: { access_token: 'rewritten-meanwhile' },
                    });
                  }
                }
              },
            }),
        },
        database,
      );
      writer = after;
      try {
        await after.call('POST', PATH, { token: await seeded.adminToken(after) });
        await after.api.reencryption.idle();
        expect(raced).toBeDefined();
        expect(await after.api.reencryption.status()).toMatchObject({
          status: 'completed',
          failed_records: 0,
        });
        expect(await after.cp.getIntegrationCredentials(raced ?? '')).toEqual({
          access_token: 'rewritten-meanwhile',
        });
        seeded.credentials.set(raced ?? '', { access_token: 'rewritten-meanwhile' });
        await expectAllUnder(db, onlyB, seeded);
      } finally {
        await after.close();
      }
    });

    it('records a database timeout on one record as a failure and completes the rest', async () => {
      const database = await target.fresh(MANAGEMENT_API_SCHEMA);
      let victim: string | undefined;
      const { db, seeded, oldKeyId, after, onlyB } = await rotated(
        {
          reencryption: { retryAttempts: 2, retryBaseDelayMs: 1 },
          wrapDb: (inner) =>
            interceptDb(inner, {
              before: (sql, params) => {
                // Any write that includes the victim's record times out (the batch, then its own row).
                const ids = params[0];
                if (
                  victim !== undefined &&
                  sql.startsWith('UPDATE integrations AS t SET credentials') &&
                  Array.isArray(ids) &&
                  ids.includes(victim)
                ) {
                  throw new StoreError('timeout', 'canceling statement due to statement timeout');
                }
              },
            }),
        },
        database,
      );
      victim = [...seeded.credentials.keys()][1];
      try {
        await after.call('POST', PATH, { token: await seeded.adminToken(after) });
        await after.api.reencryption.idle();
        expect(await after.api.reencryption.status()).toMatchObject({
          status: 'completed',
          processed_records: TOTAL - 1,
          failed_records: 1,
        });
        expect((await after.api.reencryption.failures())[0]).toMatchObject({
          recordId: victim,
          reason: 'db_timeout',
        });
        const { rows } = await db.query<{ key_id: string }>(
          'SELECT credentials_key_id AS key_id FROM integrations WHERE id = $1',
          [victim],
        );
        expect(rows[0]?.key_id).toBe(oldKeyId);
        await expectAllUnder(db, onlyB, seeded, [victim ?? '']);
      } finally {
        await after.close();
      }
    });

    it("answers 404 before any job ran, and only the operator org's admins and owner may start one", async () => {
      const database = await target.fresh(MANAGEMENT_API_SCHEMA);
      const t = await startTestApi(database);
      try {
        const org = await seedOperatorOrg(t.cp, t.db);
        expect((await t.call('GET', PATH, { token: await t.tokenFor(org.users.admin) })).status).toBe(404);
        expect((await t.call('POST', PATH, { token: await t.tokenFor(org.users.editor) })).status).toBe(403);
        expect((await t.call('POST', PATH, { token: await t.tokenFor(org.users.owner) })).status).toBe(202);
      } finally {
        await t.close();
      }
    });

    // The job re-seals every org's records and its status counts them all: an org's admin is not enough.
    it("refuses an ordinary org's admin and owner with 403 (start and status): the deployment's operator org only", async () => {
      const a = keyA();
      const database = await target.fresh(MANAGEMENT_API_SCHEMA);
      const before = await startTestApi(database, { keys: { current: a } });
      const seeded = await seedUnderOldKey(before);
      // Another org's records are under the old key too: the job re-seals them and counts them.
      const tenant = await seedOrg(before.cp, before.db);
      await before.cp.pipelines.create(tenant.orgId, { name: 'Tenant', type: 'server' });
      await before.close();
      const after = await startTestApi(database, { keys: { current: randomBytes(32), previous: a } });
      try {
        for (const role of ['admin', 'owner'] as const) {
          const token = await after.tokenFor(tenant.users[role]);
          for (const method of ['POST', 'GET']) {
            const res = await after.call(method, PATH, { token });
            expect(res.status, `${method} as the tenant's ${role}`).toBe(403);
            const { error } = errorSchema.parse(res.json);
            expect(error.code).toBe('forbidden');
            expect(error.message).toMatch(/whole deployment.*operator org/);
            expect(res.text).not.toMatch(/total_records|processed_records/);
          }
        }
        expect(await after.api.reencryption.status()).toBeNull();

        // The operator org's admin starts it and sees the deployment-wide figures (both orgs' records).
        const operator = await seeded.adminToken(after);
        expect((await after.call('POST', PATH, { token: operator })).status).toBe(202);
        await after.api.reencryption.idle();
        const status = await after.call('GET', PATH, { token: operator });
        expect(statusSchema.parse(status.json)).toMatchObject({
          status: 'completed',
          total_records: TOTAL + 1,
          failed_records: 0,
        });
        // Once a job ran, the tenant still gets 403, not its figures.
        const peek = await after.call('GET', PATH, { token: await after.tokenFor(tenant.users.admin) });
        expect(peek.status).toBe(403);
      } finally {
        await after.close();
      }
    });

    it('the org the all-in-one seeds for its bootstrap admin is the operator org by default', async () => {
      const t = await startTestApi(await target.fresh(MANAGEMENT_API_SCHEMA));
      try {
        const demo = await ensureDemoOrg(t.cp, t.db, { adminEmail: 'bootstrap@operator.example' });
        const token = await t.tokenFor(demo.admin);
        expect((await t.call('POST', PATH, { token })).status).toBe(202);
        expect((await t.call('GET', PATH, { token })).status).toBe(200);
      } finally {
        await t.close();
      }
    });

    it('with operatorOrg null nobody may use the endpoint over HTTP (signal-cli still can)', async () => {
      const t = await startTestApi(await target.fresh(MANAGEMENT_API_SCHEMA), { operatorOrg: null });
      try {
        const org = await seedOperatorOrg(t.cp, t.db);
        const res = await t.call('POST', PATH, { token: await t.tokenFor(org.users.owner) });
        expect(res.status).toBe(403);
        expect(errorSchema.parse(res.json).error.code).toBe('forbidden');
      } finally {
        await t.close();
      }
    });
  });
}
