import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase } from './create-database';
import { describeDatabaseContract } from './database.contract';
import { isStoreError } from './errors';

describeDatabaseContract('PGlite in memory', () => ({
  open: () => createDatabase({ kind: 'pglite' }),
  persistent: false,
}));

describeDatabaseContract('PGlite on disk', () => {
  let dir: string | undefined;
  return {
    persistent: true,
    async open() {
      dir ??= join(await mkdtemp(join(tmpdir(), 'signal-store-')), 'data');
      return createDatabase({ kind: 'pglite', dataDir: dir });
    },
    async cleanup() {
      if (dir !== undefined) await rm(join(dir, '..'), { recursive: true, force: true });
    },
  };
});

describe('PGlite data directory', () => {
  const parent = mkdtemp(join(tmpdir(), 'signal-store-lock-'));
  afterAll(async () => rm(await parent, { recursive: true, force: true }));

  it('refuses a second open of a directory in use, and frees it on close', async () => {
    const dataDir = join(await parent, 'nested', 'data');
    const db = await createDatabase({ kind: 'pglite', dataDir });
    const second = await createDatabase({ kind: 'pglite', dataDir }).catch((err: unknown) => err);
    expect(isStoreError(second) && second.code).toBe('unavailable');
    expect((await db.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await db.close();
    await expect(access(join(dataDir, 'signal-store.lock'))).rejects.toThrow();
  });
});
