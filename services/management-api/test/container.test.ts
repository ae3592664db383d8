import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAuditLog } from '@signal/audit';
import { loadConfig } from '@signal/config';
import { CryptoError } from '@signal/crypto';
import { createIdentityGraph, identifierContext, loadBlindIndex, traitsContext } from '@signal/identity-hub';
import { kmsMigrations } from '@signal/kms';
import { bootstrapCryptoWithKms, type KmsCryptoRuntime } from '@signal/runtime';
import { createDatabase, type Database, migrate } from '@signal/store';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ManagementApiConfigError } from '../src/config';
import { buildContainer, type Container, MANAGEMENT_API_SCHEMA } from '../src/container';
import { DEFAULT_OPERATOR_ORG_SLUG } from '../src/rbac/deployment-authority';
import { captureLogger, FULL_SCHEMA } from './harness';
import { sampleEvent } from './operations.support';

const quietLogger = captureLogger();

const dir = mkdtempSync(join(tmpdir(), 'signal-mapi-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const keyA = randomBytes(32).toString('hex');
const keyB = randomBytes(32).toString('hex');
const baseEnv = {
  SIGNAL_DATA_DIR: join(dir, 'data'),
  PORT: '0',
  LOG_LEVEL: 'silent',
  JWT_SECRET: randomBytes(32).toString('hex'),
};

function config(env: Record<string, string>) {
  return loadConfig({ env: { ...baseEnv, ...env }, cwd: dir });
}

/** What `signal-cli migrate` does to the embedded database of SIGNAL_DATA_DIR (it lives in `pglite/`). */
async function migrateEmbedded(dataDir: string, schema: Parameters<typeof migrate>[1]): Promise<void> {
  const db = await createDatabase({ kind: 'pglite', dataDir: join(dataDir, 'pglite') });
  try {
    await migrate(db, schema);
  } finally {
    await db.close();
  }
}

function baseUrl(container: Container): string {
  return `http://127.0.0.1:${(container.server.server.address() as AddressInfo).port}`;
}

const readinessSchema = z.object({
  status: z.string(),
  checks: z
    .object({ database: z.object({ records_under_previous_key: z.number().optional() }).passthrough() })
    .passthrough(),
});

describe('standalone container (PGlite on disk)', () => {
  it('refuses to start without JWT_SECRET or ENCRYPTION_KEY, saying what to set', async () => {
    await expect(buildContainer(config({ ENCRYPTION_KEY: keyA, JWT_SECRET: '' }))).rejects.toThrow(
      /JWT_SECRET must be set/,
    );
    await expect(buildContainer(config({}))).rejects.toBeInstanceOf(ManagementApiConfigError);
  });

  it('refuses to start on an unmigrated database, naming `signal-cli migrate`, and creates no table', async () => {
    const dataDir = join(dir, 'unmigrated');
    await expect(buildContainer(config({ SIGNAL_DATA_DIR: dataDir, ENCRYPTION_KEY: keyA }))).rejects.toThrow(
      /^the database is not migrated for management-api \(missing .*\): run `pnpm signal-cli migrate`/,
    );
    const db = await createDatabase({ kind: 'pglite', dataDir: join(dataDir, 'pglite') });
    try {
      const { rows } = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')`,
      );
      expect(rows[0]?.n).toBe(0);
    } finally {
      await db.close();
    }
  });

  it('runs a key rotation end to end across a restart: health, login, re-encrypt, nothing left under the old key', async () => {
    await migrateEmbedded(baseEnv.SIGNAL_DATA_DIR, MANAGEMENT_API_SCHEMA);
    const first = await buildContainer(config({ ENCRYPTION_KEY: keyA }));
    await first.start();
    // The operator org (as the all-in-one seeds it): its owner may run the deployment's re-encryption job.
    const { org } = await first.api.controlPlane.orgs.createWithOwner({
      name: 'Acme',
      slug: DEFAULT_OPERATOR_ORG_SLUG,
      owner: { email: 'owner@acme.example', password: 'a long enough password' },
    });
    await first.api.controlPlane.pipelines.create(org.id, { name: 'Shop', type: 'server' });
    await first.stop();

    const second = await buildContainer(config({ ENCRYPTION_KEY: keyB, ENCRYPTION_KEY_PREVIOUS: keyA }));
    await second.start();
    try {
      const url = baseUrl(second);
      const crypto = await fetch(`${url}/health/crypto`);
      expect(crypto.status).toBe(200);
      expect(await crypto.json()).toMatchObject({
        status: 'healthy',
        dual_key_mode: true,
        checks: { previous_key_valid: true },
        records_under_previous_key: 1,
      });
      const before = readinessSchema.parse(await (await fetch(`${url}/health/ready`)).json());
      expect(before.checks.database.records_under_previous_key).toBe(1);

      const login = await fetch(`${url}/v1/admin/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'owner@acme.example', password: 'a long enough password' }),
      });
      expect(login.status).toBe(200);
      const { access_token: token } = z.object({ access_token: z.string() }).parse(await login.json());
      const started = await fetch(`${url}/v1/admin/crypto/re-encrypt`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(started.status).toBe(202);
      await second.api.reencryption.idle();
      const status = await fetch(`${url}/v1/admin/crypto/re-encrypt`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(await status.json()).toMatchObject({
        status: 'completed',
        total_records: 1,
        processed_records: 1,
        failed_records: 0,
      });
      const after = readinessSchema.parse(await (await fetch(`${url}/health/ready`)).json());
      expect(after.checks.database.records_under_previous_key).toBe(0);
      expect((await fetch(`${url}/metrics`)).status).toBe(200);
    } finally {
      await second.stop();
    }
  });
});

describe('standalone container on a deployment migrated by signal-cli (PGlite on disk)', () => {
  it('wires the DLQ and identity erasure routes, and re-encrypts the identity graph too', async () => {
    const dataDir = join(dir, 'full');
    // What `signal-cli migrate` leaves behind: every service's tables, the DLQ index and identity graph included.
    await migrateEmbedded(dataDir, FULL_SCHEMA);
    const env = { SIGNAL_DATA_DIR: dataDir };

    const first = await buildContainer(config({ ...env, ENCRYPTION_KEY: keyA }));
    await first.start();
    // The operator org (as the all-in-one seeds it): its owner may run the deployment's re-encryption job.
    const { org } = await first.api.controlPlane.orgs.createWithOwner({
      name: 'Full',
      slug: DEFAULT_OPERATOR_ORG_SLUG,
      owner: { email: 'owner@full.example', password: 'a long enough password' },
    });
    await first.api.controlPlane.pipelines.create(org.id, { name: 'Shop', type: 'server' });
    await first.stop();

    const second = await buildContainer(
      config({ ...env, ENCRYPTION_KEY: keyB, ENCRYPTION_KEY_PREVIOUS: keyA }),
    );
    await second.start();
    try {
      const url = baseUrl(second);
      const login = await fetch(`${url}/v1/admin/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'owner@full.example', password: 'a long enough password' }),
      });
      const { access_token: token } = z.object({ access_token: z.string() }).parse(await login.json());
      const authorization = { authorization: `Bearer ${token}` };
      const dlq = await fetch(`${url}/v1/admin/dlq`, { headers: authorization });
      expect(dlq.status).toBe(200);
      expect(await dlq.json()).toEqual({ data: [], next_cursor: null, has_more: false });
      const erase = await fetch(`${url}/v1/admin/identity/nobody-known`, {
        method: 'DELETE',
        headers: authorization,
      });
      expect(erase.status).toBe(404);

      // The pipeline secret and the identity graph's blind-index key (sealed at the first start).
      const before = readinessSchema.parse(await (await fetch(`${url}/health/ready`)).json());
      expect(before.checks.database.records_under_previous_key).toBe(2);
      expect(
        (await fetch(`${url}/v1/admin/crypto/re-encrypt`, { method: 'POST', headers: authorization })).status,
      ).toBe(202);
      await second.api.reencryption.idle();
      expect(await second.api.reencryption.status()).toMatchObject({
        status: 'completed',
        total_records: 2,
        failed_records: 0,
      });
      const after = readinessSchema.parse(await (await fetch(`${url}/health/ready`)).json());
      expect(after.checks.database.records_under_previous_key).toBe(0);
    } finally {
      await second.stop();
    }
  });
});

describe('crypto-shredding through DELETE /v1/admin/identity/{id} (envelope mode, PGlite on disk)', () => {
  it("destroys the person's DEKs: their ciphertext remains but opens nowhere, and a restart does not bring it back", async () => {
    const dataDir = join(dir, 'shred');
    await migrateEmbedded(dataDir, [...FULL_SCHEMA, ...kmsMigrations]);
    const env = {
      SIGNAL_DATA_DIR: dataDir,
      ENCRYPTION_KEY: keyA,
      ENCRYPTION_ENVELOPE: 'true',
      ENCRYPTION_CRYPTO_SHREDDING: 'true',
    };
    const userId = 'shred.me@example.com';
    /** Another process on the same data: the identity hub writing, later a restart reading. */
    async function withProcess<T>(fn: (db: Database, runtime: KmsCryptoRuntime) => Promise<T>): Promise<T> {
      const db = await createDatabase({ kind: 'pglite', dataDir: join(dataDir, 'pglite') });
      const runtime = await bootstrapCryptoWithKms({
        config: config(env),
        logger: { info() {}, warn() {} },
        db,
      });
      try {
        return await fn(db, runtime);
      } finally {
        await runtime.close();
        await db.close();
      }
    }
    // The org first (the identity graph is per org): its owner will erase one of its visitors.
    const setup = await buildContainer(config(env));
    await setup.start();
    let orgId: string;
    try {
      ({
        org: { id: orgId },
      } = await setup.api.controlPlane.orgs.createWithOwner({
        name: 'Shred',
        owner: { email: 'owner@shred.example', password: 'a long enough password' },
      }));
    } finally {
      await setup.stop();
    }
    // The identity hub ingests the person's data; a backup copies their sealed rows.
    const backup = await withProcess(async (db, runtime) => {
      if (runtime.subjectKeys === undefined) throw new Error('shredding is on');
      const graph = createIdentityGraph({
        db,
        crypto: runtime.crypto,
        index: await loadBlindIndex(db, runtime.crypto),
        profileKeys: runtime.subjectKeys,
      });
      await graph.ingest({ ...sampleEvent({ userId, traits: { email: userId } }), org: orgId });
      const traits = await db.query<{ profile_id: string; traits: string; traits_key_id: string }>(
        'SELECT profile_id, traits, traits_key_id FROM identity_traits',
      );
      const identifiers = await db.query<{ id: string; kind: string; value: string }>(
        'SELECT id, kind, value FROM identity_identifiers',
      );
      return { traits: traits.rows, identifiers: identifiers.rows };
    });
    const [sealedTraits] = backup.traits;
    if (sealedTraits === undefined) throw new Error('traits expected');

    const api = await buildContainer(config(env));
    await api.start();
    try {
      const url = baseUrl(api);
      const login = await fetch(`${url}/v1/admin/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'owner@shred.example', password: 'a long enough password' }),
      });
      const { access_token: token } = z.object({ access_token: z.string() }).parse(await login.json());
      const erase = await fetch(`${url}/v1/admin/identity/${encodeURIComponent(userId)}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(erase.status).toBe(200);
      expect(await erase.json()).toEqual({ erased: { profiles: 1, identifiers: 2, traits: 1 } });
    } finally {
      await api.stop();
    }

    // A restart: the backed-up ciphertext still exists but its DEK is destroyed for good.
    await withProcess(async (db, runtime) => {
      const code = (promise: Promise<unknown>) =>
        promise.then(
          () => 'opened',
          (error: unknown) => (error instanceof CryptoError ? error.code : String(error)),
        );
      expect(
        await code(
          runtime.crypto.openTextAsync(sealedTraits.traits, traitsContext(sealedTraits.profile_id, orgId)),
        ),
      ).toBe('key_destroyed');
      for (const row of backup.identifiers) {
        expect(
          await code(runtime.crypto.openTextAsync(row.value, identifierContext(row.id, row.kind, orgId))),
        ).toBe('key_destroyed');
      }
      const dek = await db.query<{ state: string; wrapped: unknown; subject: string }>(
        'SELECT state, wrapped, subject FROM crypto_deks WHERE id = $1',
        [sealedTraits.traits_key_id],
      );
      expect(dek.rows).toEqual([{ state: 'destroyed', wrapped: null, subject: sealedTraits.profile_id }]);
      const entry = (await createAuditLog({ db, logger: quietLogger }).list({ action: 'identity.erased' }))
        .data[0];
      expect(entry?.changes).toMatchObject({
        destroyed_dek_ids: { old: [sealedTraits.traits_key_id], new: null },
      });
      expect(JSON.stringify(entry)).not.toContain(userId);
    });
  });
});
