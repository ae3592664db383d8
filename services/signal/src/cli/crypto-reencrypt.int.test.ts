import { randomBytes, randomUUID } from 'node:crypto';
import { type ControlPlane, countRecordsByKeyId, createControlPlane } from '@signal/control-plane';
import { type CryptoService, createCryptoService, createKeyring } from '@signal/crypto';
import { createDlqStore, createRetryStore } from '@signal/delivery-worker';
import { canonicalEventSchema, type DlqMessage, topics } from '@signal/events';
import { createIdentityGraph, loadBlindIndex } from '@signal/identity-hub';
import type { Database, Queryable } from '@signal/store';
import { postgresAvailable } from '@signal/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { cli, type FreshDatabase, freshDatabase, seedOrgPipeline } from './cli.fixtures';
import { DEPLOYMENT_ENCRYPTED_COLUMNS } from './crypto-reencrypt';

const statusSchema = z.strictObject({
  status: z.enum(['running', 'completed', 'failed']),
  total_records: z.number().int(),
  processed_records: z.number().int(),
  failed_records: z.number().int(),
  started_at: z.string(),
  completed_at: z.string().nullable(),
});
const STATUS_KEYS = [
  'status',
  'total_records',
  'processed_records',
  'failed_records',
  'started_at',
  'completed_at',
];

/** More than two of the job's batches (500), so an interrupt lands mid-job. */
const INTEGRATIONS = 1_100;
const IDENTITIES = 3;
/** Dead letters sealed by the worker's indexer, plus one indexed before encryption at rest (plaintext). */
const DEAD_LETTERS = 3;
const LEGACY_EMAIL = 'legacy.letter@planted.example';
/** Retries scheduled (sealed) by the worker, plus one scheduled before encryption at rest (plaintext). */
const RETRIES = 3;
const LEGACY_RETRY_EMAIL = 'legacy.retry@planted.example';
const newKey = () => randomBytes(32);
const hex = (key: Buffer) => key.toString('hex');
const cryptoWith = (current: Buffer) => createCryptoService({ keyring: createKeyring({ current }) });

function identify(userId: string, email: string) {
  const now = new Date().toISOString();
  return canonicalEventSchema.parse({
    type: 'identify',
    anonymousId: randomUUID(),
    userId,
    messageId: `msg-${randomBytes(6).toString('hex')}`,
    properties: {},
    traits: { email, plan: 'pro' },
    context: { consent: {}, provenance: 'pipeline_key' },
    timestamp: now,
    receivedAt: now,
    org: 'org_cli',
    pipelineId: 'pl_cli',
  });
}

/** The only JSON line on stdout, checked against the API contract (keys and their order). */
function stdoutStatus(stdout: string) {
  const lines = stdout.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  const parsed = JSON.parse(lines[0] ?? '');
  expect(Object.keys(parsed)).toEqual(STATUS_KEYS);
  return statusSchema.parse(parsed);
}

const available = await postgresAvailable();

describe.skipIf(!available)('signal-cli crypto-reencrypt (PostgreSQL)', () => {
  let database: FreshDatabase;
  let db: Database;
  let env: Record<string, string>;
  const keys = { a: newKey(), b: newKey(), c: newKey(), d: newKey() };
  /** What was stored, to check every record opens to exactly its original value. */
  const credentials = new Map<string, Record<string, string>>();
  const identities = new Map<string, string>();
  let pipelineKey = '';
  let hmacSecret = '';
  /** Dead letters by message id → their original event, as indexed. */
  const deadLetters = new Map<string | null, unknown>();
  const dlqIntegration = `int_${randomBytes(12).toString('hex')}`;
  /** Scheduled retries by message id → the delivery message (JSON) to re-publish. */
  const retries = new Map<string, string>();

  /** Every record opens under `key` alone, to its original value (so none was sealed twice), and is labelled so. */
  async function expectEverythingUnder(key: Buffer, except: readonly string[] = []) {
    const crypto: CryptoService = cryptoWith(key);
    const cp: ControlPlane = createControlPlane({ db, crypto });
    for (const [id, value] of credentials) {
      if (except.includes(id)) continue;
      expect(await cp.getIntegrationCredentials(id)).toEqual(value);
    }
    const pipeline = await cp.findPipelineByKey(pipelineKey);
    expect(pipeline?.hmacSecrets.map((s) => s.toString())).toEqual([hmacSecret]);
    const graph = createIdentityGraph({ db, crypto, index: await loadBlindIndex(db, crypto) });
    for (const [userId, email] of identities) {
      // `identify` makes events of org_cli; the graph is read per org.
      const found = await graph.lookup(
        'org_cli',
        { userId },
        { consent: true, kinds: ['user_id'], traits: true },
      );
      expect(found?.traits).toMatchObject({ email, plan: 'pro' });
    }
    // Dead letters: each opens under `key` alone to its original, and none is plaintext any more.
    const letters = await createDlqStore(db, crypto).forReplay({ integrationId: dlqIntegration });
    expect(letters.map((r) => r.unreadable)).toEqual([...deadLetters.keys()].map(() => null));
    expect(new Map(letters.map((r) => [r.message_id, r.original]))).toEqual(deadLetters);
    const { rows: raw } = await db.query<{ letter: string; letter_key_id: string | null }>(
      'SELECT letter, letter_key_id FROM delivery_dlq',
    );
    expect(raw.map((r) => r.letter_key_id)).toEqual(raw.map(() => crypto.keyring.currentKeyId));
    expect(JSON.stringify(raw)).not.toContain(LEGACY_EMAIL);
    expect(JSON.stringify(raw)).not.toContain('@example.com');
    // Scheduled retries: likewise (a 1 ms lease, so the next check can claim them again).
    await new Promise((r) => setTimeout(r, 5));
    const claimed = await createRetryStore(db, crypto).claimDue(1000, 1);
    expect(claimed.unreadable).toEqual([]);
    expect(new Map(claimed.due.map((e) => [e.messageId, e.message]))).toEqual(retries);
    const { rows: rawRetries } = await db.query<{ payload: string; payload_key_id: string | null }>(
      'SELECT payload, payload_key_id FROM delivery_retries',
    );
    expect(rawRetries.map((r) => r.payload_key_id)).toEqual(
      rawRetries.map(() => crypto.keyring.currentKeyId),
    );
    expect(JSON.stringify(rawRetries)).not.toContain(LEGACY_RETRY_EMAIL);
    expect(JSON.stringify(rawRetries)).not.toContain('@example.com');
    const byKey = await countRecordsByKeyId(db, DEPLOYMENT_ENCRYPTED_COLUMNS);
    const others = [...byKey].filter(([keyId]) => keyId !== crypto.keyring.currentKeyId);
    expect(others.reduce((n, [, count]) => n + count, 0)).toBe(except.length);
  }

  beforeAll(async () => {
    database = await freshDatabase('signal_cli_reencrypt');
    env = { DATABASE_URL: database.url, SIGNAL_NAMESPACE: 'reencrypt', LOG_LEVEL: 'warn' };
    expect((await cli(['migrate'], env)).code).toBe(0);
    db = await database.open('reencrypt');
    const crypto = cryptoWith(keys.a);
    const { orgId, made } = await seedOrgPipeline(db, crypto);
    pipelineKey = made.key;
    hmacSecret = made.hmacSecret;
    // Through the control plane, 100 per transaction.
    for (let i = 0; i < INTEGRATIONS; i += 100) {
      await db.transaction(async (tx) => {
        const inTx = createControlPlane({
          db: { query: tx.query.bind(tx), transaction: <T>(fn: (q: Queryable) => Promise<T>) => fn(tx) },
          crypto,
        });
        for (let j = i; j < Math.min(INTEGRATIONS, i + 100); j++) {
          const value = { access_token: `token-${j}-${randomBytes(8).toString('hex')}` };
          const integration = await inTx.integrations.create(orgId, made.pipeline.id, {
            vendor: 'meta',
            name: `Meta ${j}`,
            credentials: value,
          });
          credentials.set(integration.id, value);
        }
      });
    }
    const graph = createIdentityGraph({ db, crypto, index: await loadBlindIndex(db, crypto) });
    for (let i = 0; i < IDENTITIES; i++) {
      const userId = `user-${randomBytes(4).toString('hex')}`;
      const email = `person${i}@example.com`;
      await graph.ingest(identify(userId, email));
      identities.set(userId, email);
    }
    // Dead letters, as the delivery worker's indexer seals them under key a.
    const topic = topics.delivery('reencrypt', dlqIntegration).name;
    const letter = (event: ReturnType<typeof identify>): DlqMessage => ({
      error: 'retries_exhausted',
      details: 'the vendor answered 503 five times',
      original: { integrationId: dlqIntegration, event, attempt: { number: 5 } } as DlqMessage['original'],
      originalKey: event.anonymousId ?? 'k',
      topic,
      integrationId: dlqIntegration,
      attempts: 5,
      failedAt: new Date().toISOString(),
    });
    const store = createDlqStore(db, crypto);
    for (let i = 0; i < DEAD_LETTERS; i++) {
      const dead = letter(identify(`dead-${i}`, `dead${i}@example.com`));
      await store.index([{ partition: 0, offset: String(i + 1), letter: dead }]);
      deadLetters.set((dead.original as { event: { messageId: string } }).event.messageId, dead.original);
    }
    // One indexed before delivery-worker/0003, as that migration left it: plaintext JSON, no key id.
    const legacy = letter(identify('dead-legacy', LEGACY_EMAIL));
    const legacyEvent = (legacy.original as { event: { messageId: string } }).event;
    await db.query(
      `INSERT INTO delivery_dlq (dlq_partition, dlq_offset, error, topic, integration_id, message_id, letter,
                                 attempts, failed_at)
       VALUES (0, 100, $1, $2, $3, $4, $5, 5, now())`,
      [
        legacy.error,
        topic,
        dlqIntegration,
        legacyEvent.messageId,
        JSON.stringify({
          escaped: false,
          original: legacy.original,
          originalKey: legacy.originalKey,
          details: legacy.details,
          lastResponse: null,
        }),
      ],
    );
    deadLetters.set(legacyEvent.messageId, legacy.original);
    // Retries waiting for their next attempt, as the worker schedules them under key a.
    const retryOf = (event: ReturnType<typeof identify>) => ({
      integrationId: dlqIntegration,
      messageId: event.messageId,
      attempt: 2,
      dueAt: new Date(Date.now() - 1000),
      key: event.anonymousId ?? 'k',
      message: JSON.stringify({ integrationId: dlqIntegration, event, attempt: { number: 2 } }),
      lastError: 'vendor_unavailable',
    });
    const scheduled = Array.from({ length: RETRIES }, (_, i) =>
      retryOf(identify(`retry-${i}`, `retry${i}@example.com`)),
    );
    await createRetryStore(db, crypto).schedule(scheduled);
    for (const r of scheduled) retries.set(r.messageId, r.message);
    // One scheduled before delivery-worker/0004, as that migration left it: plaintext JSON, no key id.
    const legacyRetry = retryOf(identify('retry-legacy', LEGACY_RETRY_EMAIL));
    await db.query(
      `INSERT INTO delivery_retries (integration_id, message_id, attempt, due_at, payload)
       VALUES ($1, $2, 2, date_trunc('milliseconds', now()) - interval '1 second', $3)`,
      [
        dlqIntegration,
        legacyRetry.messageId,
        JSON.stringify({
          escaped: false,
          key: legacyRetry.key,
          message: legacyRetry.message,
          lastError: legacyRetry.lastError,
        }),
      ],
    );
    retries.set(legacyRetry.messageId, legacyRetry.message);
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('refuses bad usage with exit 2 and the help', async () => {
    for (const argv of [
      ['crypto-reencrypt'],
      ['crypto-reencrypt', 'go'],
      ['crypto-reencrypt', 'start', 'status'],
      ['crypto-reencrypt', 'start', '--lease-seconds', '1'],
      ['crypto-reencrypt', 'start', '--lease-seconds'],
      ['crypto-reencrypt', 'status', '--lease-seconds', '5'],
      ['crypto-reencrypt', 'start', '--folow'],
    ]) {
      const run = await cli(argv, env);
      expect(run.code, argv.join(' ')).toBe(2);
      expect(run.stderr).toContain('usage: signal-cli crypto-reencrypt');
      expect(run.stdout).toBe('');
    }
    expect((await cli(['crypto-reencrypt', '--help'], env)).stdout).toContain('--follow');
  });

  it('says when no job has run yet, and refuses to start without a key', async () => {
    const status = await cli(['crypto-reencrypt', 'status'], env);
    expect(status).toMatchObject({ code: 1, stdout: '' });
    expect(status.stderr).toMatch(/no re-encryption job has run yet/);
    const keyless = await cli(['crypto-reencrypt', 'start'], env);
    expect(keyless.code).toBe(1);
    expect(keyless.stderr).toMatch(/ENCRYPTION_KEY is not set/);
  });

  it('start --follow re-encrypts every secret, credential, identity record, dead letter and scheduled retry (sealing plaintext ones), printing progress on stderr and the status JSON on stdout', async () => {
    // + the pipeline secret, identifiers and traits, the blind-index key, the dead letters and the retries
    // (the legacy ones too)
    const total = INTEGRATIONS + 1 + IDENTITIES * 2 + 1 + DEAD_LETTERS + 1 + RETRIES + 1;
    const before = await countRecordsByKeyId(db, DEPLOYMENT_ENCRYPTED_COLUMNS);
    expect(before.get(null)).toBe(2);
    const rotated = { ...env, ENCRYPTION_KEY: hex(keys.b), ENCRYPTION_KEY_PREVIOUS: hex(keys.a) };
    const run = await cli(['crypto-reencrypt', 'start', '--follow'], rotated);
    expect(run.code, run.stderr).toBe(0);
    const status = stdoutStatus(run.stdout);
    expect(status).toMatchObject({ status: 'completed', failed_records: 0 });
    expect(status.processed_records).toBe(status.total_records);
    expect(status.total_records).toBeGreaterThanOrEqual(total);
    expect(run.stderr).toMatch(/re-encryption job rej_[0-9a-f]+ started/);
    expect(run.stderr).toMatch(/\[#{30}\] 100\.0% +\d+\/\d+ records, 0 failed/);
    for (const key of [keys.a, keys.b]) expect(run.stderr).not.toContain(hex(key));
    await expectEverythingUnder(keys.b);

    const again = await cli(['crypto-reencrypt', 'status'], { ...env });
    expect(again.code).toBe(0);
    expect(stdoutStatus(again.stdout)).toEqual(status);
    const { rows } = await db.query<{ action: string }>('SELECT action FROM audit_log ORDER BY seq');
    const actions = rows.map((r) => r.action);
    expect(actions).toEqual(
      expect.arrayContaining([
        'crypto.key_loaded',
        'crypto.key_rotated',
        'crypto.reencrypt_started',
        'crypto.reencrypt_completed',
      ]),
    );
  });

  it('pauses on interrupt (lease released, exit 1) and a second start resumes the same job to completion', async () => {
    const rotated = { ...env, ENCRYPTION_KEY: hex(keys.c), ENCRYPTION_KEY_PREVIOUS: hex(keys.b) };
    const controller = new AbortController();
    const first = await cli(['crypto-reencrypt', 'start'], rotated, {
      signal: controller.signal,
      onStderr: (text) => {
        if (text.includes('started')) controller.abort();
      },
    });
    expect(first.code).toBe(1);
    const paused = stdoutStatus(first.stdout);
    expect(paused.status).toBe('running');
    expect(paused.processed_records).toBeLessThan(paused.total_records);
    expect(first.stderr).toMatch(/interrupted: the job is still running/);

    const second = await cli(['crypto-reencrypt', 'start', '--follow'], rotated);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/re-encryption job rej_[0-9a-f]+ resumed/);
    const done = stdoutStatus(second.stdout);
    expect(done).toMatchObject({ status: 'completed', failed_records: 0, started_at: paused.started_at });
    expect(done.processed_records).toBe(paused.total_records);
    await expectEverythingUnder(keys.c);
  });

  it('leaves a corrupted record under its old key, lists it with the reason and exits 1', async () => {
    const [victim, donor] = [...credentials.keys()];
    if (victim === undefined || donor === undefined) throw new Error('no integrations');
    // A ciphertext copied from another row: the context (row id) differs, so it never opens here.
    await db.query(
      'UPDATE integrations SET credentials = (SELECT credentials FROM integrations WHERE id = $2) WHERE id = $1',
      [victim, donor],
    );
    const before = await db.query<{ credentials: string }>(
      'SELECT credentials FROM integrations WHERE id = $1',
      [victim],
    );
    const rotated = { ...env, ENCRYPTION_KEY: hex(keys.d), ENCRYPTION_KEY_PREVIOUS: hex(keys.c) };
    const run = await cli(['crypto-reencrypt', 'start'], rotated);
    expect(run.code).toBe(1);
    const status = stdoutStatus(run.stdout);
    expect(status).toMatchObject({ status: 'completed', failed_records: 1 });
    expect(run.stderr).toContain(`integrations.credentials ${victim}: commitment_mismatch`);
    const after = await db.query<{ credentials: string }>(
      'SELECT credentials FROM integrations WHERE id = $1',
      [victim],
    );
    expect(after.rows[0]?.credentials).toBe(before.rows[0]?.credentials);
    await expectEverythingUnder(keys.d, [victim]);
    expect((await cli(['crypto-reencrypt', 'status'], env)).code).toBe(1);
  });
});
