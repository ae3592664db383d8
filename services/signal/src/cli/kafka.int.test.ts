import { randomBytes } from 'node:crypto';
import { createCryptoService, createKeyring } from '@signal/crypto';
import { postgresAvailable } from '@signal/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, type FreshDatabase, freshDatabase, seedOrgPipeline } from './cli.fixtures';

const available = await postgresAvailable();

describe.skipIf(!available)('signal-cli kafka topics create: integrations from the database', () => {
  let database: FreshDatabase;
  let env: Record<string, string>;
  const integrationIds: string[] = [];

  beforeAll(async () => {
    database = await freshDatabase('signal_cli_kafka');
    env = { DATABASE_URL: database.url, SIGNAL_NAMESPACE: 'kafkacli', LOG_LEVEL: 'warn' };
    expect((await cli(['migrate'], env)).code).toBe(0);
    const db = await database.open('kafkacli');
    const crypto = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) });
    const { cp, orgId, made } = await seedOrgPipeline(db, crypto);
    for (const name of ['Meta', 'Webhook']) {
      const integration = await cp.integrations.create(orgId, made.pipeline.id, {
        vendor: 'meta',
        name,
        credentials: { access_token: `token-${randomBytes(8).toString('hex')}` },
      });
      integrationIds.push(integration.id);
    }
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('plans a delivery topic for every integration in the store, without the encryption key', async () => {
    const { code, stdout, stderr } = await cli(['kafka', 'topics', 'create', '--dry-run'], {
      ...env,
      KAFKA_DELIVERY_PARTITIONS: '6',
    });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const names = stdout
      .trimEnd()
      .split('\n')
      .map((l) => l.split(/\s+/)[1]);
    expect(names).toEqual([
      'kafkacli.raw-events',
      'kafkacli.dlq-events',
      ...[...integrationIds].sort().map((id) => `kafkacli.delivery-${id}`),
    ]);
    expect(stdout).toContain(`kafkacli.delivery-${integrationIds[0]}  partitions=6  replicas=3`);
  });

  it('--integration limits the plan to the given ids (the database is not read)', async () => {
    const { code, stdout } = await cli(
      ['kafka', 'topics', 'create', '--dry-run', `--integration=${integrationIds[1]}`],
      { ...env, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' },
    );
    expect(code).toBe(0);
    expect(stdout.trimEnd().split('\n')).toHaveLength(3);
    expect(stdout).toContain(`kafkacli.delivery-${integrationIds[1]}`);
  });
});
