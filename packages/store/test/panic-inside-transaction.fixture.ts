/**
 * Child process of the "PANIC inside a transaction" test (pglite.adapter.test.ts): run apart because a
 * statement reaching the dead backend would spin inside PGlite's synchronous WASM call and block the whole
 * event loop, including any test timeout. Prints one JSON line: how the transaction and a statement issued
 * after it ended.
 */
import { isStoreError } from '../src/errors';
import { openWithFailableSync } from './failable-sync';

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error('usage: panic-inside-transaction.fixture.ts <dataDir>');

const { db, failFromNow } = await openWithFailableSync(dataDir);
await db.exec('CREATE TABLE t (n integer)');
failFromNow();
const code = (s: PromiseSettledResult<unknown>) =>
  s.status === 'fulfilled' ? 'ok' : isStoreError(s.reason) ? s.reason.code : 'other';
// A statement inside the transaction flushes the WAL (a WAL segment filled up mid-transaction does the same
// under load): its sync fails and PostgreSQL PANICs before COMMIT.
const inside = await Promise.allSettled([
  db.transaction(async (tx) => {
    await tx.query('INSERT INTO t (n) VALUES (1)');
    await tx.query('SELECT pg_switch_wal()');
    await tx.query('INSERT INTO t (n) VALUES (2)');
  }),
]);
const after = await Promise.allSettled([db.query('SELECT 1')]);
process.stdout.write(`${JSON.stringify([...inside, ...after].map(code))}\n`);
process.exit(0);
