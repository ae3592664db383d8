import type { Queryable } from '@signal/store';
import { z } from 'zod';

const row = z.object({ message_id: z.string() });

/**
 * The delivery ledger: which (integration, messageId) pairs a vendor has accepted. `accepted` filters a
 * batch before sending; `record` inserts on conflict do nothing, so recording twice is harmless.
 */
export interface DeliveryLedger {
  accepted(integrationId: string, messageIds: readonly string[]): Promise<Set<string>>;
  record(integrationId: string, entries: readonly { messageId: string; attempts: number }[]): Promise<void>;
  /** Deletes entries older than `olderThanMs` (retention); returns how many. */
  prune(olderThanMs: number): Promise<number>;
}

export function createDeliveryLedger(db: Pick<Queryable, 'query'>): DeliveryLedger {
  return {
    async accepted(integrationId, messageIds) {
      if (messageIds.length === 0) return new Set();
      const { rows } = await db.query(
        'SELECT message_id FROM delivery_ledger WHERE integration_id = $1 AND message_id = ANY($2::text[])',
        [integrationId, [...messageIds]],
      );
      return new Set(rows.map((r) => row.parse(r).message_id));
    },
    async record(integrationId, entries) {
      if (entries.length === 0) return;
      await db.query(
        `INSERT INTO delivery_ledger (integration_id, message_id, attempts)
         SELECT $1, m, a FROM unnest($2::text[], $3::integer[]) AS e(m, a)
         ON CONFLICT (integration_id, message_id) DO NOTHING`,
        [integrationId, entries.map((e) => e.messageId), entries.map((e) => e.attempts)],
      );
    },
    async prune(olderThanMs) {
      const { rowCount } = await db.query(
        `DELETE FROM delivery_ledger WHERE delivered_at < now() - $1::bigint * interval '1 millisecond'`,
        [String(olderThanMs)],
      );
      return rowCount;
    },
  };
}
