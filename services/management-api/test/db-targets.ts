import { randomBytes } from 'node:crypto';
import { createDatabase, type Database, type Migration, migrate } from '@signal/store';
import { POSTGRES_URL } from '@signal/testkit';

/**
 * Where a behaviour suite runs: PGlite in process (one instance per file; a fresh schema per test selected
 * with search_path) or PostgreSQL (a fresh random schema per test, dropped at the end).
 */
export interface DbTarget {
  readonly name: string;
  setup(): Promise<void>;
  fresh(migrations: readonly Migration[]): Promise<Database>;
  /** Another connection pool on the same schema (a second process's view); PGlite shares its one connection. */
  reopen(db: Database): Promise<Database>;
  teardown(): Promise<void>;
}

export const randomSchemaName = (): string => `mapi_test_${randomBytes(6).toString('hex')}`;

/**
 * Starting PGlite costs seconds, so suites in one file share one instance: `setup`/`teardown` are counted and
 * the database closes when the last suite is done.
 */
export function pgliteTarget(): DbTarget {
  let db: Database | undefined;
  let opening: Promise<Database> | undefined;
  let users = 0;
  return {
    name: 'PGlite',
    async setup() {
      users++;
      opening ??= createDatabase({ kind: 'pglite' });
      db = await opening;
    },
    async fresh(migrations) {
      if (db === undefined) throw new Error('PGlite not started');
      const schema = randomSchemaName();
      await db.exec(`CREATE SCHEMA ${schema}; SET search_path TO ${schema}`);
      await migrate(db, migrations);
      return db;
    },
    async reopen(same) {
      return same;
    },
    async teardown() {
      users--;
      if (users > 0) return;
      await db?.close();
      db = undefined;
      opening = undefined;
    },
  };
}

export function postgresTarget(): DbTarget {
  const open: Database[] = [];
  const schemas = new Map<Database, string>();
  return {
    name: 'PostgreSQL',
    async setup() {},
    async fresh(migrations) {
      const schema = randomSchemaName();
      const db = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 4, schema });
      open.push(db);
      schemas.set(db, schema);
      await migrate(db, migrations);
      return db;
    },
    async reopen(same) {
      const schema = schemas.get(same);
      if (schema === undefined) throw new Error('unknown database');
      const db = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 4, schema });
      open.push(db);
      schemas.set(db, schema);
      return db;
    },
    async teardown() {
      await Promise.all(open.map((db) => db.close()));
      const names = new Set(schemas.values());
      if (names.size === 0) return;
      const admin = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 1 });
      try {
        for (const schema of names) await admin.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await admin.close();
      }
    },
  };
}
