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
 *
 * 0003: the parts of a dead letter that carry personal data — the original event (IP, user agent, traits,
 * e-mail addresses before hashing), its partition key (an anonymous or user id), the details and the vendor's
 * last answer (bodies may echo what was sent) — are sealed at rest in one v1 ciphertext, `letter` (text form),
 * with its key id in `letter_key_id`, under `deadLetterContext` (row id and topic bound). What stays readable
 * is routing and triage metadata: error code, topic, integration, message id, attempts, times.
 * A migration holds no key, so existing rows are moved, unchanged, into `letter` as plaintext JSON
 * (`{"escaped", "original", "originalKey", "details", "lastResponse"}` in their 0002 stored forms) with a
 * NULL key id — the registry's "legacy plaintext" — and their plaintext columns are dropped. The worker seals
 * them at start-up (`DlqStore.sealLegacy`), and the re-encryption job seals any it finds (it counts NULL key
 * ids as pending), so none is left after the first start of this release. `id_text` is the id as zero-padded
 * text, the key the re-encryption job walks (it pages over a text id).
 *
 * 0004: likewise for the retry schedule. A retry row held the delivery message to re-publish (the whole event:
 * IP, user agent, traits, e-mail addresses before hashing), its partition key and the last error in
 * plaintext; they are now one v1 ciphertext, `payload`, with its key id in `payload_key_id`, under
 * `retryPayloadContext` (integration and message id bound: the row's natural key, so a later attempt's upsert
 * keeps it and no id has to be drawn before the insert). Integration, message id, attempt and times stay
 * readable for scheduling. Existing rows are moved into `payload` as plaintext JSON
 * (`{"escaped", "key", "message", "lastError"}`, the key in its 0002 stored form) with a NULL key id, and the
 * plaintext columns (`message_key_escaped` with them) are dropped; the worker seals them at start-up
 * (`RetryStore.sealLegacy`) and the re-encryption job seals any it finds. `id_text`
 * (`integration_id || '/' || message_id`, unique as integration ids never hold a `/`) is the text key the
 * re-encryption job walks.
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
  {
    id: 'delivery-worker/0003_sealed_dlq_letter',
    sql: `
ALTER TABLE delivery_dlq
  ADD COLUMN id_text text GENERATED ALWAYS AS (lpad(id::text, 19, '0')) STORED,
  ADD COLUMN letter text,
  ADD COLUMN letter_key_id text;
UPDATE delivery_dlq SET letter = jsonb_build_object(
  'escaped', escaped,
  'original', original,
  'originalKey', original_key,
  'details', details,
  'lastResponse', last_response
)::text;
ALTER TABLE delivery_dlq
  ALTER COLUMN letter SET NOT NULL,
  DROP COLUMN original,
  DROP COLUMN original_key,
  DROP COLUMN details,
  DROP COLUMN last_response;
CREATE UNIQUE INDEX delivery_dlq_id_text ON delivery_dlq (id_text);
CREATE INDEX delivery_dlq_letter_key_id ON delivery_dlq (letter_key_id, id_text);
`,
  },
  {
    id: 'delivery-worker/0004_sealed_retry_payload',
    sql: `
ALTER TABLE delivery_retries
  ADD COLUMN id_text text GENERATED ALWAYS AS (integration_id || '/' || message_id) STORED,
  ADD COLUMN payload text,
  ADD COLUMN payload_key_id text;
UPDATE delivery_retries SET payload = jsonb_build_object(
  'escaped', message_key_escaped,
  'key', message_key,
  'message', message,
  'lastError', last_error
)::text;
ALTER TABLE delivery_retries
  ALTER COLUMN payload SET NOT NULL,
  DROP COLUMN message_key,
  DROP COLUMN message_key_escaped,
  DROP COLUMN message,
  DROP COLUMN last_error;
CREATE UNIQUE INDEX delivery_retries_id_text ON delivery_retries (id_text);
CREATE INDEX delivery_retries_payload_key_id ON delivery_retries (payload_key_id, id_text);
`,
  },
]);
