import type { Migration } from '@signal/store';

/**
 * Tables of the PostgreSQL bus. Apply with the store's migration runner together with the other packages'
 * migrations; ids never change once released.
 *
 * - `bus_topics` / `bus_partitions`: the partition count is fixed at creation (changing it would move keys
 *   between partitions and break per-key order); `next_offset` is the partition's high-water mark and its row
 *   lock serialises writers of that partition.
 * - `bus_segments`: one row per group-commit segment (see segment.ts); until bus/0004 the records as
 *   JSON-lines text in `records`.
 * - `bus_members`: live members of each consumer group, renewed by heartbeat.
 * - `bus/0002`: segments are sealed (v1 text form, ADR 0007-bus-payload-sealing); `key_id` names the key that
 *   sealed each one (NULL: plaintext written before sealing existed). `bus_partitions.sealed_from` is the
 *   partition's head when the migration ran: only segments below it may be plaintext, so no plaintext
 *   segment can be slipped in later.
 * - `bus_group_partitions`: per (group, topic, partition) the committed offset (next offset to consume) and
 *   the lease: `owner`, `lease_expires_at` and `epoch`, a fencing token bumped on every acquisition. A commit
 *   succeeds only if owner and epoch still match, in the same statement that writes the offset.
 * - `bus/0003`: `bus_append_segments`, the PGlite writer's one-statement group commit as a PL/pgSQL function:
 *   its statements are planned once per session instead of once per flush (ADR 0009-bus-append-function).
 * - `bus/0004`: segments are written in the binary v2 form, sealed with the binary v1 ciphertext, into
 *   `payload bytea` (ADR 0010-binary-bus-segments). `records` (the text form) stays readable for segments
 *   written before, so a row holds exactly one of the two; a `payload` row always names its sealing key.
 *   `payload` is stored EXTERNAL: ciphertext does not compress, so TOAST skips the pglz attempt.
 *   `bus_append_segments` is replaced by the same function taking the payloads as `bytea[]`.
 * - `bus/0005`: segments up to a page (`toast_tuple_target` 8160, the maximum) stay inline instead of being
 *   cut into ~2 KB TOAST chunks above 2 KB. A group commit of single events writes one ~3 KB segment per
 *   partition; on PGlite that halved the CPU of inserting such a row (measured: ~156 → ~77 µs for 2.8 KB,
 *   ~182 → ~128 µs for 6 KB; no change at 24 KB, which is toasted either way).
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
  {
    id: 'bus/0003_append_segments_function',
    sql: `
-- Advances each partition head only where it still holds the expected offset and inserts the segments only if
-- every head matched; otherwise raises, which rolls back the whole calling statement (nothing written).
CREATE FUNCTION bus_append_segments(
  head_topics text[], head_partitions integer[], head_expected bigint[], head_next bigint[],
  seg_topics text[], seg_partitions integer[], seg_bases bigint[], seg_counts integer[], seg_records text[],
  seg_key_id text
) RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
  advanced integer;
BEGIN
  UPDATE bus_partitions AS p SET next_offset = h.next_offset
    FROM unnest(head_topics, head_partitions, head_expected, head_next)
      AS h(topic, partition, expected, next_offset)
    WHERE p.topic = h.topic AND p.partition = h.partition AND p.next_offset = h.expected;
  GET DIAGNOSTICS advanced = ROW_COUNT;
  IF advanced <> cardinality(head_topics) THEN
    RAISE EXCEPTION 'stale bus partition heads (% of % current)', advanced, cardinality(head_topics)
      USING ERRCODE = '40001';
  END IF;
  INSERT INTO bus_segments (topic, partition, base_offset, record_count, records, key_id)
    SELECT s.topic, s.partition, s.base_offset, s.record_count, s.records, seg_key_id
    FROM unnest(seg_topics, seg_partitions, seg_bases, seg_counts, seg_records)
      AS s(topic, partition, base_offset, record_count, records);
  RETURN advanced;
END
$fn$;
`,
  },
  {
    id: 'bus/0004_binary_segments',
    sql: `
ALTER TABLE bus_segments ADD COLUMN payload bytea;
ALTER TABLE bus_segments ALTER COLUMN payload SET STORAGE EXTERNAL;
ALTER TABLE bus_segments ALTER COLUMN records DROP NOT NULL;
ALTER TABLE bus_segments ADD CONSTRAINT bus_segments_one_form CHECK ((records IS NULL) <> (payload IS NULL));
ALTER TABLE bus_segments ADD CONSTRAINT bus_segments_payload_sealed CHECK (payload IS NULL OR key_id IS NOT NULL);

DROP FUNCTION bus_append_segments(text[], integer[], bigint[], bigint[], text[], integer[], bigint[], integer[], text[], text);

-- As in bus/0003, with the sealed segments as bytea: advances each partition head only where it still holds the
-- expected offset and inserts the segments only if every head matched; otherwise raises, which rolls back the
-- whole calling statement (nothing written).
CREATE FUNCTION bus_append_segments(
  head_topics text[], head_partitions integer[], head_expected bigint[], head_next bigint[],
  seg_topics text[], seg_partitions integer[], seg_bases bigint[], seg_counts integer[], seg_payloads bytea[],
  seg_key_id text
) RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
  advanced integer;
BEGIN
  UPDATE bus_partitions AS p SET next_offset = h.next_offset
    FROM unnest(head_topics, head_partitions, head_expected, head_next)
      AS h(topic, partition, expected, next_offset)
    WHERE p.topic = h.topic AND p.partition = h.partition AND p.next_offset = h.expected;
  GET DIAGNOSTICS advanced = ROW_COUNT;
  IF advanced <> cardinality(head_topics) THEN
    RAISE EXCEPTION 'stale bus partition heads (% of % current)', advanced, cardinality(head_topics)
      USING ERRCODE = '40001';
  END IF;
  INSERT INTO bus_segments (topic, partition, base_offset, record_count, payload, key_id)
    SELECT s.topic, s.partition, s.base_offset, s.record_count, s.payload, seg_key_id
    FROM unnest(seg_topics, seg_partitions, seg_bases, seg_counts, seg_payloads)
      AS s(topic, partition, base_offset, record_count, payload);
  RETURN advanced;
END
$fn$;
`,
  },
  {
    id: 'bus/0005_inline_segments',
    sql: `
ALTER TABLE bus_segments SET (toast_tuple_target = 8160);
`,
  },
]);
