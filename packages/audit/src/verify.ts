import type { Database } from '@signal/store';
import { z } from 'zod';
import { type ChainHead, type ChainVerification, GENESIS_HASH, type InvalidRow, verifyRows } from './chain';
import { readHead, rowsAscending } from './chain.repository';
import { auditRowSchema, type ChainedAuditEntry } from './entry';

const VERIFY_BATCH = 1000;

export interface VerifyChainOptions {
  /**
   * A head noted earlier outside the database (`signal-cli audit verify` prints it; keep it in a ticket or
   * your log archive). The entry at that seq must still carry that hash, which catches a rewrite of the chain
   * from some point on with every hash recomputed, the one edit a bare hash chain cannot see.
   */
  readonly anchor?: ChainHead;
}

const checkpointRowSchema = z.object({
  through_seq: z.union([z.string(), z.number()]).transform(Number),
  through_hash: z.string(),
});

function parseForVerify(raw: Record<string, unknown>): ChainedAuditEntry | InvalidRow {
  const row = auditRowSchema.safeParse(raw);
  return row.success ? row.data : { invalid: true, seq: Number(raw.seq) };
}

async function* parsed(
  rows: AsyncIterable<Record<string, unknown>>,
): AsyncGenerator<ChainedAuditEntry | InvalidRow> {
  for await (const raw of rows) yield parseForVerify(raw);
}

/**
 * Recomputes the whole chain from the oldest remaining entry (or the latest purge checkpoint) to the head
 * and reports the first seq where it is not intact: an edited, deleted, inserted or reordered row, a tail cut
 * off, a prefix deleted outside the purge. Runs in one REPEATABLE READ, READ ONLY transaction so appends and
 * purges running meanwhile neither block it nor make it see half of their work.
 */
export function verifyChain(
  db: Pick<Database, 'transaction'>,
  options: VerifyChainOptions = {},
): Promise<ChainVerification> {
  return db.transaction(async (tx) => {
    await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const head = await readHead(tx);
    const checkpoints = await tx.query(
      'SELECT through_seq, through_hash FROM audit_checkpoints ORDER BY through_seq DESC LIMIT 1',
    );
    const checkpoint =
      checkpoints.rows[0] === undefined ? undefined : checkpointRowSchema.parse(checkpoints.rows[0]);
    const start: ChainHead =
      checkpoint === undefined
        ? { seq: 0, hash: GENESIS_HASH }
        : { seq: checkpoint.through_seq, hash: checkpoint.through_hash };
    // Every row, not only those past the checkpoint: a row at or below it means the checkpoint is wrong.
    const rows = rowsAscending(tx, {
      afterSeq: 0,
      throughSeq: Number.MAX_SAFE_INTEGER,
      batchSize: VERIFY_BATCH,
    });
    return verifyRows(parsed(rows), {
      start,
      head,
      purgedThroughSeq: checkpoint?.through_seq,
      anchor: options.anchor,
      locate: async (hash) => {
        const found = await tx.query('SELECT seq FROM audit_log WHERE hash = $1 ORDER BY seq LIMIT 1', [
          hash,
        ]);
        const seq = found.rows[0]?.seq;
        return seq === undefined ? undefined : Number(seq);
      },
    });
  });
}
