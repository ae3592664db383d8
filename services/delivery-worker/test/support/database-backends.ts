import { randomBytes } from 'node:crypto';
import { createDatabase, type Database } from '@signal/store';
import { POSTGRES_URL, postgresAvailable } from '@signal/testkit';

/** A database the delivery worker's tables are tested on: embedded PGlite, and a PostgreSQL server when up. */
export interface DatabaseBackend {
  readonly name: string;
  open(): Promise<{ db: Database; close(): Promise<void> }>;
}

/**
 * PGlite (in memory), plus the PostgreSQL server on 127.0.0.1:5432 when it answers (CI requires it), each
 * open in a fresh schema named `<schemaPrefix>_<random>` that is dropped on close.
 */
export async function databaseBackends(
  schemaPrefix: string,
  maxConnections = 2,
): Promise<readonly DatabaseBackend[]> {
  const backends: DatabaseBackend[] = [
    {
      name: 'PGlite',
      open: async () => {
        const db = await createDatabase({ kind: 'pglite' });
        return { db, close: () => db.close() };
      },
    },
  ];
  if (await postgresAvailable()) {
    backends.push({
      name: 'PostgreSQL',
      open: async () => {
        const schema = `${schemaPrefix}_${randomBytes(5).toString('hex')}`;
        const db = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections, schema });
        return {
          db,
          close: async () => {
            await db.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
            await db.close();
          },
        };
      },
    });
  }
  return backends;
}
