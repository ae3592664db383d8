/**
 * The key rotation runbook (product doc seed 002) as a test, on real PostgreSQL and real processes: the
 * all-in-one (`startSignal` with DATABASE_URL) for the API, the gateway and the worker, `signal-cli` for the
 * crash variant. Each variant gets its own database (CREATE DATABASE / DROP DATABASE).
 *
 *   1. A → (B + A) → B, checking after every restart that every secret still works where it is used
 *      (HMAC-signed event accepted, webhook delivered with its signing secret, credentials and identity
 *      traits opened in this process), `/health/crypto`, the job status and the audit trail.
 *   2. 20,000 credentials; the job's process is SIGKILLed mid-job; a second start takes the job over after its
 *      lease and finishes it: every record opens under B alone to exactly its original value.
 *   3. One corrupted ciphertext: `failed_records: 1`, the record untouched under A, the reason in the logs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  countRecordsByKeyId,
  createControlPlane,
  createScryptHasher,
  ENCRYPTED_COLUMNS,
  integrationCredentialsContext,
} from '@signal/control-plane';
import { type CryptoService, createCryptoService, createKeyring } from '@signal/crypto';
import { createDlqStore, createRetryStore, DELIVERY_WORKER_ENCRYPTED_COLUMNS } from '@signal/delivery-worker';
import type { DeliveryMessage, DlqMessage } from '@signal/events';
import { createIdentityGraph, IDENTITY_ENCRYPTED_COLUMNS, loadBlindIndex } from '@signal/identity-hub';
import { createDatabase, type Database, type Queryable } from '@signal/store';
import { POSTGRES_URL, postgresAvailable, repoRoot } from '@signal/testkit';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type RunningSignal, startSignal } from '../support/signal-process';

const ALL_COLUMNS = [
  ...ENCRYPTED_COLUMNS,
  ...IDENTITY_ENCRYPTED_COLUMNS,
  ...DELIVERY_WORKER_ENCRYPTED_COLUMNS,
];
const ADMIN = { email: 'admin@rotation.example', password: 'a long rotation admin password' };
const BROWSER_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36';
const FULL_CONSENT = {
  categories: { essential: true, functional: true, analytics: true, marketing: true, personalization: true },
};

const statusSchema = z.strictObject({
  status: z.enum(['running', 'completed', 'failed']),
  total_records: z.number().int(),
  processed_records: z.number().int(),
  failed_records: z.number().int(),
  started_at: z.string(),
  completed_at: z.string().nullable(),
});
const healthSchema = z.strictObject({
  status: z.string(),
  provider: z.string(),
  key_version: z.number(),
  dual_key_mode: z.boolean(),
  checks: z.strictObject({
    key_valid: z.boolean(),
    round_trip: z.boolean(),
    previous_key_valid: z.boolean().optional(),
  }),
  /** Dual-key mode only: records still under ENCRYPTION_KEY_PREVIOUS (0 → the old key can go). */
  records_under_previous_key: z.number().int().min(0).optional(),
  /** Records per held key id, plus `plaintext` and `other`. */
  records_by_key_id: z.record(z.string(), z.number().int().min(0)).optional(),
});

const hex = (key: Buffer) => key.toString('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 20_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** The deployment's namespace, and so its PostgreSQL schema (every process of a deployment uses it). */
const NAMESPACE = 'rotation';

/** A database of its own on the test server, dropped at the end; `db` is the deployment's schema in it. */
async function withFreshDatabase(run: (url: string, db: Database) => Promise<void>): Promise<void> {
  const name = `signal_rotation_${randomBytes(6).toString('hex')}`;
  const admin = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 1 });
  await admin.exec(`CREATE DATABASE ${name}`);
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  const db = await createDatabase({
    kind: 'postgres',
    url: url.toString(),
    maxConnections: 8,
    schema: NAMESPACE,
  });
  try {
    await run(url.toString(), db);
  } finally {
    await db.close();
    await admin.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.close();
  }
}

function cryptoWith(current: Buffer, previous?: Buffer): CryptoService {
  return createCryptoService({ keyring: createKeyring({ current, ...(previous ? { previous } : {}) }) });
}

/** The Management API as an operator's script would use it. */
async function adminSession(baseUrl: string) {
  const login = await fetch(`${baseUrl}/v1/admin/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(ADMIN),
  });
  expect(login.status).toBe(200);
  const { access_token: token } = z.object({ access_token: z.string() }).parse(await login.json());
  return async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${baseUrl}/v1/admin${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, json: text === '' ? null : (JSON.parse(text) as unknown), text };
  };
}

async function cryptoHealth(baseUrl: string) {
  return healthSchema.parse(await (await fetch(`${baseUrl}/health/crypto`)).json());
}

/** A server-side event signed with the pipeline's HMAC secret (the gateway decrypts the secret to verify it). */
async function sendSigned(baseUrl: string, pipelineKey: string, hmacSecret: string): Promise<number> {
  const body = Buffer.from(
    JSON.stringify({
      type: 'track',
      event: 'Order Completed',
      userId: `server-user-${randomBytes(3).toString('hex')}`,
      messageId: randomUUID(),
      properties: { value: 42 },
    }),
  );
  const timestamp = String(Date.now());
  const signature = createHmac('sha256', hmacSecret).update(`${timestamp}.`).update(body).digest('hex');
  const res = await fetch(`${baseUrl}/v1/events`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-pipeline-key': pipelineKey,
      'x-signature': `sha256=${signature}`,
      'x-timestamp': timestamp,
    },
    body,
  });
  await res.arrayBuffer();
  return res.status;
}

/** A browser event on the demo pipeline; resolves once the demo webhook sink received more than before. */
async function expectDelivered(signal: RunningSignal, demoKey: string): Promise<void> {
  const stats = z.object({ sink: z.number() });
  const before = stats.parse(await (await fetch(`${signal.baseUrl}/demo/stats`)).json()).sink;
  const res = await fetch(`${signal.baseUrl}/v1/t`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-pipeline-key': demoKey, 'user-agent': BROWSER_UA },
    body: JSON.stringify({
      type: 'track',
      event: 'add_to_cart',
      anonymousId: randomUUID(),
      messageId: randomUUID(),
      properties: { value: 19.9, currency: 'EUR' },
      context: { consent: FULL_CONSENT },
    }),
  });
  expect(res.status).toBe(202);
  // The webhook integration signs each delivery with its stored signing secret; the sink verifies it.
  await waitFor('a webhook delivery to the sink', async () => {
    const now = stats.parse(await (await fetch(`${signal.baseUrl}/demo/stats`)).json()).sink;
    return now > before ? now : undefined;
  });
}

async function pollJob(call: Awaited<ReturnType<typeof adminSession>>) {
  return waitFor('the re-encryption job to finish', async () => {
    const res = await call('GET', '/crypto/re-encrypt');
    expect(res.status).toBe(200);
    const status = statusSchema.parse(res.json);
    return status.status === 'running' ? undefined : status;
  });
}

interface CliRun {
  readonly child: ChildProcess;
  readonly done: Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>;
}

/** `signal-cli <args>` as an operator runs it (`services/signal/bin/signal-cli.mjs`), in its own process. */
function signalCli(args: readonly string[], env: Record<string, string>): CliRun {
  const child = spawn(process.execPath, ['services/signal/bin/signal-cli.mjs', ...args], {
    cwd: repoRoot(),
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      LOG_LEVEL: 'warn',
      SIGNAL_NAMESPACE: NAMESPACE,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk) => {
    stdout += String(chunk);
  });
  child.stderr?.on('data', (chunk) => {
    stderr += String(chunk);
  });
  const done = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done };
}

const available = await postgresAvailable();

describe.skipIf(!available)('key rotation runbook (seed 002) on PostgreSQL', () => {
  it('A → B+A → re-encrypt → B: every secret keeps working at every step, and the audit log shows each key operation', async () => {
    await withFreshDatabase(async (url, db) => {
      const a = randomBytes(32);
      const b = randomBytes(32);
      const dataDir = mkdtempSync(join(tmpdir(), 'signal-rotation-'));
      const base = {
        DATABASE_URL: url,
        SIGNAL_NAMESPACE: NAMESPACE,
        JWT_SECRET: hex(randomBytes(32)),
        SIGNAL_BOOTSTRAP_ADMIN_EMAIL: ADMIN.email,
        SIGNAL_BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password,
      };
      let signal: RunningSignal | undefined;
      try {
        // ── Before the rotation: key A ────────────────────────────────────────────────────────────────
        signal = await startSignal({ ...base, ENCRYPTION_KEY: hex(a) }, { dataDir });
        const demoKey = readFileSync(join(dataDir, 'demo-pipeline-key'), 'utf8').trim();
        let call = await adminSession(signal.baseUrl);
        expect((await cryptoHealth(signal.baseUrl)).dual_key_mode).toBe(false);
        // The admin's org, which the demo pipeline belongs to: the identity graph is read per org.
        const orgId = z.object({ org_id: z.string() }).parse((await call('GET', '/auth/me')).json).org_id;

        const created = await call('POST', '/pipelines', { name: 'Rotation server source', type: 'server' });
        expect(created.status).toBe(201);
        const pipeline = z
          .object({ id: z.string(), key: z.string(), hmac_secret: z.string() })
          .parse(created.json);
        const credentials = new Map<string, Record<string, string>>();
        for (const vendor of ['meta', 'tiktok', 'pinterest'] as const) {
          const value = { access_token: `${vendor}-${hex(randomBytes(16))}` };
          // Disabled: the credentials are stored and rotated, but nothing is sent to a real vendor.
          const res = await call('POST', `/pipelines/${pipeline.id}/integrations`, {
            vendor,
            name: `Rotation ${vendor}`,
            enabled: false,
            credentials: value,
          });
          expect(res.status, res.text).toBe(201);
          credentials.set(z.object({ id: z.string() }).parse(res.json).id, value);
        }
        expect(await sendSigned(signal.baseUrl, pipeline.key, pipeline.hmac_secret)).toBe(202);
        await expectDelivered(signal, demoKey);

        // Identity traits (encrypted at rest) through the gateway and the identity hub.
        const userId = `rotation-user-${hex(randomBytes(4))}`;
        const email = `${userId}@example.com`;
        const identify = await fetch(`${signal.baseUrl}/v1/i`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-pipeline-key': demoKey,
            'user-agent': BROWSER_UA,
          },
          body: JSON.stringify({
            type: 'identify',
            userId,
            anonymousId: randomUUID(),
            messageId: randomUUID(),
            traits: { email, plan: 'enterprise' },
            context: { consent: FULL_CONSENT },
          }),
        });
        expect(identify.status).toBe(202);
        await waitFor('the identity graph to store the traits', async () => {
          const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM identity_traits');
          return Number(rows[0]?.n) > 0 ? true : undefined;
        });
        expect(await signal.stop()).toBe(0);

        // A dead letter and a scheduled retry (a vendor that refused, one that is down), sealed under A as the
        // worker seals them: the rotation must carry them to B too, or they stop opening when A is dropped.
        const planted: DeliveryMessage = {
          integrationId: 'int_rotation_planted',
          event: {
            type: 'track',
            event: 'Order Completed',
            anonymousId: randomUUID(),
            messageId: randomUUID(),
            properties: { value: 42 },
            traits: { email },
            context: { consent: FULL_CONSENT, provenance: 'pipeline_key', ip: '203.0.113.7' },
            timestamp: new Date().toISOString(),
            receivedAt: new Date().toISOString(),
            org: orgId,
            pipelineId: pipeline.id,
          },
          attempt: { number: 2, lastError: 'vendor_unavailable' },
        };
        const underA = cryptoWith(a);
        await createDlqStore(db, underA).index([
          {
            partition: 0,
            offset: '900000000',
            letter: {
              error: 'vendor_rejected',
              details: 'the vendor refused the event (HTTP 400)',
              // The original as the worker keeps it: the delivery message's JSON value.
              original: JSON.parse(JSON.stringify(planted)) as DlqMessage['original'],
              originalKey: planted.event.anonymousId ?? '',
              topic: 'signal.delivery-int_rotation_planted',
              integrationId: planted.integrationId,
              attempts: 5,
              failedAt: new Date().toISOString(),
            },
          },
        ]);
        await createRetryStore(db, underA).schedule([
          {
            integrationId: planted.integrationId,
            messageId: planted.event.messageId,
            attempt: 2,
            // Not due during the test: the worker must not re-publish it meanwhile.
            dueAt: new Date(Date.now() + 86_400_000),
            key: planted.event.anonymousId ?? '',
            message: JSON.stringify(planted),
            lastError: 'vendor_unavailable',
          },
        ]);

        // ── Deploy dual-key configuration: ENCRYPTION_KEY=B, ENCRYPTION_KEY_PREVIOUS=A ───────────────────
        signal = await startSignal(
          { ...base, ENCRYPTION_KEY: hex(b), ENCRYPTION_KEY_PREVIOUS: hex(a) },
          { dataDir },
        );
        const dualHealth = await cryptoHealth(signal.baseUrl);
        expect(dualHealth).toMatchObject({
          status: 'healthy',
          dual_key_mode: true,
          checks: { key_valid: true, round_trip: true, previous_key_valid: true },
        });
        // Everything written under A is still waiting for the re-encryption job.
        expect(dualHealth.records_under_previous_key).toBeGreaterThanOrEqual(2 + 5 + 3);
        // Every secret still decrypts where it is used: the HMAC secret in the gateway, the webhook signing
        // secret in the worker, the vendor credentials through the control plane.
        expect(await sendSigned(signal.baseUrl, pipeline.key, pipeline.hmac_secret)).toBe(202);
        await expectDelivered(signal, demoKey);
        const dual = createControlPlane({ db, crypto: cryptoWith(b, a) });
        for (const [id, value] of credentials)
          expect(await dual.getIntegrationCredentials(id)).toEqual(value);

        // ── Re-encrypt existing data, monitor until completion ───────────────────────────────────────
        call = await adminSession(signal.baseUrl);
        const started = await call('POST', '/crypto/re-encrypt');
        expect(started.status, started.text).toBe(202);
        const done = await pollJob(call);
        expect(done).toMatchObject({ status: 'completed', failed_records: 0 });
        expect(done.processed_records).toBe(done.total_records);
        // Pipeline secrets (demo + ours), 5 integrations, identity identifiers, traits and the blind-index key.
        expect(done.total_records).toBeGreaterThanOrEqual(2 + 5 + 3);
        expect(done.completed_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        expect(await signal.stop()).toBe(0);

        // ── Remove the old key, final restart ───────────────────────────────────────────────────────
        signal = await startSignal({ ...base, ENCRYPTION_KEY: hex(b) }, { dataDir });
        const single = await cryptoHealth(signal.baseUrl);
        expect(single).toMatchObject({ status: 'healthy', dual_key_mode: false });
        expect(single.checks.previous_key_valid).toBeUndefined();
        expect(await sendSigned(signal.baseUrl, pipeline.key, pipeline.hmac_secret)).toBe(202);
        await expectDelivered(signal, demoKey);
        const onlyB = cryptoWith(b);
        const cp = createControlPlane({ db, crypto: onlyB });
        for (const [id, value] of credentials) expect(await cp.getIntegrationCredentials(id)).toEqual(value);
        const graph = createIdentityGraph({ db, crypto: onlyB, index: await loadBlindIndex(db, onlyB) });
        const profile = await graph.lookup(
          orgId,
          { userId },
          { consent: true, kinds: ['user_id'], traits: true },
        );
        expect(profile?.traits).toMatchObject({ email, plan: 'enterprise' });
        expect([...(await countRecordsByKeyId(db, ALL_COLUMNS)).keys()]).toEqual([
          onlyB.keyring.currentKeyId,
        ]);
        // The planted dead letter and retry open with B alone, exactly as written.
        const letters = await createDlqStore(db, onlyB).list({ integrationId: planted.integrationId });
        expect(letters.map((l) => l.messageId)).toEqual([planted.event.messageId]);
        const retries = await createRetryStore(db, onlyB).scan('', 100);
        expect(retries.find((r) => r.messageId === planted.event.messageId)).toMatchObject({
          message: JSON.stringify(planted),
        });

        // ── The audit trail of the key operations (metadata only) ───────────────────────────────────
        call = await adminSession(signal.baseUrl);
        for (const action of [
          'crypto.key_loaded',
          'crypto.key_rotated',
          'crypto.reencrypt_started',
          'crypto.reencrypt_completed',
        ]) {
          const res = await call('GET', `/audit-logs?action=${action}`);
          expect(res.status).toBe(200);
          const page = z.object({ data: z.array(z.object({ action: z.string() })) }).parse(res.json);
          expect(page.data.length, action).toBeGreaterThan(0);
          for (const key of [a, b]) expect(res.text).not.toContain(hex(key));
        }

        // The operations wired beside the runbook answer on the all-in-one too: dead letters (the demo's
        // Meta integration refuses its events) are listed masked, and the visitor's identity can be erased.
        const dlq = await call('GET', '/dlq?limit=5');
        expect(dlq.status).toBe(200);
        expect(z.object({ data: z.array(z.unknown()), has_more: z.boolean() }).parse(dlq.json)).toBeTruthy();
        const erased = await call('DELETE', `/identity/${encodeURIComponent(userId)}`);
        expect(erased.status, erased.text).toBe(200);
        expect(await graph.lookup(orgId, { userId }, { consent: true, kinds: [] })).toBeNull();
        expect(signal.output()).not.toContain(email);
      } finally {
        await signal?.stop();
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  }, 120_000);

  it('20,000 records: the job process is SIGKILLed mid-job; a second start takes over and finishes with nothing lost or sealed twice', async () => {
    await withFreshDatabase(async (url, db) => {
      const a = randomBytes(32);
      const b = randomBytes(32);
      const migrated = await signalCli(['migrate'], { DATABASE_URL: url }).done;
      expect(migrated.code, migrated.stderr).toBe(0);

      // 20,000 integrations with credentials, written through the control plane under key A, in batches:
      // 1,000 per transaction, 4 transactions at a time.
      const crypto = cryptoWith(a);
      const underA = createControlPlane({
        db,
        crypto,
        hasher: createScryptHasher({ cost: { N: 2 ** 8, r: 8, p: 1 } }),
      });
      const { org } = await underA.orgs.createWithOwner({
        name: 'Bulk',
        slug: `bulk-${hex(randomBytes(3))}`,
        owner: { email: 'owner@bulk.example', password: 'a long enough password' },
      });
      const { pipeline, hmacSecret } = await underA.pipelines.create(org.id, {
        name: 'Bulk',
        type: 'server',
      });
      const expected = new Map<string, string>();
      const RECORDS = 20_000;
      const PER_TRANSACTION = 1_000;
      const writeBatch = (first: number) =>
        db.transaction(async (tx) => {
          const inTx = createControlPlane({
            db: { query: tx.query.bind(tx), transaction: <T>(fn: (q: Queryable) => Promise<T>) => fn(tx) },
            crypto,
          });
          for (let i = first; i < first + PER_TRANSACTION; i++) {
            const value = { access_token: `bulk-${i}-${hex(randomBytes(12))}` };
            const made = await inTx.integrations.create(org.id, pipeline.id, {
              vendor: 'meta',
              name: `Bulk ${i}`,
              enabled: false,
              credentials: value,
            });
            expected.set(made.id, JSON.stringify(value));
          }
        });
      for (let i = 0; i < RECORDS; i += 4 * PER_TRANSACTION) {
        await Promise.all([0, 1, 2, 3].map((k) => writeBatch(i + k * PER_TRANSACTION)));
      }
      expect(expected.size).toBe(RECORDS);

      const rotated = { DATABASE_URL: url, ENCRYPTION_KEY: hex(b), ENCRYPTION_KEY_PREVIOUS: hex(a) };
      const first = signalCli(['crypto-reencrypt', 'start', '--lease-seconds', '2'], rotated);
      let exited = false;
      void first.done.then(() => {
        exited = true;
      });
      const progressAtKill = await waitFor(
        'the first process to commit some batches',
        async () => {
          if (exited) throw new Error(`the job process exited on its own: ${(await first.done).stderr}`);
          const { rows } = await db.query<{ processed_records: number }>(
            'SELECT processed_records FROM crypto_reencrypt_jobs',
          );
          const processed = rows[0]?.processed_records ?? 0;
          return processed >= 2_000 ? processed : undefined;
        },
        60_000,
        20,
      );
      first.child.kill('SIGKILL');
      expect((await first.done).signal).toBe('SIGKILL');
      const { rows: paused } = await db.query<{
        status: string;
        processed_records: number;
        total_records: number;
      }>('SELECT status, processed_records, total_records FROM crypto_reencrypt_jobs');
      expect(paused).toHaveLength(1);
      expect(paused[0]?.status).toBe('running');
      expect(paused[0]?.processed_records).toBeGreaterThanOrEqual(progressAtKill);
      expect(paused[0]?.processed_records).toBeLessThan(RECORDS);

      // Start again: the dead process's lease expires and this one continues after its last committed batch.
      const second = await signalCli(['crypto-reencrypt', 'start', '--follow'], rotated).done;
      expect(second.code, second.stderr).toBe(0);
      expect(second.stderr).toMatch(/resumed|taken over/);
      const status = statusSchema.parse(JSON.parse(second.stdout));
      expect(status).toMatchObject({ status: 'completed', failed_records: 0 });
      expect(status.total_records).toBe(RECORDS + 1);
      expect(status.processed_records).toBe(RECORDS + 1);
      const { rows: jobs } = await db.query<{ status: string }>('SELECT status FROM crypto_reencrypt_jobs');
      expect(jobs).toEqual([{ status: 'completed' }]);

      // Every record opens under B alone, once, to exactly what was written under A.
      const onlyB = cryptoWith(b);
      const { rows } = await db.query<{ id: string; credentials: string; credentials_key_id: string }>(
        'SELECT id, credentials, credentials_key_id FROM integrations',
      );
      expect(rows).toHaveLength(RECORDS);
      let mismatches = 0;
      for (const row of rows) {
        const opened = onlyB
          .openText(row.credentials, integrationCredentialsContext(row.id))
          .toString('utf8');
        if (row.credentials_key_id !== onlyB.keyring.currentKeyId || opened !== expected.get(row.id))
          mismatches++;
      }
      expect(mismatches).toBe(0);
      const gateway = await createControlPlane({ db, crypto: onlyB }).findPipelineByKey(
        (await underA.pipelines.rotateKey(org.id, pipeline.id)).key,
      );
      expect(gateway?.hmacSecrets.map((s) => s.toString())).toEqual([hmacSecret]);
    });
  }, 120_000);

  it('a corrupted ciphertext: failed_records 1, the record stays untouched under the old key, the reason is in the logs', async () => {
    await withFreshDatabase(async (url, db) => {
      const a = randomBytes(32);
      const b = randomBytes(32);
      const dataDir = mkdtempSync(join(tmpdir(), 'signal-rotation-'));
      const base = {
        DATABASE_URL: url,
        SIGNAL_NAMESPACE: NAMESPACE,
        JWT_SECRET: hex(randomBytes(32)),
        SIGNAL_BOOTSTRAP_ADMIN_EMAIL: ADMIN.email,
        SIGNAL_BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password,
      };
      let signal: RunningSignal | undefined;
      try {
        signal = await startSignal({ ...base, ENCRYPTION_KEY: hex(a) }, { dataDir });
        const call = await adminSession(signal.baseUrl);
        const created = await call('POST', '/pipelines', { name: 'Corruption', type: 'server' });
        const pipelineId = z.object({ id: z.string() }).parse(created.json).id;
        const secret = `corrupt-me-${hex(randomBytes(16))}`;
        const made = await call('POST', `/pipelines/${pipelineId}/integrations`, {
          vendor: 'meta',
          name: 'Victim',
          enabled: false,
          credentials: { access_token: secret },
        });
        const victim = z.object({ id: z.string() }).parse(made.json).id;
        expect(await signal.stop()).toBe(0);

        // Modified outside Signal: one character of the stored ciphertext changed (inside its last GCM tag).
        const { rows } = await db.query<{ credentials: string; credentials_key_id: string }>(
          'SELECT credentials, credentials_key_id FROM integrations WHERE id = $1',
          [victim],
        );
        const original = rows[0]?.credentials ?? '';
        const at = original.length - 10;
        const corrupted = `${original.slice(0, at)}${original[at] === 'A' ? 'B' : 'A'}${original.slice(at + 1)}`;
        await db.query('UPDATE integrations SET credentials = $2 WHERE id = $1', [victim, corrupted]);

        signal = await startSignal(
          { ...base, ENCRYPTION_KEY: hex(b), ENCRYPTION_KEY_PREVIOUS: hex(a) },
          { dataDir },
        );
        const rotated = await adminSession(signal.baseUrl);
        expect((await rotated('POST', '/crypto/re-encrypt')).status).toBe(202);
        const done = await pollJob(rotated);
        expect(done).toMatchObject({ status: 'completed', failed_records: 1 });
        expect(done.processed_records).toBe(done.total_records - 1);

        const { rows: after } = await db.query<{ credentials: string; credentials_key_id: string }>(
          'SELECT credentials, credentials_key_id FROM integrations WHERE id = $1',
          [victim],
        );
        expect(after[0]).toEqual({ credentials: corrupted, credentials_key_id: rows[0]?.credentials_key_id });
        const logs = signal.output();
        const line = logs.split('\n').find((l) => l.includes('re-encryption of a record failed'));
        expect(line).toBeDefined();
        expect(line).toContain(victim);
        expect(line).toMatch(/"reason":"(authentication_failed|commitment_mismatch|malformed)"/);
        expect(logs).not.toContain(secret);
      } finally {
        await signal?.stop();
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  }, 90_000);
});
