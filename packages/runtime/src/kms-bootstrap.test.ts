import { randomBytes } from 'node:crypto';
import { loadConfig } from '@signal/config';
import { createLocalKmsProvider, KmsError, type KmsProvider, kmsMigrations } from '@signal/kms';
import { createDatabase, type Database, migrate } from '@signal/store';
import { afterEach, describe, expect, it } from 'vitest';
import { bootstrapCryptoWithKms, type CloudKmsLoader } from './kms-bootstrap';

const quiet = { info() {}, warn() {} };
const KEY = randomBytes(32).toString('hex');
const CONTEXT = { purpose: 'integration-credential', dataClass: 'credentials', rowId: '1' } as const;

const dbs: Database[] = [];
afterEach(async () => {
  for (const db of dbs.splice(0)) await db.close();
});

async function database(migrated = true): Promise<Database> {
  const db = await createDatabase({ kind: 'pglite' });
  dbs.push(db);
  if (migrated) await migrate(db, kmsMigrations);
  return db;
}

/** A database typed against the port that fails every call: direct mode must never touch it. */
const untouchable: Database = {
  kind: 'pglite',
  query: () => Promise.reject(new Error('direct mode touched the database')),
  exec: () => Promise.reject(new Error('direct mode touched the database')),
  transaction: () => Promise.reject(new Error('direct mode touched the database')),
  close: async () => {},
};

/** Stands in for a cloud provider (named as configured) on top of the local one; `failing` makes it refuse. */
function fakeCloud(state: { failing: boolean }): CloudKmsLoader {
  const kek = randomBytes(32);
  return async (name) => {
    const inner = createLocalKmsProvider({ current: kek });
    const refuse = () => {
      throw new KmsError(name, 'kms_denied', 'key is disabled (test)');
    };
    const provider: KmsProvider = {
      name,
      kekId: 'arn:aws:kms:eu-west-1:000000000000:key/test',
      wrap: async (dek, context, options) => (state.failing ? refuse() : inner.wrap(dek, context, options)),
      unwrap: async (wrapped, context, options) =>
        state.failing ? refuse() : inner.unwrap(wrapped, context, options),
      rewrap: async (wrapped, context, options) =>
        state.failing ? refuse() : inner.rewrap(wrapped, context, options),
      close: () => inner.close(),
    };
    return provider;
  };
}

describe('bootstrapCryptoWithKms', () => {
  it('with only ENCRYPTION_KEY keeps direct-derivation mode: no database, the same health body', async () => {
    const config = loadConfig({ env: { ENCRYPTION_KEY: KEY }, cwd: '/nonexistent' });
    const runtime = await bootstrapCryptoWithKms({ config, logger: quiet, db: untouchable });
    expect(runtime.health()).toEqual({
      status: 'healthy',
      provider: 'local',
      key_version: 1,
      dual_key_mode: false,
      checks: { key_valid: true, round_trip: true },
    });
    await runtime.close();
  });

  it('ENCRYPTION_ENVELOPE=true: DEKs in the database, health with the KMS canary, data opens after a restart', async () => {
    const db = await database();
    const config = loadConfig({
      env: { ENCRYPTION_KEY: KEY, ENCRYPTION_ENVELOPE: 'true' },
      cwd: '/nonexistent',
    });
    const first = await bootstrapCryptoWithKms({ config, logger: quiet, db });
    expect(first.health()).toEqual({
      status: 'healthy',
      provider: 'local',
      key_version: 1,
      dual_key_mode: false,
      checks: { key_valid: true, round_trip: true, kms_canary: true },
    });
    const sealed = first.crypto.sealText('secret', CONTEXT);
    await first.close();
    const second = await bootstrapCryptoWithKms({ config, logger: quiet, db });
    expect((await second.crypto.openTextAsync(sealed, CONTEXT)).toString()).toBe('secret');
    await second.close();
  });

  it('moving from direct mode: data sealed under ENCRYPTION_KEY still opens, and is left to the re-encryption job', async () => {
    const db = await database();
    const direct = await bootstrapCryptoWithKms({
      config: loadConfig({ env: { ENCRYPTION_KEY: KEY }, cwd: '/nonexistent' }),
      logger: quiet,
      db: untouchable,
    });
    const old = direct.crypto.sealText('secret sealed in direct mode', CONTEXT);
    const oldKeyId = direct.crypto.keyIdOf(old);

    // Local provider, envelope mode turned on: ENCRYPTION_KEY stays (it is the KEK's source), so it is not
    // shown as a previous key; its direct-mode data opens and is not current.
    const local = await bootstrapCryptoWithKms({
      config: loadConfig({ env: { ENCRYPTION_KEY: KEY, ENCRYPTION_ENVELOPE: 'true' }, cwd: '/nonexistent' }),
      logger: quiet,
      db,
    });
    expect((await local.crypto.openTextAsync(old, CONTEXT)).toString()).toBe('secret sealed in direct mode');
    expect(local.crypto.needsReencryption(old)).toBe(true);
    expect(local.crypto.keyIdOf(local.crypto.sealText('new', CONTEXT))).not.toBe(oldKeyId);
    expect(local.health()).toMatchObject({ status: 'healthy', dual_key_mode: false });
    await local.close();

    // A KMS provider with ENCRYPTION_KEY still set: the old key is the previous key until the job has run.
    const kms = await bootstrapCryptoWithKms({
      config: loadConfig({
        env: {
          ENCRYPTION_PROVIDER: 'aws-kms',
          ENCRYPTION_AWS_KMS_KEY_ID: 'arn:aws:kms:eu-west-1:000000000000:key/test',
          ENCRYPTION_KEY: KEY,
        },
        cwd: '/nonexistent',
      }),
      logger: quiet,
      db: await database(),
      loadCloudProvider: fakeCloud({ failing: false }),
    });
    expect(kms.crypto.keyring.previousKeyId).toBe(oldKeyId);
    expect(kms.health()).toMatchObject({
      status: 'healthy',
      provider: 'aws-kms',
      dual_key_mode: true,
      checks: { previous_key_valid: true, kms_canary: expect.any(Boolean) },
    });
    expect(kms.crypto.openText(old, CONTEXT).toString()).toBe('secret sealed in direct mode');
    expect(kms.crypto.needsReencryption(old)).toBe(true);
    const fresh = kms.crypto.sealText('new', CONTEXT);
    expect(kms.crypto.keyIdOf(fresh)).not.toBe(oldKeyId);
    expect(kms.crypto.openText(fresh, CONTEXT).toString()).toBe('new');
    await kms.close();
    await direct.close();
  });

  it('refuses to start on an unmigrated database, naming the migration', async () => {
    const db = await database(false);
    const config = loadConfig({
      env: { ENCRYPTION_KEY: KEY, ENCRYPTION_ENVELOPE: 'true' },
      cwd: '/nonexistent',
    });
    await expect(bootstrapCryptoWithKms({ config, logger: quiet, db })).rejects.toThrow(/kms\/0001_deks/);
  });

  it('REQUIRE_ENCRYPTION with a revoked KEK: refuses to start with a clear message; health names the provider', async () => {
    const db = await database();
    const state = { failing: false };
    const config = loadConfig({
      env: {
        ENCRYPTION_PROVIDER: 'aws-kms',
        ENCRYPTION_AWS_KMS_KEY_ID: 'arn:aws:kms:eu-west-1:000000000000:key/test',
        REQUIRE_ENCRYPTION: 'true',
      },
      cwd: '/nonexistent',
    });
    const loadCloudProvider = fakeCloud(state);
    const running = await bootstrapCryptoWithKms({ config, logger: quiet, db, loadCloudProvider });
    expect(running.health()).toMatchObject({ status: 'healthy', provider: 'aws-kms' });
    await running.close();

    state.failing = true;
    const refused = bootstrapCryptoWithKms({ config, logger: quiet, db, loadCloudProvider });
    await expect(refused).rejects.toThrow(/ENCRYPTION_PROVIDER=aws-kms.*kms_denied.*Refusing to start/s);
  });

  it('without an injected loader a cloud provider comes from @signal/kms, and an unreachable KEK refuses start-up', async () => {
    const db = await database();
    // Vault over plain HTTP is allowed on loopback only; nothing listens on port 9 here.
    const config = loadConfig({
      env: {
        ENCRYPTION_PROVIDER: 'hashicorp-vault',
        VAULT_ADDR: 'http://127.0.0.1:9',
        VAULT_TOKEN: 'test-token',
        ENCRYPTION_VAULT_KEY: 'signal',
      },
      cwd: '/nonexistent',
    });
    const refused = bootstrapCryptoWithKms({ config, logger: quiet, db });
    await expect(refused).rejects.toThrow(/hashicorp-vault/);
    await expect(refused).rejects.not.toThrow(/test-token/);
  });
});
