import type { Migration } from '@signal/store';

/**
 * Tables the delivery worker owns. Apply with the store's `migrate` alongside the bus migrations.
 *
 * - `delivery_ledger`: one row per (integration, messageId) the vendor accepted. Checked before every send
 *   and written after every acceptance, so a retry, a restart or a replay never re-sends an accepted event.
 * - `delivery_retries`: the durable retry schedule. One row per (integration, messageId) waiting for its next
 *   attempt (`due_at`), holding the delivery message to re-publish; `claimed_until` is a lease so that one
 *   worker re-publishes a due row while a crashed one's claim simply expires.
 * - `delivery_dlq`: an index of `dlq-events` (every producer's dead letters), for listing, inspection and
 *   replay; unique on the dead letter's bus position so re-indexing is idempotent.
 *
 * 0002: events may hold text PostgreSQL cannot store as it is (U+0000, which neither `text` nor `jsonb`
 * accepts, or an unpaired UTF-16 surrogate, which `jsonb` refuses and `text` would replace; see `pg-text.ts`).
 * `delivery_dlq.escaped` marks a row whose letter holds such text: its text columns then hold JSON string
 * literals and `original` / `last_response` a JSON string of their JSON text, all plain ASCII, decoded by
 * `createDlqStore` (lossless). `delivery_retries.message_key_escaped` does the same for the partition key.
 */
export const deliveryWorkerMigrations: readonly Migration[] = Object.freeze([
  {
    id: 'delivery-worker/0001_ledger_retries_dlq',
    sql: `
CREATE TABLE delivery_ledger (
  integration_id text NOT NULL,
  message_id text NOT NULL,
  attempts integer NOT NULL CHECK (attempts >= 1),
  delivered_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (integration_id, message_id)
);
CREATE INDEX delivery_ledger_delivered_at ON delivery_ledger (delivered_at);

CREATE TABLE delivery_retries (
  integration_id text NOT NULL,
  message_id text NOT NULL,
  attempt integer NOT NULL CHECK (attempt >= 1),
  due_at timestamptz NOT NULL,
  message_key text NOT NULL,
  message text NOT NULL,
  last_error text,
  claimed_until timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (integration_id, message_id)
);
CREATE INDEX delivery_retries_due ON delivery_retries (due_at);

CREATE TABLE delivery_dlq (
  id bigserial PRIMARY KEY,
  dlq_partition integer NOT NULL,
  dlq_offset bigint NOT NULL,
  error text NOT NULL,
  details text NOT NULL,
  topic text NOT NULL,
  integration_id text,
  message_id text,
  original_key text,
  original jsonb NOT NULL,
  last_response jsonb,
  attempts integer,
  failed_at timestamptz NOT NULL,
  indexed_at timestamptz NOT NULL DEFAULT now(),
  replayed_at timestamptz,
  replay_count integer NOT NULL DEFAULT 0,
  UNIQUE (dlq_partition, dlq_offset)
);
CREATE INDEX delivery_dlq_integration ON delivery_dlq (integration_id, failed_at);
CREATE INDEX delivery_dlq_failed_at ON delivery_dlq (failed_at);
CREATE INDEX delivery_dlq_pending ON delivery_dlq (failed_at) WHERE replayed_at IS NULL;
`,
  },
  {
    id: 'delivery-worker/0002_escaped_text',
    sql: `
ALTER TABLE delivery_dlq ADD COLUMN escaped boolean NOT NULL DEFAULT false;
ALTER TABLE delivery_retries ADD COLUMN message_key_escaped boolean NOT NULL DEFAULT false;
`,
  },
]);
