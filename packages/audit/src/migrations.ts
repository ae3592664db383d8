import type { Migration } from '@signal/store';

/**
 * `audit_log` holds the entries, `audit_chain` the single chain-head row (last seq and hash: the lock appends
 * serialise on), `audit_checkpoints` the anchor of each retention purge (hash of the last purged entry).
 */
const createTables = `
CREATE TABLE audit_log (
  seq          bigint PRIMARY KEY CHECK (seq > 0),
  id           text NOT NULL UNIQUE,
  action       text NOT NULL,
  user_id      text,
  user_email   text,
  resource_type text NOT NULL,
  resource_id  text,
  changes      jsonb NOT NULL,
  ip_address   text,
  user_agent   text,
  occurred_at  timestamptz NOT NULL,
  prev_hash    text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
  hash         text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);

-- List filters walk one index backwards in seq order (keyset pagination); purge and from/to use occurred_at.
CREATE INDEX audit_log_action_seq ON audit_log (action, seq);
CREATE INDEX audit_log_resource_seq ON audit_log (resource_type, resource_id, seq);
CREATE INDEX audit_log_user_seq ON audit_log (user_id, seq);
CREATE INDEX audit_log_occurred_at ON audit_log (occurred_at);

CREATE TABLE audit_chain (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  last_seq  bigint NOT NULL CHECK (last_seq >= 0),
  last_hash text NOT NULL CHECK (last_hash ~ '^[0-9a-f]{64}$'),
  last_at   timestamptz
);
INSERT INTO audit_chain (singleton, last_seq, last_hash) VALUES (true, 0, repeat('0', 64));

CREATE TABLE audit_checkpoints (
  through_seq   bigint PRIMARY KEY CHECK (through_seq > 0),
  through_hash  text NOT NULL CHECK (through_hash ~ '^[0-9a-f]{64}$'),
  purged_count  bigint NOT NULL CHECK (purged_count > 0),
  purged_before timestamptz NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);
`;

/**
 * Append-only enforcement inside the database, so that no code path (ours, a console session, a bad
 * migration) can rewrite history by accident. A database owner can still disable triggers: the hash chain
 * is what makes such an edit detectable.
 *
 * - audit_log: INSERT must extend the chain head (seq = head + 1, prev_hash = head hash) and advances it.
 *   UPDATE is always refused. DELETE is refused unless the transaction set `signal.audit_purge = 'on'` and
 *   `signal.audit_purge_before` (transaction-local, via set_config(…, true)); then only rows older than that
 *   cutoff, only a prefix of the chain (oldest first), and only through a checkpoint written beforehand.
 * - audit_chain: changed only by the audit_log insert trigger.
 * - audit_checkpoints: inserted only by a purge and only for an existing entry past the previous checkpoint;
 *   never updated or deleted.
 * - TRUNCATE is refused on all three.
 *
 * Refusals use SQLSTATE 42501 (insufficient_privilege), chain violations 23000: both classes whose messages
 * the store passes through, and the messages name no values beyond sequence numbers.
 * Functions pin search_path to the schema they were created in.
 */
const appendOnlyTriggers = `
CREATE FUNCTION audit_refuse_truncate() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
BEGIN
  RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$fn$;

CREATE FUNCTION audit_log_link() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  v_last_seq  bigint;
  v_last_hash text;
BEGIN
  SELECT last_seq, last_hash INTO v_last_seq, v_last_hash FROM audit_chain WHERE singleton FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'audit_chain head row is missing' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.seq <> v_last_seq + 1 OR NEW.prev_hash <> v_last_hash THEN
    RAISE EXCEPTION 'audit_log insert must extend the chain: expected seq % linked to the head hash', v_last_seq + 1
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  UPDATE audit_chain SET last_seq = NEW.seq, last_hash = NEW.hash, last_at = NEW.occurred_at WHERE singleton;
  RETURN NEW;
END
$fn$;

CREATE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  v_before timestamptz;
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('signal.audit_purge', true) = 'on' THEN
    v_before := NULLIF(current_setting('signal.audit_purge_before', true), '')::timestamptz;
    IF v_before IS NULL OR v_before > now() THEN
      RAISE EXCEPTION 'audit_log purge needs a cutoff in the past (signal.audit_purge_before)'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.occurred_at < v_before THEN
      RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log purge may only delete entries older than the retention window (seq %)', OLD.seq
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$fn$;

CREATE FUNCTION audit_log_purge_prefix() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  v_through bigint;
  v_hash    text;
BEGIN
  SELECT seq, hash INTO v_through, v_hash FROM purged ORDER BY seq DESC LIMIT 1;
  IF v_through IS NULL THEN
    RETURN NULL;
  END IF;
  IF EXISTS (SELECT 1 FROM audit_log WHERE seq < v_through) THEN
    RAISE EXCEPTION 'audit_log purge must delete the oldest entries first (through seq %)', v_through
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM audit_checkpoints WHERE through_seq = v_through AND through_hash = v_hash) THEN
    RAISE EXCEPTION 'audit_log purge through seq % has no checkpoint', v_through
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NULL;
END
$fn$;

CREATE TRIGGER audit_log_link BEFORE INSERT ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_link();
CREATE TRIGGER audit_log_guard BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_guard();
CREATE TRIGGER audit_log_purge_prefix AFTER DELETE ON audit_log
  REFERENCING OLD TABLE AS purged FOR EACH STATEMENT EXECUTE FUNCTION audit_log_purge_prefix();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();

CREATE FUNCTION audit_chain_guard() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
BEGIN
  -- Depth 1 is a statement from a session; the audit_log insert trigger's own update runs at depth 2.
  IF TG_OP = 'UPDATE' AND pg_trigger_depth() > 1 AND NEW.last_seq = OLD.last_seq + 1 THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit_chain is maintained by the audit_log insert trigger: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$fn$;

CREATE TRIGGER audit_chain_guard BEFORE INSERT OR UPDATE OR DELETE ON audit_chain
  FOR EACH ROW EXECUTE FUNCTION audit_chain_guard();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
  FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();

CREATE FUNCTION audit_checkpoints_guard() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF current_setting('signal.audit_purge', true) IS DISTINCT FROM 'on' THEN
      RAISE EXCEPTION 'audit_checkpoints are written by the retention purge only'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM audit_log WHERE seq = NEW.through_seq AND hash = NEW.through_hash) THEN
      RAISE EXCEPTION 'audit checkpoint through seq % does not name an existing entry', NEW.through_seq
        USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM audit_checkpoints WHERE through_seq >= NEW.through_seq) THEN
      RAISE EXCEPTION 'audit checkpoint through seq % is not past the previous checkpoint', NEW.through_seq
        USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit_checkpoints is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$fn$;

CREATE TRIGGER audit_checkpoints_guard BEFORE INSERT OR UPDATE OR DELETE ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_guard();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();
`;

/**
 * The org each entry belongs to, so one org's admins read their org's log and not another's. Nullable: older
 * entries and deployment-wide events have none. The hash chain covers it when set (see `canonicalEntryJson`).
 */
const orgId = `
ALTER TABLE audit_log ADD COLUMN org_id text;
CREATE INDEX audit_log_org_seq ON audit_log (org_id, seq);
`;

/** The audit package's migrations, in order. Ids never change once released. */
export const auditMigrations: readonly Migration[] = [
  { id: 'audit/0001_audit_log', sql: createTables },
  { id: 'audit/0002_append_only_triggers', sql: appendOnlyTriggers },
  { id: 'audit/0003_org_id', sql: orgId },
];
