import { createDatabase, type Database, migrate } from '@signal/store';
import { describeAuditLogSuite, randomSchemaName } from './audit-log.suite';
import { auditMigrations } from './migrations';

// One embedded database for the file (starting PGlite takes seconds); each test gets a new schema, selected
// with search_path on PGlite's single connection, exactly as the PostgreSQL adapter's `schema` option does.
describeAuditLogSuite('PGlite (embedded)', () => {
  let db: Database | undefined;
  return {
    async setup() {
      db = await createDatabase({ kind: 'pglite' });
    },
    async fresh() {
      if (db === undefined) throw new Error('PGlite not started');
      const schema = randomSchemaName();
      await db.exec(`CREATE SCHEMA ${schema}; SET search_path TO ${schema}`);
      await migrate(db, auditMigrations);
      return db;
    },
    async teardown() {
      await db?.close();
    },
  };
});
