import type { Migration } from '@signal/store';

/**
 * Tables of the PostgreSQL bus. Apply with the store's migration runner together with the other packages'
 * migrations; ids never change once released.
 *
 * - `bus_topics` / `bus_partitions`: the partition count is fixed at creation (changing it would move keys
 *   between partitions and break per-key order); `next_offset` is the partition's high-water mark and its row
 *   lock serialises writers of that partition.
 * - `bus_segments`: one row per group-commit segment, records as JSON-lines text (see segment.ts).
 * - `bus_members`: live members of each consumer group, renewed by heartbeat.
 * - `bus/0002`: segments are sealed (v1 text form, ADR 0007-bus-payload-sealing); `key_id` names the key that
 *   sealed each one (NULL: plaintext written before sealing existed). `bus_partitions.sealed_from` is the
 *   partition's head when the migration ran: only segments below it may be plaintext, so no plaintext
 *   segment can be slipped in later.
 * - `bus_group_partitions`: per (group, topic, partition) the committed offset (next offset to consume) and
 *   the lease: `owner`, `lease_expires_at` and `epoch`, a fencing token bumped on every acquisition. A commit
 *   succeeds only if owner and epoch still match, in the same statement that writes the offset.
 */
export const busMigrations: readonly Migration[] = Object.freeze([
  {
    id: 'bus/0001_topics_segments_leases',
    sql: `
CREATE TABLE bus_topics (
  name text PRIMARY KEY,
  partitions integer NOT NULL CHECK (partitions BETWEEN 1 AND 4096),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bus_partitions (
  topic text NOT NULL REFERENCES bus_topics (name) ON DELETE CASCADE,
  partition integer NOT NULL CHECK (partition >= 0),
  next_offset bigint NOT NULL DEFAULT 0 CHECK (next_offset >= 0),
  PRIMARY KEY (topic, partition)
);

CREATE TABLE bus_segments (
  topic text NOT NULL,
  partition integer NOT NULL,
  base_offset bigint NOT NULL CHECK (base_offset >= 0),
  record_count integer NOT NULL CHECK (record_count > 0),
  records text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, partition, base_offset),
  FOREIGN KEY (topic, partition) REFERENCES bus_partitions (topic, partition) ON DELETE CASCADE
);

CREATE INDEX bus_segments_created_at ON bus_segments (created_at);

CREATE TABLE bus_members (
  group_id text NOT NULL,
  consumer_id text NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (group_id, consumer_id)
);

CREATE TABLE bus_group_partitions (
  group_id text NOT NULL,
  topic text NOT NULL,
  partition integer NOT NULL,
  committed_offset bigint CHECK (committed_offset >= 0),
  owner text,
  epoch bigint NOT NULL DEFAULT 0,
  lease_expires_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (group_id, topic, partition),
  FOREIGN KEY (topic, partition) REFERENCES bus_partitions (topic, partition) ON DELETE CASCADE
);
`,
  },
  {
    id: 'bus/0002_sealed_segments',
    sql: `
ALTER TABLE bus_segments ADD COLUMN key_id text;
ALTER TABLE bus_partitions ADD COLUMN sealed_from bigint NOT NULL DEFAULT 0;
UPDATE bus_partitions SET sealed_from = next_offset;
CREATE INDEX bus_segments_key_id ON bus_segments (key_id);
`,
  },
]);
