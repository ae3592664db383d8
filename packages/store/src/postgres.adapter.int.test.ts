import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { POSTGRES_URL, postgresAvailable } from '@signal/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FreezableRelay, startFreezableRelay } from '../test/freezable-relay';
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

/** `promise`, or a plain Error (not a StoreError) if it is still pending after `ms`: a hang fails fast. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
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

  async function openInSchema(
    schema: string,
    extra: { statementTimeoutMs?: number; queryTimeoutMs?: number } = {},
  ): Promise<Database> {
    if (!schemas.includes(schema)) schemas.push(schema);
    const db = await createDatabase({
      kind: 'postgres',
      url: POSTGRES_URL,
      maxConnections: 3,
      schema,
      ...extra,
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

  it('lifts the statement and read timeouts for migrations and for a transaction that asks', async () => {
    const db = await openInSchema(randomSchema(), { statementTimeoutMs: 100, queryTimeoutMs: 300 });
    // Longer than both the statement timeout and the client-side read timeout.
    const slow: Migration = { id: 'slow/0001', sql: 'SELECT pg_sleep(0.5)' };
    expect((await migrate(db, [slow])).applied).toEqual([slow.id]);
    const own = await db.transaction((tx) => tx.query('SELECT pg_sleep(0.2), 1 AS ok'), {
      statementTimeoutMs: 1_000,
    });
    expect(own.rows).toEqual([{ pg_sleep: '', ok: 1 }]);
    // Outside them the database's timeout holds, and so does the transaction's own.
    expect((await storeError(db.query('SELECT pg_sleep(0.5)'))).code).toBe('timeout');
    const inner = await storeError(
      db.transaction((tx) => tx.query('SELECT pg_sleep(0.5)'), { statementTimeoutMs: 50 }),
    );
    expect([inner.code, inner.sqlState]).toEqual(['timeout', '57014']);
  });

  describe('on a connection that went silent (packets dropped, no FIN or RST)', () => {
    let relay: FreezableRelay;
    beforeEach(async () => {
      relay = await startFreezableRelay(POSTGRES_URL);
    });
    afterEach(async () => {
      await relay.close();
    });

    it('fails statements with timeout within the read timeout and serves on through fresh connections', async () => {
      const db = await createDatabase({
        kind: 'postgres',
        url: relay.url,
        maxConnections: 2,
        statementTimeoutMs: 200,
        queryTimeoutMs: 600,
      });
      open.push(db);
      // Two pooled connections, both idle when the network goes silent.
      await Promise.all([db.query('SELECT pg_sleep(0.05)'), db.query('SELECT pg_sleep(0.05)')]);
      expect(relay.connections).toBe(2);
      relay.freeze();

      const started = performance.now();
      const [statement, transaction] = await Promise.all([
        storeError(within(db.query('SELECT 1'), 5_000)),
        storeError(
          within(
            db.transaction((tx) => tx.query('SELECT 2')),
            5_000,
          ),
        ),
      ]);
      const elapsed = performance.now() - started;
      expect(statement.code).toBe('timeout');
      expect(statement.retryable).toBe(true);
      expect(statement.message).toContain('query timeout');
      expect(transaction.code).toBe('timeout');
      expect(elapsed).toBeGreaterThanOrEqual(550);
      expect(elapsed).toBeLessThan(3_000);

      // Both dead connections were discarded, not returned to the pool of two: new work gets fresh ones.
      const after = await within(
        Promise.all([db.query('SELECT 3 AS n'), db.transaction((tx) => tx.query('SELECT 4 AS n'))]),
        5_000,
      );
      expect(after.map((r) => r.rows)).toEqual([[{ n: 3 }], [{ n: 4 }]]);
      expect(relay.connections).toBe(4);
      await within(db.close(), 3_000);
    });

    it('closes within closeTimeoutMs though a statement without a read timeout hangs on a dead connection', async () => {
      const db = await createDatabase({
        kind: 'postgres',
        url: relay.url,
        maxConnections: 1,
        statementTimeoutMs: 0,
        closeTimeoutMs: 300,
      });
      open.push(db);
      await db.query('SELECT 1');
      relay.freeze();
      const hung = storeError(db.query('SELECT 1'));
      await sleep(100); // on the wire, not waiting for a pooled connection
      const started = performance.now();
      await within(db.close(), 3_000);
      expect(performance.now() - started).toBeLessThan(2_000);
      // Its socket was destroyed, so the hung statement ends too.
      expect((await within(hung, 1_000)).code).toBe('unavailable');
    });
  });
});
