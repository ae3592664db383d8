/**
 * The re-encryption job (runbook "Re-encrypt existing data") on PostgreSQL against a plain rewrite of the same
 * rows, same database, same run.
 *
 *   pnpm bench reencrypt        (runs: tsx test/bench/reencrypt.ts; needs PostgreSQL at TEST_DATABASE_URL or
 *                                postgres://postgres@127.0.0.1:5432/test, creates and drops its own database)
 *
 * 20,000 integrations with credentials (a ~70-byte JSON object, sealed in the v1 format) are written under
 * key A through the control plane. Then, in alternating rounds:
 * - baseline: `UPDATE integrations SET credentials = credentials, credentials_key_id = credentials_key_id`
 *   over every row, in one statement (what a rewrite costs the database with no crypto and no bookkeeping);
 * - the job: `createReencryptionJobs` (batches of 500, one transaction each with the optimistic check, the
 *   lease, the cursor and the counts), rotating to the next key each round (A→B, B→C, C→D).
 * - for reference, the crypto alone: open under the previous key and seal under the current one, in memory.
 * Figures are records/s (median of the rounds) and the job/baseline ratio.
 */
import { randomBytes } from 'node:crypto';
import { createAuditLog } from '@signal/audit';
import {
  createControlPlane,
  createScryptHasher,
  ENCRYPTED_COLUMNS,
  integrationCredentialsContext,
} from '@signal/control-plane';
import { createCryptoService, createKeyring } from '@signal/crypto';
import { createReencryptionJobs, MANAGEMENT_API_SCHEMA } from '@signal/management-api';
import { createDatabase, type Database, migrate, type Queryable } from '@signal/store';
import { POSTGRES_URL } from '@signal/testkit';

const RECORDS = 20_000;
const ROUNDS = 3;
const silent = { debug() {}, info() {}, warn() {}, error() {} };

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
};
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** 20,000 integrations through the control plane: 1,000 per transaction, 4 transactions at a time. */
async function seed(db: Database, key: Buffer): Promise<void> {
  const crypto = createCryptoService({ keyring: createKeyring({ current: key }) });
  const cp = createControlPlane({
    db,
    crypto,
    hasher: createScryptHasher({ cost: { N: 2 ** 8, r: 8, p: 1 } }),
  });
  const { org } = await cp.orgs.createWithOwner({
    name: 'Bench',
    slug: 'bench',
    owner: { email: 'owner@bench.example', password: 'a long enough password' },
  });
  const { pipeline } = await cp.pipelines.create(org.id, { name: 'Bench', type: 'server' });
  const batch = (first: number) =>
    db.transaction(async (tx) => {
      const inTx = createControlPlane({
        db: { query: tx.query.bind(tx), transaction: <T>(fn: (q: Queryable) => Promise<T>) => fn(tx) },
        crypto,
      });
      for (let i = first; i < first + 1000; i++) {
        await inTx.integrations.create(org.id, pipeline.id, {
          vendor: 'meta',
          name: `Bench ${i}`,
          enabled: false,
          credentials: { access_token: `EAAB${randomBytes(24).toString('base64url')}`, pixel: String(i) },
        });
      }
    });
  for (let i = 0; i < RECORDS; i += 4000) await Promise.all([0, 1, 2, 3].map((k) => batch(i + k * 1000)));
}

async function baseline(db: Database): Promise<number> {
  const started = performance.now();
  const { rowCount } = await db.query(
    'UPDATE integrations SET credentials = credentials, credentials_key_id = credentials_key_id WHERE credentials IS NOT NULL',
  );
  const seconds = (performance.now() - started) / 1000;
  if (rowCount < RECORDS) throw new Error(`baseline touched ${rowCount} rows`);
  return rowCount / seconds;
}

/** The crypto alone: open under the previous key and seal under the current one, in memory, same rows. */
async function cryptoOnly(db: Database, current: Buffer, previous: Buffer): Promise<number> {
  const crypto = createCryptoService({ keyring: createKeyring({ current, previous }) });
  const { rows } = await db.query<{ id: string; credentials: string }>(
    'SELECT id, credentials FROM integrations WHERE credentials IS NOT NULL',
  );
  const started = performance.now();
  for (const row of rows) {
    const context = integrationCredentialsContext(row.id);
    const plaintext = crypto.openText(row.credentials, context);
    crypto.sealText(plaintext, context);
    plaintext.fill(0);
  }
  return rows.length / ((performance.now() - started) / 1000);
}

async function job(db: Database, current: Buffer, previous: Buffer): Promise<number> {
  const crypto = createCryptoService({ keyring: createKeyring({ current, previous }) });
  const jobs = createReencryptionJobs({
    db,
    crypto,
    audit: createAuditLog({ db, logger: silent }),
    logger: silent,
    columns: ENCRYPTED_COLUMNS,
  });
  const started = performance.now();
  const outcome = await jobs.start(null);
  if (outcome.kind !== 'started') throw new Error(`job did not start: ${outcome.kind}`);
  await jobs.idle();
  const seconds = (performance.now() - started) / 1000;
  const status = await jobs.status();
  if (status?.status !== 'completed' || status.failed_records !== 0) {
    throw new Error(`job ended ${JSON.stringify(status)}`);
  }
  return status.processed_records / seconds;
}

const name = `signal_bench_reencrypt_${randomBytes(4).toString('hex')}`;
const admin = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 1 });
await admin.exec(`CREATE DATABASE ${name}`);
const url = new URL(POSTGRES_URL);
url.pathname = `/${name}`;
const db = await createDatabase({ kind: 'postgres', url: url.toString(), maxConnections: 8 });
try {
  await migrate(db, MANAGEMENT_API_SCHEMA);
  const keys = Array.from({ length: ROUNDS + 1 }, () => randomBytes(32));
  const seedStarted = performance.now();
  await seed(db, keys[0] ?? randomBytes(32));
  console.log(
    `seeded ${fmt(RECORDS)} credentials + 1 pipeline secret under key A in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`,
  );
  await db.exec('VACUUM ANALYZE integrations');
  const plain: number[] = [];
  const crypto: number[] = [];
  const reencrypt: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const current = keys[round + 1] ?? randomBytes(32);
    const previous = keys[round] ?? randomBytes(32);
    plain.push(await baseline(db));
    crypto.push(await cryptoOnly(db, current, previous));
    reencrypt.push(await job(db, current, previous));
    console.log(
      `round ${round + 1}: UPDATE col = col ${fmt(plain.at(-1) ?? 0)} rows/s, open + seal alone ${fmt(crypto.at(-1) ?? 0)} records/s, re-encryption job ${fmt(reencrypt.at(-1) ?? 0)} records/s`,
    );
  }
  const p = median(plain);
  const c = median(crypto);
  const r = median(reencrypt);
  console.log('');
  console.log(`| ${'operation (20,000 rows, PostgreSQL)'.padEnd(48)} | ${'records/s'.padStart(10)} |`);
  console.log(`| ${'-'.repeat(48)} | ${'-'.repeat(10)} |`);
  console.log(`| ${'baseline: UPDATE … SET col = col (1 stmt)'.padEnd(48)} | ${fmt(p).padStart(10)} |`);
  console.log(`| ${'open + seal alone, in memory (no database)'.padEnd(48)} | ${fmt(c).padStart(10)} |`);
  console.log(`| ${'re-encryption job (open + seal, batches of 500)'.padEnd(48)} | ${fmt(r).padStart(10)} |`);
  console.log(`\nratio job / baseline UPDATE: ${(r / p).toFixed(3)}  (median of ${ROUNDS} rounds)`);
  console.log(`ratio job / crypto alone:    ${(r / c).toFixed(3)}`);
  console.log(`a deployment with ${fmt(RECORDS)} records re-encrypts in ~${(RECORDS / r).toFixed(1)} s`);
} finally {
  await db.close();
  await admin.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.close();
}
