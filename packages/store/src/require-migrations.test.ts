import { describe, expect, it } from 'vitest';
import { createDatabase } from './create-database';
import { migrate, requireMigrations } from './migrate';

const ONE = { id: 'test/0001_one', sql: 'CREATE TABLE one (id int)' };
const TWO = { id: 'test/0002_two', sql: 'CREATE TABLE two (id int)' };

describe('requireMigrations', () => {
  it('passes on a migrated database and names what is missing or from another release', async () => {
    const db = await createDatabase({ kind: 'pglite' });
    try {
      await expect(requireMigrations(db, [ONE], 'svc')).rejects.toThrow(
        /not migrated for svc \(missing test\/0001_one\): run `pnpm signal-cli migrate`/,
      );
      await migrate(db, [ONE]);
      await expect(requireMigrations(db, [ONE], 'svc')).resolves.toBeUndefined();
      await expect(requireMigrations(db, [ONE, TWO], 'svc')).rejects.toThrow(/missing test\/0002_two/);
      await expect(
        requireMigrations(db, [{ ...ONE, sql: 'CREATE TABLE one (id bigint)' }], 'svc'),
      ).rejects.toMatchObject({ code: 'migration_mismatch', message: /another release: test\/0001_one/ });
    } finally {
      await db.close();
    }
  });
});
