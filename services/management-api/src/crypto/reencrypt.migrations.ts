import type { Migration } from '@signal/store';

/**
 * Re-encryption jobs. One row per job; at most one `running` (partial unique index), owned by whichever
 * process holds its lease. Progress (cursor, counts) is committed with each batch's writes, so a process that
 * dies mid-job loses nothing: the next lease holder continues after the last committed batch. Failed records
 * are listed by id and reason only (never values).
 */
const jobs = `
CREATE TABLE crypto_reencrypt_jobs (
  id                 text PRIMARY KEY,
  status             text NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
  target_key_id      text NOT NULL,
  total_records      integer NOT NULL CHECK (total_records >= 0),
  processed_records  integer NOT NULL DEFAULT 0 CHECK (processed_records >= 0),
  failed_records     integer NOT NULL DEFAULT 0 CHECK (failed_records >= 0),
  -- Keyset cursor: the registry entry being walked (NULL once every entry is done) and the last id done.
  cursor_column      text,
  cursor_after       text,
  started_at         timestamptz NOT NULL,
  completed_at       timestamptz,
  started_by         text,
  lease_owner        text,
  lease_expires_at   timestamptz,
  error              text
);
CREATE UNIQUE INDEX crypto_reencrypt_jobs_one_running ON crypto_reencrypt_jobs (status) WHERE status = 'running';
CREATE INDEX crypto_reencrypt_jobs_started ON crypto_reencrypt_jobs (started_at DESC, id DESC);

CREATE TABLE crypto_reencrypt_failures (
  job_id       text NOT NULL REFERENCES crypto_reencrypt_jobs (id) ON DELETE CASCADE,
  column_name  text NOT NULL,
  record_id    text NOT NULL,
  reason       text NOT NULL,
  failed_at    timestamptz NOT NULL,
  PRIMARY KEY (job_id, column_name, record_id)
);
`;

export const managementApiMigrations: readonly Migration[] = Object.freeze([
  { id: 'management-api/0001_reencrypt_jobs', sql: jobs },
]);
