import { openPgliteDatabase, type PgliteDatabaseOptions } from './pglite.adapter';
import type { Database } from './port';
import { openPostgresDatabase } from './postgres.adapter';
import type { PostgresDatabaseOptions } from './postgres-connection';

/** `postgres` in production (DATABASE_URL), `pglite` for the embedded single-process mode. */
export type DatabaseOptions = PostgresDatabaseOptions | PgliteDatabaseOptions;

/**
 * Opens the adapter named by `options.kind` and checks it is usable (Postgres: one round trip, schema
 * created; PGlite: database started), so configuration mistakes fail at start-up.
 */
export function createDatabase(options: DatabaseOptions): Promise<Database> {
  switch (options.kind) {
    case 'postgres':
      return openPostgresDatabase(options);
    case 'pglite':
      return openPgliteDatabase(options);
  }
}
