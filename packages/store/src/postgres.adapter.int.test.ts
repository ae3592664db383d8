import { randomBytes } from 'node:crypto';
import { POSTGRES_URL, postgresAvailable } from '@signal/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from './create-database';
import { describeDatabaseContract } from './database.contract';
import { isStoreError, type StoreError } from './errors';
import { migrate } from './migrate';
import type { Database, Migration } from './port';

const available = await postgresAvailable();

function randomSchema(): string {
  return `signal_test_${randomBytes(6).toString('hex')}`;
}

async function dropSchemas(schemas: readonly string[]): Promise<void> {
  if (schemas.length === 0) return;
  const admin = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 1 });
  try {
    for (const schema of schemas) await admin.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await admin.close();
  }
}

async function storeError(promise: Promise<unknown>): Promise<StoreError> {
  try {
    await promise;
  } catch (err) {
    if (isStoreError(err)) return err;
    throw err;
  }
  throw new Error('expected a StoreError');
}

describeDatabaseContract(
  'PostgreSQL (own schema)',
  () => {
    const schema = randomSchema();
    return {
      persistent: true,
      open: () => createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 4, schema }),
      cleanup: () => dropSchemas([schema]),
    };
  },
  { skip: !available },
);

describe.skipIf(!available)('PostgreSQL adapter', () => {
  const schemas: string[] = [];
  const open: Database[] = [];

  async function openInSchema(schema: string, extra: { maxConnections?: number } = {}): Promise<Database> {
    if (!schemas.includes(schema)) schemas.push(schema);
    const db = await createDatabase({
      kind: 'postgres',
      url: POSTGRES_URL,
      maxConnections: extra.maxConnections ?? 3,
      schema,
    });
    open.push(db);
    return db;
  }

  afterAll(async () => {
    await Promise.all(open.map((db) => db.close()));
    await dropSchemas(schemas);
  });

  it('creates the schema and keeps each schema’s tables apart', async () => {
    const schemaA = randomSchema();
    const a = await openInSchema(schemaA);
    const b = await openInSchema(randomSchema());
    await a.exec('CREATE TABLE items (v text); INSERT INTO items VALUES ($$from a$$)');
    await b.exec('CREATE TABLE items (v text)');
    expect((await b.query('SELECT v FROM items')).rows).toEqual([]);
    expect((await a.query('SELECT v FROM items')).rows).toEqual([{ v: 'from a' }]);
    const where = await a.query('SELECT current_schema() AS s');
    expect(where.rows).toEqual([{ s: schemaA }]);
  });

  it('applies each migration exactly once when separate processes migrate at the same time', async () => {
    const schema = randomSchema();
    const migrators = await Promise.all(Array.from({ length: 3 }, () => openInSchema(schema)));
    await migrators[0]?.exec('CREATE TABLE runs (id text)');
    // pg_sleep widens the window in which a second migrator could apply the same migration.
    const list: Migration[] = Array.from({ length: 4 }, (_, i) => ({
      id: `race/000${i}`,
      sql: `SELECT pg_sleep(0.02); INSERT INTO runs VALUES ('${i}')`,
    }));
    const results = await Promise.all(migrators.map((db) => migrate(db, list)));
    expect(results.flatMap((r) => r.applied).sort()).toEqual(list.map((m) => m.id));
    const runs = await migrators[1]?.query('SELECT id FROM runs ORDER BY id');
    expect(runs?.rows).toEqual(['0', '1', '2', '3'].map((id) => ({ id })));
  });

  it('fails fast with unavailable when nothing listens on the port', async () => {
    const started = performance.now();
    const err = await storeError(
      createDatabase({ kind: 'postgres', url: 'postgres://postgres@127.0.0.1:1/test', maxConnections: 1 }),
    );
    expect(err.code).toBe('unavailable');
    expect(err.retryable).toBe(true);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('refuses to fall back to plaintext when sslmode=verify-full meets a server without TLS', async () => {
    const url = new URL(POSTGRES_URL);
    url.searchParams.set('sslmode', 'verify-full');
    const err = await storeError(
      createDatabase({ kind: 'postgres', url: url.toString(), maxConnections: 1 }),
    );
    expect(err.code).toBe('tls_failed');
  });

  it('reports a statement that exceeds statement_timeout as timeout', async () => {
    const db = await createDatabase({
      kind: 'postgres',
      url: POSTGRES_URL,
      maxConnections: 1,
      statementTimeoutMs: 100,
    });
    open.push(db);
    const err = await storeError(db.query('SELECT pg_sleep(2)'));
    expect(err.code).toBe('timeout');
    expect(err.retryable).toBe(true);
  });

  it('reports an exhausted pool as timeout instead of waiting forever', async () => {
    const db = await createDatabase({
      kind: 'postgres',
      url: POSTGRES_URL,
      maxConnections: 1,
      connectTimeoutMs: 200,
    });
    open.push(db);
    let release: () => void = () => undefined;
    const held = db.transaction(() => new Promise<void>((resolve) => (release = resolve)));
    const err = await storeError(db.query('SELECT 1'));
    expect(err.code).toBe('timeout');
    release();
    await held;
    expect((await db.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  describe('with a broken connection', () => {
    let db: Database;
    beforeAll(async () => {
      db = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 2 });
      open.push(db);
    });

    it('maps a connection killed mid-transaction to unavailable and rolls the work back', async () => {
      const table = `killed_${randomBytes(6).toString('hex')}`;
      await db.exec(`CREATE TABLE ${table} (v int)`);
      const err = await storeError(
        db.transaction(async (tx) => {
          await tx.query(`INSERT INTO ${table} VALUES (1)`);
          const pid = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          await db.query('SELECT pg_terminate_backend($1)', [pid.rows[0]?.pid]);
          await tx.query('SELECT 1');
        }),
      );
      expect(err.code).toBe('unavailable');
      expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows).toEqual([{ n: 0 }]);
      await db.exec(`DROP TABLE ${table}`);
    });
  });
});
