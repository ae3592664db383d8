import { randomBytes } from 'node:crypto';
import { createAuditLog } from '@signal/audit';
import { loadConfig } from '@signal/config';
import {
  countRecordsUnderKey,
  createControlPlane,
  ENCRYPTED_COLUMNS,
  integrationCredentialsContext,
} from '@signal/control-plane';
import { createCryptoService, createKeyring } from '@signal/crypto';
import {
  createIdentityGraph,
  IDENTITY_ENCRYPTED_COLUMNS,
  identityHubMigrations,
  loadBlindIndex,
} from '@signal/identity-hub';
import { createLocalKmsProvider, kmsMigrations, openEnvelopeKeyring } from '@signal/kms';
import { bootstrapCryptoWithKms } from '@signal/runtime';
import { createDatabase, type Database, migrate } from '@signal/store';
import { afterEach, describe, expect, it } from 'vitest';
import { MANAGEMENT_API_SCHEMA } from '../src/container';
import { createReencryptionJobs } from '../src/crypto/reencrypt-job';
import { captureLogger, seedOrg, spiedHasher } from './harness';
import { sampleEvent } from './operations.support';

const dbs: Database[] = [];
afterEach(async () => {
  for (const db of dbs.splice(0)) await db.close();
});

/**
 * Envelope mode through the same re-encryption job (and so the same endpoint and status JSON): DEK rotation
 * moves data to the new active DEKs; KEK rotation re-wraps the DEK rows only.
 */
describe('re-encryption job in envelope mode (local provider)', () => {
  it('moving from direct mode to a KMS: the job moves what ENCRYPTION_KEY sealed under the DEKs, then the old key can go', async () => {
    const db = await createDatabase({ kind: 'pglite' });
    dbs.push(db);
    await migrate(db, [...MANAGEMENT_API_SCHEMA, ...kmsMigrations]);
    const logs = captureLogger();
    const audit = createAuditLog({ db, logger: logs });
    const oldKey = randomBytes(32);
    // Before: direct mode under ENCRYPTION_KEY.
    const direct = createCryptoService({ keyring: createKeyring({ current: oldKey }) });
    const cpBefore = createControlPlane({ db, crypto: direct, hasher: spiedHasher() });
    const org = await seedOrg(cpBefore, db);
    const made = await cpBefore.pipelines.create(org.orgId, { name: 'Web', type: 'server' });
    const integration = await cpBefore.integrations.create(org.orgId, made.pipeline.id, {
      vendor: 'meta',
      name: 'Meta',
      credentials: { access_token: 'meta-token-sealed-in-direct-mode' },
    });
    const oldKeyId = direct.keyring.currentKeyId;
    expect(await countRecordsUnderKey(db, oldKeyId)).toBe(2);

    // After: a KMS holds the KEK; ENCRYPTION_KEY stays set as the previous key until the job has run.
    const kek = randomBytes(32);
    const keyring = await openEnvelopeKeyring({
      db,
      provider: createLocalKmsProvider({ current: kek }),
      legacy: { keyring: createKeyring({ current: oldKey }), asPrevious: true },
    });
    const crypto = createCryptoService({ keyring });
    expect(keyring.previousKeyId).toBe(oldKeyId);
    const jobs = createReencryptionJobs({ db, crypto, audit, logger: logs, columns: ENCRYPTED_COLUMNS });
    expect((await jobs.start()).kind).toBe('started');
    await jobs.idle();
    expect(await jobs.status()).toMatchObject({
      status: 'completed',
      failed_records: 0,
      processed_records: 2,
    });
    expect(await countRecordsUnderKey(db, oldKeyId)).toBe(0);

    // Without the old key at all, everything still opens: it can be removed.
    const kmsOnly = await openEnvelopeKeyring({ db, provider: createLocalKmsProvider({ current: kek }) });
    const cpAfter = createControlPlane({ db, crypto: createCryptoService({ keyring: kmsOnly }) });
    const opened = await cpAfter.integrations.credentials(integration.id);
    expect(opened).toEqual({ access_token: 'meta-token-sealed-in-direct-mode' });
    await kmsOnly.close();
    await keyring.close();
  });

  it('DEK rotation: the job moves every record to the new active DEK of its class; KEK rotation only re-wraps', async () => {
    const db = await createDatabase({ kind: 'pglite' });
    dbs.push(db);
    await migrate(db, [...MANAGEMENT_API_SCHEMA, ...kmsMigrations]);
    const logs = captureLogger();
    const audit = createAuditLog({ db, logger: logs });
    const keyA = randomBytes(32);
    const keyring = await openEnvelopeKeyring({ db, provider: createLocalKmsProvider({ current: keyA }) });
    const crypto = createCryptoService({ keyring });
    const cp = createControlPlane({ db, crypto, hasher: spiedHasher() });
    const org = await seedOrg(cp, db);
    const made = await cp.pipelines.create(org.orgId, { name: 'Web', type: 'server' });
    const credentials = new Map<string, string>();
    for (let i = 0; i < 3; i++) {
      const token = `token-${i}-${randomBytes(6).toString('hex')}`;
      const integration = await cp.integrations.create(org.orgId, made.pipeline.id, {
        vendor: 'meta',
        name: `Meta ${i}`,
        credentials: { access_token: token },
      });
      credentials.set(integration.id, token);
    }
    const before = keyring.activeKeyIds();
    // The three credentials and the pipeline's HMAC secret (also the credentials class).
    const underCredentialsDek = await countRecordsUnderKey(db, before.credentials);
    expect(underCredentialsDek).toBe(4);

    const after = await keyring.rotateDeks();
    const jobs = createReencryptionJobs({ db, crypto, audit, logger: logs, columns: ENCRYPTED_COLUMNS });
    expect((await jobs.start()).kind).toBe('started');
    await jobs.idle();
    expect(await jobs.status()).toMatchObject({ status: 'completed', failed_records: 0 });
    expect(await countRecordsUnderKey(db, before.credentials)).toBe(0);
    expect(await countRecordsUnderKey(db, after.credentials)).toBe(underCredentialsDek);
    const rows = await db.query<{ id: string; credentials: string; credentials_key_id: string }>(
      'SELECT id, credentials, credentials_key_id FROM integrations',
    );
    for (const row of rows.rows) {
      expect(crypto.keyIdOf(row.credentials)).toBe(after.credentials);
      const opened = JSON.parse(
        crypto.openText(row.credentials, integrationCredentialsContext(row.id)).toString(),
      );
      expect(opened).toEqual({ access_token: credentials.get(row.id) });
    }
    await keyring.close();

    // KEK rotation: ENCRYPTION_KEY=B, ENCRYPTION_KEY_PREVIOUS=A; one job start re-wraps the DEK rows.
    const keyB = randomBytes(32);
    const both = await openEnvelopeKeyring({
      db,
      provider: createLocalKmsProvider({ current: keyB, previous: keyA }),
    });
    const bothCrypto = createCryptoService({ keyring: both });
    const kekJobs = createReencryptionJobs({
      db,
      crypto: bothCrypto,
      audit,
      logger: logs,
      columns: ENCRYPTED_COLUMNS,
      rewrapKeys: () => both.rewrapDeks(),
    });
    // Nothing to re-encrypt (data is untouched by a KEK rotation): the job completes at once with 0 records.
    expect((await kekJobs.start()).status).toMatchObject({ status: 'completed', total_records: 0 });
    const keks = await db.query<{ kek_ref: string }>('SELECT DISTINCT kek_ref FROM crypto_deks');
    expect(keks.rows).toEqual([{ kek_ref: createLocalKmsProvider({ current: keyB }).kekId }]);
    await both.close();
    const onlyB = await openEnvelopeKeyring({ db, provider: createLocalKmsProvider({ current: keyB }) });
    const id = [...credentials.keys()][0] ?? '';
    const sealed = rows.rows.find((row) => row.id === id)?.credentials ?? '';
    expect(
      createCryptoService({ keyring: onlyB }).openText(sealed, integrationCredentialsContext(id)).toString(),
    ).toContain(credentials.get(id));
    await onlyB.close();
  });

  it('crypto-shredding: records under a subject DEK stay under it, and are not counted as pending', async () => {
    const db = await createDatabase({ kind: 'pglite' });
    dbs.push(db);
    await migrate(db, [...MANAGEMENT_API_SCHEMA, ...kmsMigrations, ...identityHubMigrations]);
    const logs = captureLogger();
    const audit = createAuditLog({ db, logger: logs });
    const config = loadConfig({
      env: {
        ENCRYPTION_KEY: randomBytes(32).toString('hex'),
        ENCRYPTION_ENVELOPE: 'true',
        ENCRYPTION_CRYPTO_SHREDDING: 'true',
      },
      cwd: '/nonexistent',
    });
    const runtime = await bootstrapCryptoWithKms({ config, logger: { info() {}, warn() {} }, db });
    const { crypto, subjectKeys, rotateDeks } = runtime;
    if (subjectKeys === undefined || rotateDeks === undefined)
      throw new Error('envelope mode with shredding');
    try {
      const graph = createIdentityGraph({
        db,
        crypto,
        index: await loadBlindIndex(db, crypto),
        profileKeys: subjectKeys,
      });
      const events = [sampleEvent({}), sampleEvent({}), sampleEvent({})];
      for (const event of events) await graph.ingest(event);
      const subjectSealed = async () =>
        (
          await db.query<{ value: string; value_key_id: string }>(
            `SELECT value, value_key_id FROM identity_identifiers
              UNION ALL SELECT traits, traits_key_id FROM identity_traits ORDER BY 1`,
          )
        ).rows;
      const before = await subjectSealed();
      // 3 profiles: an anonymous id and a user id each, and their traits.
      expect(before).toHaveLength(9);
      const subjectDeks = await db.query<{ id: string }>("SELECT id FROM crypto_deks WHERE subject <> ''");
      expect(new Set(before.map((row) => row.value_key_id))).toEqual(
        new Set(subjectDeks.rows.map((row) => row.id)),
      );

      // Nothing is under an old key: the subject-sealed records are current, not pending.
      const jobs = createReencryptionJobs({
        db,
        crypto,
        audit,
        logger: logs,
        columns: [...ENCRYPTED_COLUMNS, ...IDENTITY_ENCRYPTED_COLUMNS],
      });
      expect((await jobs.start()).status).toMatchObject({ status: 'completed', total_records: 0 });

      // DEK rotation moves class-sealed records (the blind-index key) and leaves subject-sealed ones alone.
      await rotateDeks();
      expect((await jobs.start()).status).toMatchObject({ total_records: 1 });
      await jobs.idle();
      expect(await jobs.status()).toMatchObject({
        status: 'completed',
        total_records: 1,
        processed_records: 1,
        failed_records: 0,
      });
      expect(await subjectSealed()).toEqual(before);
      const userId = events[0]?.userId ?? '';
      expect(
        await graph.lookup(
          events[0]?.org ?? '',
          { userId },
          { consent: true, kinds: ['user_id'], traits: true },
        ),
      ).toMatchObject({ identifiers: { user_id: userId }, traits: { email: 'jane.doe@example.com' } });
    } finally {
      await runtime.close();
    }
  });
});
