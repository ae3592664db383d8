import { randomBytes } from 'node:crypto';
import { createDatabase, type Database, type Migration, migrate } from '@signal/store';
import { POSTGRES_URL } from '@signal/testkit';

/**
 * Where a behaviour suite runs: PGlite in process (one instance per file, a fresh schema per test selected
 * with search_path) or PostgreSQL (a fresh random schema per test, dropped at the end).
 */
export interface DbTarget {
  readonly name: string;
  setup(): Promise<void>;
  /** A database whose search_path is a new schema with `migrations` applied. */
  fresh(migrations: readonly Migration[]): Promise<Database>;
  teardown(): Promise<void>;
}

export const randomSchemaName = (): string => `cp_test_${randomBytes(6).toString('hex')}`;

export function pgliteTarget(): DbTarget {
  let db: Database | undefined;
  return {
    name: 'PGlite',
    async setup() {
      db = await createDatabase({ kind: 'pglite' });
    },
    async fresh(migrations) {
      if (db === undefined) throw new Error('PGlite not started');
      const schema = randomSchemaName();
      await db.exec(`CREATE SCHEMA ${schema}; SET search_path TO ${schema}`);
      await migrate(db, migrations);
      return db;
    },
    async teardown() {
      await db?.close();
    },
  };
}

export function postgresTarget(): DbTarget {
  const open: Database[] = [];
  const schemas: string[] = [];
  return {
    name: 'PostgreSQL',
    async setup() {},
    async fresh(migrations) {
      const schema = randomSchemaName();
      schemas.push(schema);
      const db = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 4, schema });
      open.push(db);
      await migrate(db, migrations);
      return db;
    },
    async teardown() {
      await Promise.all(open.map((db) => db.close()));
      if (schemas.length === 0) return;
      const admin = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 1 });
      try {
        for (const schema of schemas) await admin.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await admin.close();
      }
    },
  };
}
