import { fsyncSync } from 'node:fs';
import { createDatabase } from '../src/create-database';
import type { Database } from '../src/port';

/** An embedded database on `dataDir` whose file syncs succeed until `failFromNow()`, then fail with EIO. */
export async function openWithFailableSync(dataDir: string): Promise<{ db: Database; failFromNow(): void }> {
  let failing = false;
  const db = await createDatabase({
    kind: 'pglite',
    dataDir,
    fileSync: (fd) => {
      if (failing) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
      fsyncSync(fd);
    },
  });
  return {
    db,
    failFromNow: () => {
      failing = true;
    },
  };
}
