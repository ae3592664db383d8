import type { Queryable } from '@signal/store';
import { z } from 'zod';
import { storableText } from '../pg-text';

export interface RetryEntry {
  readonly integrationId: string;
  readonly messageId: string;
  /** The attempt number the re-published message carries. */
  readonly attempt: number;
  readonly dueAt: Date;
  /** Partition key and JSON of the delivery message to re-publish. */
  readonly key: string;
  readonly message: string;
  readonly lastError: string | null;
}

const claimedRow = z.object({
  integration_id: z.string(),
  message_id: z.string(),
  attempt: z.number().int(),
  due_at: z.date(),
  message_key: z.string(),
  message_key_escaped: z.boolean(),
  message: z.string(),
  last_error: z.string().nullable(),
});

/**
 * The key is the event's anonymous id, which may hold text PostgreSQL cannot store (`storableText`): such a
 * key is kept as a JSON string literal (plain ASCII) and flagged, so the re-published message lands in the
 * same partition. `message` is JSON text already (JSON.stringify escapes both).
 */
function storedKey(key: string): { readonly key: string; readonly escaped: boolean } {
  return storableText(key) ? { key, escaped: false } : { key: JSON.stringify(key), escaped: true };
}

function keyOf(stored: string, escaped: boolean): string {
  if (!escaped) return stored;
  const key: unknown = JSON.parse(stored);
  if (typeof key !== 'string') throw new TypeError('an escaped delivery_retries key is not a JSON string');
  return key;
}

/**
 * The durable retry schedule (`delivery_retries`). A row is written before the original message's offset is
 * committed, so a restart loses no pending retry; the scheduler claims due rows with a lease, re-publishes
 * them to their delivery topic and deletes them. A crash between publish and delete re-publishes once more,
 * which the delivery ledger absorbs.
 */
export interface RetryStore {
  /** Upserts rows; a row for the same pair is replaced only by an equal or later attempt. */
  schedule(entries: readonly RetryEntry[]): Promise<void>;
  /** Claims up to `limit` due rows for `leaseMs`. */
  claimDue(limit: number, leaseMs: number): Promise<RetryEntry[]>;
  /**
   * Deletes claimed rows that were re-published, only if nothing rescheduled them meanwhile (same attempt and
   * due time): the re-published message may already have come back as a new retry.
   */
  complete(
    entries: readonly Pick<RetryEntry, 'integrationId' | 'messageId' | 'attempt' | 'dueAt'>[],
  ): Promise<void>;
  pending(): Promise<number>;
}

export function createRetryStore(db: Pick<Queryable, 'query'>): RetryStore {
  return {
    async schedule(entries) {
      if (entries.length === 0) return;
      const keys = entries.map((e) => storedKey(e.key));
      await db.query(
        `INSERT INTO delivery_retries (integration_id, message_id, attempt, due_at, message_key, message, last_error,
                                       message_key_escaped)
         SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::timestamptz[], $5::text[], $6::text[], $7::text[],
                              $8::boolean[])
         ON CONFLICT (integration_id, message_id) DO UPDATE
           SET attempt = excluded.attempt, due_at = excluded.due_at, message_key = excluded.message_key,
               message_key_escaped = excluded.message_key_escaped, message = excluded.message,
               last_error = excluded.last_error, claimed_until = NULL
           WHERE excluded.attempt >= delivery_retries.attempt`,
        [
          entries.map((e) => e.integrationId),
          entries.map((e) => e.messageId),
          entries.map((e) => e.attempt),
          entries.map((e) => e.dueAt.toISOString()),
          keys.map((k) => k.key),
          entries.map((e) => e.message),
          entries.map((e) => e.lastError),
          keys.map((k) => k.escaped),
        ],
      );
    },
    async claimDue(limit, leaseMs) {
      const { rows } = await db.query(
        `UPDATE delivery_retries AS r
         SET claimed_until = now() + $2::integer * interval '1 millisecond'
         FROM (
           SELECT integration_id, message_id FROM delivery_retries
           WHERE due_at <= now() AND (claimed_until IS NULL OR claimed_until < now())
           ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED
         ) AS due
         WHERE r.integration_id = due.integration_id AND r.message_id = due.message_id
         RETURNING r.integration_id, r.message_id, r.attempt, r.due_at, r.message_key, r.message_key_escaped,
                   r.message, r.last_error`,
        [limit, leaseMs],
      );
      return rows.map((raw) => {
        const r = claimedRow.parse(raw);
        return {
          integrationId: r.integration_id,
          messageId: r.message_id,
          attempt: r.attempt,
          dueAt: r.due_at,
          key: keyOf(r.message_key, r.message_key_escaped),
          message: r.message,
          lastError: r.last_error,
        };
      });
    },
    async complete(entries) {
      if (entries.length === 0) return;
      await db.query(
        `DELETE FROM delivery_retries AS r
         USING unnest($1::text[], $2::text[], $3::integer[], $4::timestamptz[]) AS c(integration_id, message_id, attempt, due_at)
         WHERE r.integration_id = c.integration_id AND r.message_id = c.message_id AND r.attempt = c.attempt
           AND r.due_at = c.due_at`,
        [
          entries.map((e) => e.integrationId),
          entries.map((e) => e.messageId),
          entries.map((e) => e.attempt),
          entries.map((e) => e.dueAt.toISOString()),
        ],
      );
    },
    async pending() {
      const { rows } = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM delivery_retries');
      return Number(rows[0]?.n ?? 0);
    },
  };
}
