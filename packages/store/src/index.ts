export { createDatabase, type DatabaseOptions } from './create-database';
export { isStoreError, StoreError, type StoreErrorCode, type StoreErrorDetails } from './errors';
export type { StoreLogger } from './logger';
export {
  type MigrateResult,
  migrate,
  migrationChecksum,
  requireMigrations,
  storeMigrations,
} from './migrate';
export type { PgliteDatabaseOptions } from './pglite.adapter';
export type { Database, Migration, Queryable, QueryResult, TransactionOptions } from './port';
export type { PostgresDatabaseOptions, PostgresTlsOptions } from './postgres-connection';
