import { createDatabase, type Database, migrate } from '@signal/store';
import { describeOrgIsolation } from './org-isolation.suite';

/** PGlite in process: one instance per database (a second one holds the pre-0003 graph of the upgrade test). */
const open: Database[] = [];
describeOrgIsolation({
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
});
