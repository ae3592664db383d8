import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withdrawnCategories } from '@signal/consent';
import { createDatabase, type Database, migrate } from '@signal/store';
import { afterAll, describe, expect, it } from 'vitest';
import { identityHubMigrations } from '../migrations';
import { createConsentOfRecord } from './consent-of-record';
import { describeConsentOfRecord } from './consent-of-record.suite';

/** PGlite in process: one instance per database. */
const open: Database[] = [];
describeConsentOfRecord({
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

describe('a consent of record in the embedded database', () => {
  const dir = mkdtempSync(join(tmpdir(), 'signal-consent-of-record-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is still there after the process reopens its data directory', async () => {
    const first = await createDatabase({ kind: 'pglite', dataDir: dir });
    await migrate(first, identityHubMigrations);
    await createConsentOfRecord({ db: first }).record('org_1', 'subject-1', { marketing: false }, Date.now());
    await first.close();

    const second = await createDatabase({ kind: 'pglite', dataDir: dir });
    try {
      const read = await createConsentOfRecord({ db: second }).get('org_1', 'subject-1');
      expect(withdrawnCategories(read)).toEqual(['marketing']);
    } finally {
      await second.close();
    }
  });
});
