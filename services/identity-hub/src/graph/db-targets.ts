import { randomBytes } from 'node:crypto';
import { createDatabase, type Database, type Migration, migrate } from '@signal/store';
import { POSTGRES_URL } from '@signal/testkit';

/** Where a graph test suite runs: PGlite in process, or PostgreSQL (a random schema per database). */
export interface GraphDbTarget {
  readonly name: string;
  /** A database of its own with these migrations applied. */
  fresh(migrations: readonly Migration[]): Promise<Database>;
  /** Closes (and drops) every database `fresh` made. */
  close(): Promise<void>;
}

/** PGlite in process: one instance per database. */
export function pgliteTarget(): GraphDbTarget {
  const open: Database[] = [];
  return {
    name: 'PGlite',
    async fresh(migrations) {
      const db = await createDatabase({ kind: 'pglite' });
      open.push(db);
      await migrate(db, migrations);
      return db;
    },
    async close() {
      await Promise.all(open.splice(0).map((db) => db.close()));
    },
  };
}

/** PostgreSQL: each database a random schema of its own (`<schemaPrefix>_<hex>`), dropped at the end. */
export function postgresTarget(schemaPrefix: string, maxConnections: number): GraphDbTarget {
  const open: { db: Database; schema: string }[] = [];
  return {
    name: 'PostgreSQL',
    async fresh(migrations) {
      const schema = `${schemaPrefix}_${randomBytes(6).toString('hex')}`;
      const db = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections, schema });
      open.push({ db, schema });
      await migrate(db, migrations);
      return db;
    },
    async close() {
      const all = open.splice(0);
      await Promise.all(all.map(({ db }) => db.close()));
      if (all.length === 0) return;
      const admin = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 1 });
      try {
        for (const { schema } of all) await admin.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await admin.close();
      }
    },
  };
}
