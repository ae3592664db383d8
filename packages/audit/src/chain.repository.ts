import type { Queryable } from '@signal/store';
import { z } from 'zod';
import { type ChainHead, entryHash } from './chain';
import { AUDIT_ROW_COLUMNS, auditRowSchema, type ChainedAuditEntry } from './entry';
import { AuditError } from './errors';

/** The one method reads need, so a Database or a transaction handle both fit. */
export type Reader = Pick<Queryable, 'query'>;

/** Everything of an entry but its place in the chain: what `appendEntry` links and hashes. */
export type UnchainedEntry = Omit<ChainedAuditEntry, 'seq' | 'prev_hash' | 'hash' | 'timestamp'>;

const headRowSchema = z.object({
  last_seq: z.union([z.string(), z.number()]).transform(Number),
  last_hash: z.string(),
  last_at: z.date().nullable(),
});

export interface LockedHead extends ChainHead {
  /** Timestamp of the newest entry; the next one is never earlier (timestamps follow seq order). */
  readonly at: Date | null;
}

/** Locks the chain head row until the transaction ends: the one lock every append and purge takes. */
export async function lockHead(tx: Queryable): Promise<LockedHead> {
  const result = await tx.query(
    'SELECT last_seq, last_hash, last_at FROM audit_chain WHERE singleton FOR UPDATE',
  );
  const row = headRowSchema.safeParse(result.rows[0]);
  if (!row.success || !Number.isSafeInteger(row.data.last_seq)) {
    throw new AuditError('audit.corrupt_row', 'the audit chain head row is missing or malformed');
  }
  return { seq: row.data.last_seq, hash: row.data.last_hash, at: row.data.last_at };
}

export async function readHead(db: Reader): Promise<ChainHead> {
  const result = await db.query('SELECT last_seq, last_hash, last_at FROM audit_chain WHERE singleton');
  const row = headRowSchema.safeParse(result.rows[0]);
  if (!row.success || !Number.isSafeInteger(row.data.last_seq)) {
    throw new AuditError('audit.corrupt_row', 'the audit chain head row is missing or malformed');
  }
  return { seq: row.data.last_seq, hash: row.data.last_hash };
}

/**
 * Appends one entry inside `tx`: locks the head, links the entry to it and inserts it (the insert trigger
 * checks the link and advances the head). Appends therefore form one line with consecutive seqs, whatever
 * the concurrency. The timestamp is taken under the lock and never goes back along the chain, so seq order
 * and time order agree (a process with a slow clock cannot record "in the past").
 */
export async function appendEntry(
  tx: Queryable,
  entry: UnchainedEntry,
  now: Date,
): Promise<ChainedAuditEntry> {
  const head = await lockHead(tx);
  const at = head.at !== null && head.at.getTime() > now.getTime() ? head.at : now;
  const unhashed = { ...entry, seq: head.seq + 1, timestamp: at.toISOString() };
  const chained: ChainedAuditEntry = {
    ...unhashed,
    prev_hash: head.hash,
    hash: entryHash(head.hash, unhashed),
  };
  await tx.query(
    `INSERT INTO audit_log (${AUDIT_ROW_COLUMNS})
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11::timestamptz, $12, $13, $14)`,
    [
      chained.seq,
      chained.id,
      chained.action,
      chained.user_id,
      chained.user_email,
      chained.resource_type,
      chained.resource_id,
      JSON.stringify(chained.changes),
      chained.ip_address,
      chained.user_agent,
      chained.timestamp,
      chained.prev_hash,
      chained.hash,
      chained.org_id,
    ],
  );
  return chained;
}

export function parseRow(raw: unknown): ChainedAuditEntry {
  const row = auditRowSchema.safeParse(raw);
  if (!row.success)
    throw new AuditError('audit.corrupt_row', 'an audit_log row does not match the entry schema');
  return row.data;
}

/** Rows with seq > `afterSeq` (and ≤ `throughSeq`), oldest first, `batchSize` per query. */
export async function* rowsAscending(
  db: Reader,
  options: {
    readonly afterSeq: number;
    readonly throughSeq: number;
    readonly batchSize: number;
    readonly conditions?: readonly string[];
    readonly params?: readonly unknown[];
  },
): AsyncGenerator<Record<string, unknown>> {
  const conditions = options.conditions ?? [];
  const params = options.params ?? [];
  const base = params.length;
  const where = [...conditions, `seq > $${base + 1}`, `seq <= $${base + 2}`].join(' AND ');
  const sql = `SELECT ${AUDIT_ROW_COLUMNS} FROM audit_log WHERE ${where} ORDER BY seq LIMIT $${base + 3}`;
  let after = options.afterSeq;
  for (;;) {
    const page = await db.query(sql, [...params, after, options.throughSeq, options.batchSize]);
    for (const row of page.rows) yield row;
    const last = page.rows.at(-1);
    if (page.rows.length < options.batchSize || last === undefined) return;
    after = Number(last.seq);
    if (!Number.isSafeInteger(after))
      throw new AuditError('audit.corrupt_row', 'an audit_log row has no valid seq');
  }
}
