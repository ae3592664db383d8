import { createDatabase, type Database, migrate } from '@signal/store';
import { POSTGRES_URL, postgresAvailable } from '@signal/testkit';
import { describeAuditLogSuite, randomSchemaName } from './audit-log.suite';
import { auditMigrations } from './migrations';

const available = await postgresAvailable();

describeAuditLogSuite(
  'PostgreSQL',
  () => {
    const open: Database[] = [];
    const schemas: string[] = [];
    return {
      async setup() {},
      async fresh(options = {}) {
        const schema = randomSchemaName();
        schemas.push(schema);
        const db = await createDatabase({
          kind: 'postgres',
          url: POSTGRES_URL,
          maxConnections: options.maxConnections ?? 3,
          schema,
        });
        open.push(db);
        await migrate(db, auditMigrations);
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
  },
  !available,
);
