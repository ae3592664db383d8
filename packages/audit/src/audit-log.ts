import { randomBytes } from 'node:crypto';
import type { Database, Queryable } from '@signal/store';
import { AUDIT_ACTION_INFO } from './actions';
import type { ChainHead, ChainVerification } from './chain';
import {
  appendEntry,
  lockHead,
  parseRow,
  readHead,
  rowsAscending,
  type UnchainedEntry,
} from './chain.repository';
import {
  AUDIT_ROW_COLUMNS,
  type AuditEntry,
  type AuditEntryInput,
  auditEntryInputSchema,
  type ChainedAuditEntry,
  MAX_CHANGES_BYTES,
  publicEntry,
} from './entry';
import { AuditError, isAuditError } from './errors';
import { canonicalJson } from './json';
import type { AuditLogger } from './logger';
import { createSecretMatcher, maskChanges } from './mask';
import {
  type AuditListFilters,
  type AuditPageOptions,
  decodeCursor,
  encodeCursor,
  parseFilters,
  parsePageOptions,
  whereClause,
  zodIssues,
} from './query';
import { verifyChain } from './verify';

/** ARCHITECTURE §4: entries are kept 90 days. */
export const DEFAULT_RETENTION_DAYS = 90;
const DAY_MS = 86_400_000;
const EXPORT_BATCH = 500;
const DEFAULT_PURGE_BATCH = 5000;

export interface AuditLogOptions {
  readonly db: Pick<Database, 'query' | 'transaction'>;
  readonly logger: AuditLogger;
  /** Source of entry timestamps and of the purge cutoff; defaults to the system clock. */
  readonly clock?: () => Date;
  /** Extra field names (or `prefix.*` globs) masked in `changes`, on top of the defaults. */
  readonly secretFields?: readonly string[];
}

/** `{data, next_cursor, has_more}`, newest first (the Management API list contract). */
export interface AuditPage {
  readonly data: AuditEntry[];
  readonly next_cursor: string | null;
  readonly has_more: boolean;
}

export interface PurgeOptions {
  /** Entries older than this many days are purged; at least 1. Default 90. */
  readonly retentionDays?: number;
  /** Entries purged per transaction; each transaction writes one checkpoint and one `audit.purged` entry. */
  readonly batchSize?: number;
  /** Who asked for the purge, when a person did (`signal-cli`); a scheduled purge is recorded as the system. */
  readonly actor?: { readonly user_id: string; readonly user_email?: string | null };
}

export interface AuditLog {
  /** Masks, links and stores one entry; resolves once it is committed. Returns the entry as stored. */
  record(entry: AuditEntryInput): Promise<AuditEntry>;
  /** Newest first, keyset-paginated on seq with an opaque cursor. */
  list(filters?: AuditListFilters, page?: AuditPageOptions): Promise<AuditPage>;
  /**
   * The matching entries oldest first as NDJSON lines (each ends in `\n`) with their chain fields (`seq`,
   * `prev_hash`, `hash`), read in batches so an export of the whole retention window never sits in memory.
   * Entries appended after the export started are not included.
   */
  exportNdjson(filters?: AuditListFilters): AsyncIterable<string>;
  /** Deletes entries past the retention window, oldest first, and records `audit.purged`. Returns the count. */
  purgeExpired(options?: PurgeOptions): Promise<number>;
  /** Recomputes the chain; see `verifyChain`. */
  verify(options?: { readonly anchor?: ChainHead }): Promise<ChainVerification>;
}

function newEntryId(): string {
  return `log_${randomBytes(16).toString('hex')}`;
}

/** Exported lines: the public fields in contract order, then the chain fields. */
function exportLine(entry: ChainedAuditEntry): string {
  return `${JSON.stringify({ ...publicEntry(entry), seq: entry.seq, prev_hash: entry.prev_hash, hash: entry.hash })}\n`;
}

function writeFailed(err: unknown, what: string): AuditError {
  if (isAuditError(err)) return err;
  const retryable =
    typeof err === 'object' && err !== null && 'retryable' in err && typeof err.retryable === 'boolean'
      ? err.retryable
      : true;
  return new AuditError('audit.write_failed', `${what} was not recorded`, { cause: err, retryable });
}

export function createAuditLog(options: AuditLogOptions): AuditLog {
  const { db, logger } = options;
  const clock = options.clock ?? (() => new Date());
  const matcher = createSecretMatcher(
    options.secretFields === undefined ? {} : { secretFields: options.secretFields },
  );

  function prepare(input: AuditEntryInput): UnchainedEntry {
    const parsed = auditEntryInputSchema.safeParse(input);
    if (!parsed.success) {
      throw new AuditError('audit.invalid_entry', `invalid audit entry: ${zodIssues(parsed.error)}`);
    }
    const entry = parsed.data;
    const changes = maskChanges(entry.changes ?? {}, matcher);
    if (Buffer.byteLength(canonicalJson(changes), 'utf8') > MAX_CHANGES_BYTES) {
      throw new AuditError(
        'audit.invalid_entry',
        `invalid audit entry: changes exceed ${MAX_CHANGES_BYTES} bytes`,
      );
    }
    return {
      id: newEntryId(),
      action: entry.action,
      org_id: entry.org_id ?? null,
      user_id: entry.user_id ?? null,
      user_email: entry.user_email ?? null,
      resource_type: entry.resource_type ?? AUDIT_ACTION_INFO[entry.action].resourceType,
      resource_id: entry.resource_id ?? null,
      changes,
      ip_address: entry.ip_address ?? null,
      user_agent: entry.user_agent ?? null,
    };
  }

  async function record(input: AuditEntryInput): Promise<AuditEntry> {
    const entry = prepare(input);
    let stored: ChainedAuditEntry;
    try {
      stored = await db.transaction((tx) => appendEntry(tx, entry, clock()));
    } catch (err) {
      const failure = writeFailed(err, `audit entry ${entry.action}`);
      logger.error(
        { action: entry.action, code: failure.code, err: failure.cause },
        'audit entry not recorded',
      );
      throw failure;
    }
    logger.debug({ action: stored.action, seq: stored.seq }, 'audit entry recorded');
    return publicEntry(stored);
  }

  async function list(filters: AuditListFilters = {}, page: AuditPageOptions = {}): Promise<AuditPage> {
    const where = whereClause(parseFilters(filters));
    const { limit, cursor } = parsePageOptions(page);
    const conditions = [...where.conditions];
    const params = [...where.params];
    if (cursor !== undefined) {
      params.push(decodeCursor(cursor));
      conditions.push(`seq < $${params.length}`);
    }
    params.push(limit + 1);
    const sql = `SELECT ${AUDIT_ROW_COLUMNS} FROM audit_log ${
      conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`
    } ORDER BY seq DESC LIMIT $${params.length}`;
    const result = await db.query(sql, params);
    const entries = result.rows.map(parseRow);
    const hasMore = entries.length > limit;
    const pageEntries = hasMore ? entries.slice(0, limit) : entries;
    const last = pageEntries.at(-1);
    return {
      data: pageEntries.map(publicEntry),
      next_cursor: hasMore && last !== undefined ? encodeCursor(last.seq) : null,
      has_more: hasMore,
    };
  }

  async function* exportNdjson(filters: AuditListFilters = {}): AsyncGenerator<string> {
    const where = whereClause(parseFilters(filters));
    const head = await readHead(db);
    const rows = rowsAscending(db, {
      afterSeq: 0,
      throughSeq: head.seq,
      batchSize: EXPORT_BATCH,
      conditions: where.conditions,
      params: where.params,
    });
    for await (const raw of rows) yield exportLine(parseRow(raw));
  }

  async function purgeBatch(
    tx: Queryable,
    cutoff: Date,
    retentionDays: number,
    batchSize: number,
    actor: PurgeOptions['actor'],
  ): Promise<number> {
    await lockHead(tx);
    await tx.query(
      "SELECT set_config('signal.audit_purge', 'on', true), set_config('signal.audit_purge_before', $1, true)",
      [cutoff.toISOString()],
    );
    const previous = await tx.query('SELECT max(through_seq) AS through_seq FROM audit_checkpoints');
    const previousThrough = previous.rows[0]?.through_seq;
    const oldest = await tx.query('SELECT seq, hash, occurred_at FROM audit_log ORDER BY seq LIMIT $1', [
      batchSize,
    ]);
    // The longest run of oldest entries that are all past the cutoff: a purge only ever removes a prefix.
    let through: { seq: number; hash: string } | undefined;
    let count = 0;
    for (const row of oldest.rows) {
      if (!(row.occurred_at instanceof Date) || row.occurred_at.getTime() >= cutoff.getTime()) break;
      through = { seq: Number(row.seq), hash: String(row.hash) };
      count++;
    }
    if (through === undefined) return 0;
    await tx.query(
      `INSERT INTO audit_checkpoints (through_seq, through_hash, purged_count, purged_before)
       VALUES ($1, $2, $3, $4::timestamptz)`,
      [through.seq, through.hash, count, cutoff.toISOString()],
    );
    const deleted = await tx.query('DELETE FROM audit_log WHERE seq <= $1', [through.seq]);
    if (deleted.rowCount !== count) {
      throw new AuditError(
        'audit.corrupt_row',
        `purge expected to delete ${count} entries, deleted ${deleted.rowCount}`,
      );
    }
    await appendEntry(
      tx,
      {
        id: newEntryId(),
        action: 'audit.purged',
        org_id: null,
        user_id: actor?.user_id ?? null,
        user_email: actor?.user_email ?? null,
        resource_type: 'audit',
        resource_id: null,
        changes: {
          through_seq: { old: previousThrough == null ? null : Number(previousThrough), new: through.seq },
          purged_count: { old: null, new: count },
          retention_days: { old: null, new: retentionDays },
          purged_before: { old: null, new: cutoff.toISOString() },
        },
        ip_address: null,
        user_agent: null,
      },
      clock(),
    );
    return count;
  }

  async function purgeExpired(purge: PurgeOptions = {}): Promise<number> {
    const retentionDays = purge.retentionDays ?? DEFAULT_RETENTION_DAYS;
    const batchSize = purge.batchSize ?? DEFAULT_PURGE_BATCH;
    if (!Number.isSafeInteger(retentionDays) || retentionDays < 1) {
      throw new AuditError(
        'audit.invalid_option',
        `retentionDays must be a whole number of days ≥ 1 (got ${retentionDays})`,
      );
    }
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new AuditError('audit.invalid_option', `batchSize must be a positive integer (got ${batchSize})`);
    }
    const cutoff = new Date(clock().getTime() - retentionDays * DAY_MS);
    let total = 0;
    for (;;) {
      let purged: number;
      try {
        purged = await db.transaction((tx) => purgeBatch(tx, cutoff, retentionDays, batchSize, purge.actor));
      } catch (err) {
        const failure = writeFailed(err, 'audit purge');
        logger.error({ code: failure.code, purgedSoFar: total, err: failure.cause }, 'audit purge failed');
        throw failure;
      }
      total += purged;
      if (purged < batchSize) break;
    }
    if (total > 0) logger.info({ purged: total, retentionDays }, 'audit entries past retention purged');
    return total;
  }

  return {
    record,
    list,
    exportNdjson,
    purgeExpired,
    verify: (verifyOptions = {}) => verifyChain(db, verifyOptions),
  };
}
