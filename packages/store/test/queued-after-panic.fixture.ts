/**
 * Child process of the "queued behind a PANIC" test (pglite.adapter.test.ts): run apart because, when the
 * bug is there, a statement spins inside PGlite's synchronous WASM call and blocks the whole event loop,
 * including any test timeout. Prints one JSON line: how each call issued together with the failing one ended.
 */
import { isStoreError } from '../src/errors';
import { openWithFailableSync } from './failable-sync';

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error('usage: queued-after-panic.fixture.ts <dataDir>');

const { db, failFromNow } = await openWithFailableSync(dataDir);
await db.exec('CREATE TABLE t (n integer)');
failFromNow();
// Issued together, as the bus's flush, a consumer's poll and a lease renewal are: the INSERT's COMMIT
// fails to sync its WAL and PANICs; the others were already waiting for it.
const settled = await Promise.allSettled([
  db.query('INSERT INTO t (n) VALUES (1)'),
  db.query('SELECT 1'),
  db.exec('SELECT 2'),
  db.transaction(async (tx) => tx.query('SELECT 3')),
]);
process.stdout.write(
  `${JSON.stringify(settled.map((s) => (s.status === 'fulfilled' ? 'ok' : isStoreError(s.reason) ? s.reason.code : 'other')))}\n`,
);
process.exit(0);
