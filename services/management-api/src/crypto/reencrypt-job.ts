import { randomBytes } from 'node:crypto';
import type { AuditLog } from '@signal/audit';
import {
  columnIdentifiers,
  countRecordsPendingReencryption,
  ENCRYPTED_COLUMNS,
  type EncryptedColumn,
  isSealedText,
} from '@signal/control-plane';
import { CryptoError, type CryptoService } from '@signal/crypto';
import { activeSubjectDekSql } from '@signal/kms';
import { type Database, isStoreError, type Queryable } from '@signal/store';
import type { Metrics } from '@signal/telemetry';
import { z } from 'zod';
import type { ApiLogger } from '../logger';

/** Body of `GET /v1/admin/crypto/re-encrypt` (contract: exactly these fields). */
export interface ReencryptionStatus {
  readonly status: 'running' | 'completed' | 'failed';
  readonly total_records: number;
  readonly processed_records: number;
  readonly failed_records: number;
  readonly started_at: string;
  readonly completed_at: string | null;
}

export type StartOutcome =
  | { readonly kind: 'started'; readonly jobId: string; readonly status: ReencryptionStatus }
  /** A running job whose owner stopped renewing its lease (crashed) was taken over by this process. */
  | { readonly kind: 'resumed'; readonly jobId: string; readonly status: ReencryptionStatus }
  /** Another live process (or this one) is running a job: the API answers 409. */
  | { readonly kind: 'already_running'; readonly status: ReencryptionStatus };

export interface ReencryptionActor {
  readonly userId: string;
  readonly email: string;
  /** The actor's org, recorded on `crypto.reencrypt_started` (absent: an operator, e.g. `signal-cli`). */
  readonly orgId?: string;
  readonly ip: string | null;
  readonly userAgent: string | null;
}

export interface ReencryptionFailure {
  readonly column: string;
  readonly recordId: string;
  readonly reason: string;
  readonly failedAt: Date;
}

export interface ReencryptionJobsOptions {
  readonly db: Pick<Database, 'query' | 'transaction'>;
  readonly crypto: Pick<CryptoService, 'keyring' | 'openText' | 'sealText' | 'keyIdOf'>;
  readonly audit: Pick<AuditLog, 'record'>;
  readonly logger: ApiLogger;
  /** `signal_reencrypt_records_total{result}` and `signal_reencrypt_records_remaining` are registered here. */
  readonly metrics?: Pick<Metrics, 'counter' | 'gauge'>;
  readonly clock?: () => Date;
  /** Defaults to every registered encrypted column. */
  readonly columns?: readonly EncryptedColumn[];
  /**
   * Records per batch (one transaction each, two bulk statements). Default 500: ~2.3× the throughput of 100
   * on PostgreSQL (`pnpm bench reencrypt`); a crash redoes at most one batch, and the batch's crypto (~15 ms of
   * event-loop time) stays short enough for the all-in-one's other services.
   */
  readonly batchSize?: number;
  /** A job whose lease is not renewed for this long is taken over by another process. Default 30 s. */
  readonly leaseMs?: number;
  /** Attempts per batch transaction on retryable database errors before going row by row. Default 3. */
  readonly retryAttempts?: number;
  /** First retry delay; each further one is 4× longer. Default 100 ms. */
  readonly retryBaseDelayMs?: number;
  /** Called after each committed batch (e.g. `signal-cli` progress output). */
  readonly onProgress?: (status: ReencryptionStatus) => void;
  /**
   * Envelope mode: re-wraps every DEK row under the key provider's current KEK (KEK rotation: DEK rows
   * change, data does not). Runs at each start, before records are counted, so a KEK-only rotation is one
   * POST that ends `completed` with 0 records.
   */
  readonly rewrapKeys?: () => Promise<{
    readonly total: number;
    readonly rewrapped: number;
    readonly alreadyCurrent: number;
    readonly failed: number;
  }>;
}

export interface ReencryptionJobs {
  /** Starts a job (or takes over an orphaned one) and runs it in the background of this process. */
  start(actor?: ReencryptionActor | null): Promise<StartOutcome>;
  /** The latest job's status; null when none ever ran. */
  status(): Promise<ReencryptionStatus | null>;
  /** Failed records of the latest job (ids and reasons only). */
  failures(limit?: number): Promise<ReencryptionFailure[]>;
  /** Takes over a running job whose lease expired (its process died). True when one was taken over. */
  resumeOrphaned(): Promise<boolean>;
  /** Resolves when this process has no job loop running. */
  idle(): Promise<void>;
  /**
   * Stops this process's loop after the batch in flight. By default the lease is released so another process
   * can continue at once; `releaseLease: false` leaves it to expire, exactly as a crash would.
   */
  stop(options?: { readonly releaseLease?: boolean }): Promise<void>;
}

const jobRowSchema = z.object({
  id: z.string(),
  status: z.enum(['running', 'completed', 'failed']),
  target_key_id: z.string(),
  total_records: z.number().int(),
  processed_records: z.number().int(),
  failed_records: z.number().int(),
  cursor_column: z.string().nullable(),
  cursor_after: z.string().nullable(),
  started_at: z.date(),
  completed_at: z.date().nullable(),
  lease_owner: z.string().nullable(),
});
type JobRow = z.infer<typeof jobRowSchema>;

const JOB_COLUMNS =
  'id, status, target_key_id, total_records, processed_records, failed_records, cursor_column, cursor_after, started_at, completed_at, lease_owner';

/** ISO 8601 in UTC without milliseconds, as the runbook shows (`2026-04-06T14:30:00Z`). */
function isoSeconds(date: Date | null): string | null {
  return date === null ? null : date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * What a job re-encrypts to, as stored in `target_key_id`: the key id that seals (direct mode), or the sorted
 * active DEK ids of every data class (envelope mode). A job started for another set cannot be finished here.
 */
function targetLabel(targets: readonly string[]): string {
  return [...targets].sort().join(',');
}

export function statusJson(job: JobRow): ReencryptionStatus {
  return {
    status: job.status,
    total_records: job.total_records,
    processed_records: job.processed_records,
    failed_records: job.failed_records,
    started_at: isoSeconds(job.started_at) ?? '',
    completed_at: isoSeconds(job.completed_at),
  };
}

async function latestJobRow(db: Pick<Queryable, 'query'>): Promise<JobRow | null> {
  const { rows } = await db.query(
    `SELECT ${JOB_COLUMNS} FROM crypto_reencrypt_jobs ORDER BY started_at DESC, id DESC LIMIT 1`,
  );
  return rows[0] === undefined ? null : jobRowSchema.parse(rows[0]);
}

/** The latest job's status, or null when none ever ran. Needs no key (`signal-cli crypto-reencrypt status`). */
export async function readReencryptionStatus(
  db: Pick<Queryable, 'query'>,
): Promise<ReencryptionStatus | null> {
  const job = await latestJobRow(db);
  return job === null ? null : statusJson(job);
}

/** Failed records of the latest job (ids and reasons only, never values). */
export async function readReencryptionFailures(
  db: Pick<Queryable, 'query'>,
  limit = 100,
): Promise<ReencryptionFailure[]> {
  const { rows } = await db.query<{
    column_name: string;
    record_id: string;
    reason: string;
    failed_at: Date;
  }>(
    `SELECT column_name, record_id, reason, failed_at FROM crypto_reencrypt_failures
      WHERE job_id = (SELECT id FROM crypto_reencrypt_jobs ORDER BY started_at DESC, id DESC LIMIT 1)
      ORDER BY column_name, record_id LIMIT $1`,
    [limit],
  );
  return rows.map((row) => ({
    column: row.column_name,
    recordId: row.record_id,
    reason: row.reason,
    failedAt: row.failed_at,
  }));
}

/** What to do with one record of a batch; computed outside the transaction (the crypto work). */
type RowPlan =
  | { readonly kind: 'rewrite'; readonly id: string; readonly old: string; readonly next: string }
  /** Already sealed under the target key; only the key-id column was stale. */
  | { readonly kind: 'relabel'; readonly id: string; readonly old: string }
  | { readonly kind: 'fail'; readonly id: string; readonly reason: string };

class LeaseLost extends Error {
  override readonly name = 'LeaseLost';
}

/** A job that cannot go on (its target key is no longer this process's key, its cursor names no column). */
class JobAborted extends Error {
  override readonly name = 'JobAborted';
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

function storeReason(error: unknown): string | undefined {
  if (!isStoreError(error) || !error.retryable) return undefined;
  switch (error.code) {
    case 'timeout':
      return 'db_timeout';
    case 'unavailable':
      return 'db_unavailable';
    default:
      return 'db_conflict';
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref?.());

/**
 * The re-encryption job (runbook "Re-encrypt existing data"): walks every registered encrypted column for
 * records whose key id is not the current key's (or that are legacy plaintext), in id order, in batches.
 * Each record is opened with whichever key it names and sealed again with the current key under the same
 * context, then written with an optimistic check (`… WHERE id = $1 AND <col> = $old`), so a record changed
 * meanwhile is never overwritten. Each batch's writes, its failures and the job's cursor and counts commit in
 * one transaction guarded by the job's lease: after a crash the next lease holder resumes exactly after the
 * last committed batch, and nothing is sealed twice (selected rows are by definition not under the target key,
 * and the optimistic check refuses a row that already changed). Records that fail (corrupted ciphertext,
 * unknown key, database timeout) keep their old value and are listed with the reason, never marked done.
 */
export function createReencryptionJobs(options: ReencryptionJobsOptions): ReencryptionJobs {
  const { db, crypto, audit, logger } = options;
  const clock = options.clock ?? (() => new Date());
  const columns = options.columns ?? ENCRYPTED_COLUMNS;
  const batchSize = options.batchSize ?? 500;
  const leaseMs = options.leaseMs ?? 30_000;
  const retryAttempts = options.retryAttempts ?? 3;
  const retryBaseDelayMs = options.retryBaseDelayMs ?? 100;
  const instanceId = `inst_${randomBytes(8).toString('hex')}`;
  /**
   * Envelope mode (its keyring can seal per subject, and its DEKs live in this database's `crypto_deks`):
   * records under a subject's active DEK (crypto-shredding) are current. Too many to list as targets, they
   * are excluded in SQL, so the job never moves them to the class DEK and does not count them as pending.
   */
  const envelope = crypto.keyring.subjectEntry !== undefined;
  const subjectsCurrent = (keyIdColumn: string) =>
    envelope ? ` OR ${activeSubjectDekSql(keyIdColumn)}` : '';
  const records = options.metrics?.counter(
    'signal_reencrypt_records_total',
    'Records handled by the re-encryption job, by result (processed or failed)',
    ['result'],
  );
  const remaining = options.metrics?.gauge(
    'signal_reencrypt_records_remaining',
    'Records the running re-encryption job has still to visit (estimate)',
  );
  for (const entry of columns) columnIdentifiers(entry);
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be ≥ 1');

  let loop: Promise<void> | undefined;
  let stopping = false;
  let releaseOnStop = true;

  async function readJob(q: Pick<Queryable, 'query'>, jobId: string): Promise<JobRow | null> {
    const { rows } = await q.query(`SELECT ${JOB_COLUMNS} FROM crypto_reencrypt_jobs WHERE id = $1`, [jobId]);
    return rows[0] === undefined ? null : jobRowSchema.parse(rows[0]);
  }

  const latestJob = () => latestJobRow(db);

  /** Renews the lease inside `tx` (and row-locks the job); throws `LeaseLost` if another process holds it. */
  async function holdLease(tx: Queryable, jobId: string): Promise<void> {
    const { rowCount } = await tx.query(
      `UPDATE crypto_reencrypt_jobs SET lease_expires_at = now() + $3 * interval '1 millisecond'
        WHERE id = $1 AND lease_owner = $2 AND status = 'running'`,
      [jobId, instanceId, leaseMs],
    );
    if (rowCount === 0) throw new LeaseLost('the job lease is held by another process');
  }

  function plan(
    entry: EncryptedColumn,
    row: { id: string; value: string; facts: Record<string, unknown> },
  ): RowPlan {
    const context = entry.context({ id: row.id, columns: row.facts });
    const targets = crypto.keyring.sealingKeyIds();
    try {
      if (!isSealedText(row.value)) {
        // Legacy plaintext from before encryption: seal it.
        return { kind: 'rewrite', id: row.id, old: row.value, next: crypto.sealText(row.value, context) };
      }
      if (targets.includes(crypto.keyIdOf(row.value))) return { kind: 'relabel', id: row.id, old: row.value };
      const plaintext = crypto.openText(row.value, context);
      try {
        return { kind: 'rewrite', id: row.id, old: row.value, next: crypto.sealText(plaintext, context) };
      } finally {
        plaintext.fill(0);
      }
    } catch (error) {
      if (error instanceof CryptoError) return { kind: 'fail', id: row.id, reason: error.code };
      throw error;
    }
  }

  async function selectBatch(entry: EncryptedColumn, after: string | null, targets: readonly string[]) {
    const c = columnIdentifiers(entry);
    const extra = c.context.length === 0 ? '' : `, ${c.context.join(', ')}`;
    const { rows } = await db.query<Record<string, unknown>>(
      `SELECT ${c.id} AS id, ${c.column} AS value${extra} FROM ${c.table}
        WHERE ${c.column} IS NOT NULL AND (${c.keyId} IS NULL OR NOT (${c.keyId} = ANY($1::text[])${subjectsCurrent(c.keyId)}))
          AND ($2::text IS NULL OR ${c.id} > $2)
        ORDER BY ${c.id} LIMIT $3`,
      [targets, after, batchSize],
    );
    return rows.map((row) => {
      const facts: Record<string, unknown> = {};
      for (const name of c.context) facts[name] = row[name];
      return { id: String(row.id), value: String(row.value), facts };
    });
  }

  /**
   * Writes a batch's planned records with one statement per kind (new ciphertexts; key-id labels), each row
   * guarded by the optimistic check `<col> = old`. Returns the ids written.
   */
  async function writeBatch(tx: Queryable, entry: EncryptedColumn, steps: readonly RowPlan[]) {
    const c = columnIdentifiers(entry);
    const written = new Set<string>();
    const rewrites = steps.filter((s) => s.kind === 'rewrite');
    const relabels = steps.filter((s) => s.kind === 'relabel');
    if (rewrites.length > 0) {
      const { rows } = await tx.query<{ id: string }>(
        `UPDATE ${c.table} AS t SET ${c.column} = v.next, ${c.keyId} = v.key_id
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS v(id, old, next, key_id)
          WHERE t.${c.id} = v.id AND t.${c.column} = v.old
          RETURNING t.${c.id} AS id`,
        [
          rewrites.map((s) => s.id),
          rewrites.map((s) => s.old),
          rewrites.map((s) => s.next),
          rewrites.map((s) => crypto.keyIdOf(s.next)),
        ],
      );
      for (const row of rows) written.add(String(row.id));
    }
    if (relabels.length > 0) {
      const { rows } = await tx.query<{ id: string }>(
        `UPDATE ${c.table} AS t SET ${c.keyId} = v.key_id
           FROM unnest($1::text[], $2::text[], $3::text[]) AS v(id, old, key_id)
          WHERE t.${c.id} = v.id AND t.${c.column} = v.old
          RETURNING t.${c.id} AS id`,
        [relabels.map((s) => s.id), relabels.map((s) => s.old), relabels.map((s) => crypto.keyIdOf(s.old))],
      );
      for (const row of rows) written.add(String(row.id));
    }
    return written;
  }

  /**
   * A record the optimistic check refused: changed since it was read. Gone, or rewritten by a writer (which
   * seals with the current key), is done; anything else is a failure.
   */
  async function settleChanged(
    tx: Queryable,
    entry: EncryptedColumn,
    id: string,
    targets: readonly string[],
  ) {
    const c = columnIdentifiers(entry);
    const { rows } = await tx.query<{ key_id: string | null }>(
      `SELECT ${c.keyId} AS key_id FROM ${c.table} WHERE ${c.id} = $1`,
      [id],
    );
    const keyId = rows[0]?.key_id;
    if (keyId === undefined || (keyId !== null && targets.includes(keyId))) return undefined;
    // A writer re-sealed it under its subject's DEK (crypto-shredding): current too.
    if (keyId !== null && envelope) {
      const { rows: subject } = await tx.query(`SELECT 1 WHERE ${activeSubjectDekSql('$1')}`, [keyId]);
      if (subject.length > 0) return undefined;
    }
    return 'concurrent_update';
  }

  async function recordFailure(
    tx: Queryable,
    jobId: string,
    entry: EncryptedColumn,
    id: string,
    reason: string,
  ) {
    const { rowCount } = await tx.query(
      `INSERT INTO crypto_reencrypt_failures (job_id, column_name, record_id, reason, failed_at)
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
      [jobId, entry.name, id, reason, clock()],
    );
    logger.warn(
      { job_id: jobId, column: entry.name, record_id: id, reason },
      're-encryption of a record failed; it stays under its old key',
    );
    return rowCount;
  }

  /** One transaction: lease, writes, failures, cursor and counts. */
  async function commitBatch(
    jobId: string,
    entry: EncryptedColumn,
    steps: readonly RowPlan[],
    targets: readonly string[],
  ) {
    return db.transaction(async (tx) => {
      await holdLease(tx, jobId);
      const written = await writeBatch(tx, entry, steps);
      let processed = 0;
      let failed = 0;
      for (const step of steps) {
        const reason =
          step.kind === 'fail'
            ? step.reason
            : written.has(step.id)
              ? undefined
              : await settleChanged(tx, entry, step.id, targets);
        if (reason === undefined) processed++;
        else failed += await recordFailure(tx, jobId, entry, step.id, reason);
      }
      const last = steps.at(-1);
      await tx.query(
        `UPDATE crypto_reencrypt_jobs SET processed_records = processed_records + $2,
           failed_records = failed_records + $3, cursor_after = $4 WHERE id = $1`,
        [jobId, processed, failed, last?.id ?? null],
      );
      return { processed, failed };
    });
  }

  async function withRetries<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        if (storeReason(error) === undefined || attempt + 1 >= retryAttempts) throw error;
        await sleep(retryBaseDelayMs * 4 ** attempt);
      }
    }
  }

  /** The batch failed repeatedly on database errors: one record per transaction, failures recorded. */
  async function commitRowByRow(
    jobId: string,
    entry: EncryptedColumn,
    steps: readonly RowPlan[],
    targets: readonly string[],
  ) {
    let processed = 0;
    let failed = 0;
    for (const step of steps) {
      try {
        const result = await withRetries(() => commitBatch(jobId, entry, [step], targets));
        processed += result.processed;
        failed += result.failed;
      } catch (error) {
        const reason = storeReason(error);
        if (reason === undefined) throw error;
        const result = await withRetries(() =>
          commitBatch(jobId, entry, [{ kind: 'fail', id: step.id, reason }], targets),
        );
        failed += result.failed;
      }
    }
    return { processed, failed };
  }

  /** Processes the next batch. `more`: call again; `done`: every column walked. */
  async function step(jobId: string): Promise<'more' | 'done'> {
    const job = await readJob(db, jobId);
    if (job === null || job.status !== 'running' || job.lease_owner !== instanceId)
      throw new LeaseLost('lost');
    const targets = crypto.keyring.sealingKeyIds();
    if (job.target_key_id !== targetLabel(targets)) {
      throw new JobAborted('target_key_changed', 'the job was started for another current key');
    }
    if (job.cursor_column === null) return 'done';
    const index = columns.findIndex((entry) => entry.name === job.cursor_column);
    const entry = columns[index];
    if (entry === undefined)
      throw new JobAborted('unknown_column', 'the job cursor names no registered column');

    const rows = await selectBatch(entry, job.cursor_after, targets);
    if (rows.length === 0) {
      const next = columns[index + 1]?.name ?? null;
      await db.transaction(async (tx) => {
        await holdLease(tx, jobId);
        await tx.query(
          'UPDATE crypto_reencrypt_jobs SET cursor_column = $2, cursor_after = NULL WHERE id = $1',
          [jobId, next],
        );
      });
      return next === null ? 'done' : 'more';
    }
    const steps = rows.map((row) => plan(entry, row));
    let result: { processed: number; failed: number };
    try {
      result = await withRetries(() => commitBatch(jobId, entry, steps, targets));
    } catch (error) {
      if (storeReason(error) === undefined) throw error;
      logger.warn(
        { job_id: jobId, column: entry.name, err: error },
        'batch failed on the database; retrying row by row',
      );
      result = await commitRowByRow(jobId, entry, steps, targets);
    }
    records?.inc({ result: 'processed' }, result.processed);
    records?.inc({ result: 'failed' }, result.failed);
    return 'more';
  }

  async function finish(jobId: string, status: 'completed' | 'failed', error: string | null): Promise<void> {
    const { rows } = await db.query(
      `UPDATE crypto_reencrypt_jobs SET status = $2, completed_at = $3, error = $4,
         total_records = CASE WHEN $2 = 'completed' THEN processed_records + failed_records ELSE total_records END,
         lease_owner = NULL, lease_expires_at = NULL
       WHERE id = $1 AND lease_owner = $5 AND status = 'running' RETURNING ${JOB_COLUMNS}`,
      [jobId, status, clock(), error, instanceId],
    );
    if (rows[0] === undefined) return;
    const job = jobRowSchema.parse(rows[0]);
    remaining?.set(0);
    await recordCompleted(job, error);
    const summary = { job_id: jobId, status, processed: job.processed_records, failed: job.failed_records };
    if (job.failed_records > 0 || status === 'failed') {
      logger.warn(
        { ...summary, error },
        're-encryption job finished with failures: those records remain under the old key (see the failures above)',
      );
    } else {
      logger.info(summary, 're-encryption job completed');
    }
  }

  async function recordCompleted(job: JobRow, error: string | null): Promise<void> {
    try {
      await audit.record({
        action: 'crypto.reencrypt_completed',
        resource_type: 'crypto',
        resource_id: job.id,
        changes: {
          status: { old: 'running', new: job.status },
          processed_records: { old: null, new: job.processed_records },
          failed_records: { old: null, new: job.failed_records },
          ...(error === null ? {} : { error: { old: null, new: error } }),
        },
      });
    } catch (auditError) {
      logger.error(
        { err: auditError, job_id: job.id, audit_lost: true },
        'audit entry could not be recorded',
      );
    }
  }

  async function releaseLease(jobId: string): Promise<void> {
    await db.query(
      `UPDATE crypto_reencrypt_jobs SET lease_owner = NULL, lease_expires_at = NULL
        WHERE id = $1 AND lease_owner = $2 AND status = 'running'`,
      [jobId, instanceId],
    );
  }

  async function run(jobId: string): Promise<void> {
    try {
      for (;;) {
        if (stopping) {
          if (releaseOnStop) await releaseLease(jobId);
          logger.info(
            { job_id: jobId, lease_released: releaseOnStop },
            're-encryption job paused in this process',
          );
          return;
        }
        const outcome = await step(jobId);
        const job = await readJob(db, jobId);
        if (job !== null) {
          remaining?.set(Math.max(0, job.total_records - job.processed_records - job.failed_records));
          options.onProgress?.(statusJson(job));
        }
        if (outcome === 'done') {
          await finish(jobId, 'completed', null);
          return;
        }
      }
    } catch (error) {
      if (error instanceof LeaseLost) {
        logger.warn(
          { job_id: jobId },
          're-encryption job lease taken over by another process; stopping here',
        );
        return;
      }
      const code =
        error instanceof JobAborted
          ? error.code
          : isStoreError(error)
            ? `db_${error.code}`
            : 'unexpected_error';
      logger.error({ job_id: jobId, err: error, code }, 're-encryption job failed');
      // If the database is down this fails too; the lease then expires and the job is resumed later.
      await finish(jobId, 'failed', code).catch((finishError: unknown) => {
        logger.error({ job_id: jobId, err: finishError }, 're-encryption job could not be marked failed');
      });
    }
  }

  function launch(jobId: string): void {
    if (loop !== undefined) return;
    stopping = false;
    releaseOnStop = true;
    loop = run(jobId).finally(() => {
      loop = undefined;
    });
  }

  async function start(actor: ReencryptionActor | null = null): Promise<StartOutcome> {
    if (options.rewrapKeys !== undefined) {
      const rewrap = await options.rewrapKeys();
      const level = rewrap.failed > 0 ? 'warn' : 'info';
      logger[level]({ deks: rewrap }, 'DEK rows re-wrapped under the current KEK');
    }
    const targets = crypto.keyring.sealingKeyIds();
    const target = targetLabel(targets);
    const now = clock();
    const jobId = `rej_${now.getTime().toString(16).padStart(12, '0')}${randomBytes(8).toString('hex')}`;
    let outcome: { kind: 'started' | 'resumed' | 'already_running' | 'empty'; job: JobRow };
    /** An orphaned job for another target key: nobody holding today's key can finish it, so it ends failed. */
    const abandoned: JobRow[] = [];
    try {
      outcome = await db.transaction(async (tx) => {
        const running = await tx.query(
          `SELECT ${JOB_COLUMNS}, lease_expires_at < now() OR lease_expires_at IS NULL AS orphaned
             FROM crypto_reencrypt_jobs WHERE status = 'running' FOR UPDATE`,
        );
        const current = running.rows[0];
        if (current !== undefined) {
          const job = jobRowSchema.parse(current);
          if (current.orphaned !== true) return { kind: 'already_running', job };
          if (job.target_key_id === target) {
            await tx.query(
              `UPDATE crypto_reencrypt_jobs SET lease_owner = $2, lease_expires_at = now() + $3 * interval '1 millisecond'
                WHERE id = $1`,
              [job.id, instanceId, leaseMs],
            );
            return { kind: 'resumed', job };
          }
          const { rows: ended } = await tx.query(
            `UPDATE crypto_reencrypt_jobs SET status = 'failed', completed_at = $2, error = 'target_key_changed',
               lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 RETURNING ${JOB_COLUMNS}`,
            [job.id, now],
          );
          abandoned.push(...ended.map((row) => jobRowSchema.parse(row)));
        }
        const total = await countRecordsPendingReencryption(
          tx,
          targets,
          columns,
          envelope ? { alsoCurrent: activeSubjectDekSql } : {},
        );
        const empty = total === 0;
        const { rows } = await tx.query(
          `INSERT INTO crypto_reencrypt_jobs (id, status, target_key_id, total_records, cursor_column, started_at,
                                              completed_at, started_by, lease_owner, lease_expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $9::text IS NULL THEN NULL
                   ELSE now() + $10 * interval '1 millisecond' END)
           RETURNING ${JOB_COLUMNS}`,
          [
            jobId,
            empty ? 'completed' : 'running',
            target,
            total,
            empty ? null : (columns[0]?.name ?? null),
            now,
            empty ? now : null,
            actor?.userId ?? null,
            empty ? null : instanceId,
            leaseMs,
          ],
        );
        return { kind: empty ? 'empty' : 'started', job: jobRowSchema.parse(rows[0]) };
      });
    } catch (error) {
      // Another process inserted its running job between our check and our insert.
      if (isStoreError(error) && error.code === 'conflict') {
        const latest = await latestJob();
        if (latest !== null) return { kind: 'already_running', status: statusJson(latest) };
      }
      throw error;
    }

    for (const job of abandoned) {
      logger.warn(
        { job_id: job.id, error: 'target_key_changed' },
        'an orphaned re-encryption job was started for another key; it ended failed and a new job replaces it',
      );
      await recordCompleted(job, 'target_key_changed');
    }
    if (outcome.kind === 'already_running')
      return { kind: 'already_running', status: statusJson(outcome.job) };
    if (outcome.kind === 'resumed') {
      logger.info({ job_id: outcome.job.id }, 'orphaned re-encryption job taken over');
      launch(outcome.job.id);
      return { kind: 'resumed', jobId: outcome.job.id, status: statusJson(outcome.job) };
    }
    try {
      await audit.record({
        action: 'crypto.reencrypt_started',
        org_id: actor?.orgId ?? null,
        user_id: actor?.userId ?? null,
        user_email: actor?.email ?? null,
        resource_type: 'crypto',
        resource_id: outcome.job.id,
        changes: { total_records: { old: null, new: outcome.job.total_records } },
        ip_address: actor?.ip ?? null,
        user_agent: actor?.userAgent ?? null,
      });
    } catch (auditError) {
      logger.error(
        { err: auditError, job_id: outcome.job.id, audit_lost: true },
        'audit entry could not be recorded',
      );
    }
    logger.info({ job_id: outcome.job.id, total: outcome.job.total_records }, 're-encryption job started');
    if (outcome.kind === 'empty') {
      await recordCompleted(outcome.job, null);
    } else {
      remaining?.set(outcome.job.total_records);
      launch(outcome.job.id);
    }
    return { kind: 'started', jobId: outcome.job.id, status: statusJson(outcome.job) };
  }

  return {
    start,

    status: () => readReencryptionStatus(db),

    failures: (limit = 100) => readReencryptionFailures(db, limit),

    async resumeOrphaned() {
      if (loop !== undefined) return false;
      const { rows } = await db.query<{ id: string }>(
        `UPDATE crypto_reencrypt_jobs SET lease_owner = $1, lease_expires_at = now() + $2 * interval '1 millisecond'
          WHERE status = 'running' AND target_key_id = $3
            AND (lease_expires_at IS NULL OR lease_expires_at < now())
          RETURNING id`,
        [instanceId, leaseMs, targetLabel(crypto.keyring.sealingKeyIds())],
      );
      const id = rows[0]?.id;
      if (id === undefined) return false;
      logger.info({ job_id: id }, 'orphaned re-encryption job taken over');
      launch(id);
      return true;
    },

    async idle() {
      while (loop !== undefined) await loop;
    },

    async stop(stopOptions = {}) {
      if (loop === undefined) return;
      stopping = true;
      releaseOnStop = stopOptions.releaseLease ?? true;
      await loop;
    },
  };
}
