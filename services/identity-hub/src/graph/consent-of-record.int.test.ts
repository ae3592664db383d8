import { randomBytes } from 'node:crypto';
import { createDatabase, type Database, migrate } from '@signal/store';
import { POSTGRES_URL, postgresAvailable } from '@signal/testkit';
import { describeConsentOfRecord } from './consent-of-record.suite';

const available = await postgresAvailable();
/** PostgreSQL: each database a random schema of its own, dropped at the end. */
const open: { db: Database; schema: string }[] = [];
describeConsentOfRecord(
  {
    name: 'PostgreSQL',
    async fresh(migrations) {
      const schema = `idhub_consent_${randomBytes(6).toString('hex')}`;
      const db = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 8, schema });
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
  },
  !available,
);
