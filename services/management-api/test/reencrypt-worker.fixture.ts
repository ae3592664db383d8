/**
 * A separate process running the re-encryption job, for the SIGKILL test: it connects to the schema named in
 * the environment, starts the job with one record per batch and reports each committed batch on stdout, until
 * the test kills it.
 */
import { createAuditLog } from '@signal/audit';
import { createCryptoService, createKeyring } from '@signal/crypto';
import { createDatabase, type Database } from '@signal/store';
import { createReencryptionJobs } from '../src/crypto/reencrypt-job';

const env = process.env;
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const database = await createDatabase({
  kind: 'postgres',
  url: env.WORKER_DATABASE_URL ?? '',
  maxConnections: 2,
  schema: env.WORKER_SCHEMA ?? '',
});
// Each batch takes a little while, so the test's SIGKILL lands mid-job rather than after the last batch.
const db: Database = {
  kind: database.kind,
  query: (sql, params) => database.query(sql, params),
  exec: (sql) => database.exec(sql),
  transaction: async (fn) => {
    await new Promise((resolve) => setTimeout(resolve, 30));
    return database.transaction(fn);
  },
  close: () => database.close(),
};
const crypto = createCryptoService({
  keyring: createKeyring({
    current: Buffer.from(env.WORKER_KEY ?? '', 'hex'),
    previous: Buffer.from(env.WORKER_PREVIOUS_KEY ?? '', 'hex'),
  }),
});
const jobs = createReencryptionJobs({
  db,
  crypto,
  audit: createAuditLog({ db, logger: silent }),
  logger: silent,
  batchSize: 1,
  leaseMs: Number(env.WORKER_LEASE_MS ?? '1000'),
  onProgress: (status) => {
    process.stdout.write(`${JSON.stringify(status)}\n`);
  },
});
await jobs.start(null);
await jobs.idle();
process.stdout.write('done\n');
await db.close();
