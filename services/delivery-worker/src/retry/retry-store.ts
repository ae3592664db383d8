import { isSealedText, openColumn, sealColumn } from '@signal/control-plane';
import { CryptoError, type CryptoErrorCode } from '@signal/crypto';
import type { Queryable } from '@signal/store';
import { z } from 'zod';
import { type RetryCrypto, retryPayloadContext } from './encrypted-columns';

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
  /**
   * The message was a DLQ replay (`x-signal-replay`): re-published with that header again, so a vendor's
   * age-window refusal of the retry still drops it as too late instead of dead-lettering it once more.
   */
  readonly replay?: boolean;
}

/**
 * A claimed row whose sealed part does not open here: a key this process does not hold (the previous key
 * dropped while retries were pending), a ciphertext copied from another row, a damaged one. `reason` is the
 * crypto error code (`invalid_payload`: it opened but is not a retry payload). The row is left scheduled.
 */
export interface UnreadableRetry {
  readonly integrationId: string;
  readonly messageId: string;
  readonly attempt: number;
  readonly reason: CryptoErrorCode | 'invalid_payload';
}

export interface ClaimedRetries {
  /** Rows to re-publish, then `complete`. */
  readonly due: RetryEntry[];
  /** Rows that cannot be re-published; they stay claimed for the lease, then come back. */
  readonly unreadable: UnreadableRetry[];
}

const claimedRow = z.object({
  integration_id: z.string(),
  message_id: z.string(),
  attempt: z.number().int(),
  due_at: z.date(),
  payload: z.string(),
});

const scannedRow = claimedRow.extend({ id_text: z.string() });

/**
 * The plaintext of `delivery_retries.payload`: what a retry carries that may be personal data. JSON text keeps
 * any string (U+0000 and unpaired surrogates in the partition key included) as escapes. `escaped` is only ever
 * set on a row scheduled before `delivery-worker/0004` and moved here in its 0002 stored form: its key is then
 * a JSON string literal.
 */
const payloadSchema = z.object({
  escaped: z.boolean().optional(),
  key: z.string(),
  message: z.string(),
  lastError: z.string().nullable(),
  /** Absent in rows scheduled before it existed: those were not known to be replays. */
  replay: z.boolean().optional(),
});

function keyOf(stored: string, escaped: boolean): string {
  if (!escaped) return stored;
  const key: unknown = JSON.parse(stored);
  if (typeof key !== 'string') throw new TypeError('an escaped delivery_retries key is not a JSON string');
  return key;
}

/**
 * The sealed part of a row, opened. A row scheduled before `delivery-worker/0004` may still hold it as
 * plaintext (no `v1.` prefix) until the worker's start-up or the re-encryption job seals it; it is read as it
 * is. Anything that does not open or parse yields a reason instead of throwing, so one row never holds back
 * the others of its claim.
 */
function openPayload(
  crypto: RetryCrypto,
  row: z.infer<typeof claimedRow>,
):
  | {
      readonly key: string;
      readonly message: string;
      readonly lastError: string | null;
      readonly replay?: true;
    }
  | UnreadableRetry {
  const unreadable = (reason: UnreadableRetry['reason']): UnreadableRetry => ({
    integrationId: row.integration_id,
    messageId: row.message_id,
    attempt: row.attempt,
    reason,
  });
  let plaintext: Buffer;
  try {
    plaintext = openColumn(crypto, row.payload, retryPayloadContext(row.integration_id, row.message_id));
  } catch (err) {
    if (err instanceof CryptoError) return unreadable(err.code);
    throw err;
  }
  try {
    const part = payloadSchema.parse(JSON.parse(plaintext.toString('utf8')));
    return {
      key: keyOf(part.key, part.escaped === true),
      message: part.message,
      lastError: part.lastError,
      ...(part.replay === true ? { replay: true as const } : {}),
    };
  } catch {
    return unreadable('invalid_payload');
  } finally {
    plaintext.fill(0);
  }
}

/**
 * The durable retry schedule (`delivery_retries`). A row is written before the original message's offset is
 * committed, so a restart loses no pending retry; the scheduler claims due rows with a lease, re-publishes
 * them to their delivery topic and deletes them. A crash between publish and delete re-publishes once more,
 * which the delivery ledger absorbs.
 *
 * What a retry carries (the delivery message with the whole event, its partition key, the last error) is
 * sealed at rest in `payload` (`retryPayloadContext`: integration and message id bound); the integration,
 * message id, attempt and times stay readable for scheduling.
 */
export interface RetryStore {
  /** Upserts rows; a row for the same pair is replaced only by an equal or later attempt. */
  schedule(entries: readonly RetryEntry[]): Promise<void>;
  /** Claims up to `limit` due rows for `leaseMs`; the ones that do not open are reported apart. */
  claimDue(limit: number, leaseMs: number): Promise<ClaimedRetries>;
  /**
   * Deletes claimed rows that were re-published, only if nothing rescheduled them meanwhile (same attempt and
   * due time): the re-published message may already have come back as a new retry.
   */
  complete(
    entries: readonly Pick<RetryEntry, 'integrationId' | 'messageId' | 'attempt' | 'dueAt'>[],
  ): Promise<void>;
  pending(): Promise<number>;
  /**
   * Every row whose `id_text` (integration + '/' + message id) is above `after`, in that order, opened: the
   * message to re-publish, or why it does not open (a walk over the table).
   */
  scan(
    after: string,
    limit: number,
  ): Promise<
    readonly ({ readonly idText: string } & (
      | { readonly integrationId: string; readonly messageId: string; readonly message: string }
      | UnreadableRetry
    ))[]
  >;
  /** Deletes these rows, whatever their attempt; returns how many were there. */
  remove(rows: readonly Pick<RetryEntry, 'integrationId' | 'messageId'>[]): Promise<number>;
  /**
   * Seals every row still holding its payload as plaintext (scheduled before `delivery-worker/0004`), in
   * batches with an optimistic check (a row changed meanwhile, rescheduled, completed, or sealed by another
   * worker or the re-encryption job, is left as it is). Returns how many rows this call wrote.
   */
  sealLegacy(options?: { readonly batchSize?: number }): Promise<number>;
}

export function createRetryStore(db: Pick<Queryable, 'query'>, crypto: RetryCrypto): RetryStore {
  return {
    async schedule(entries) {
      if (entries.length === 0) return;
      // One AES-GCM per row, in memory: the context needs nothing from the database, so this stays one
      // statement per batch.
      const sealed = entries.map((e) =>
        sealColumn(
          crypto,
          JSON.stringify({
            key: e.key,
            message: e.message,
            lastError: e.lastError,
            ...(e.replay === true ? { replay: true } : {}),
          }),
          retryPayloadContext(e.integrationId, e.messageId),
        ),
      );
      await db.query(
        `INSERT INTO delivery_retries (integration_id, message_id, attempt, due_at, payload, payload_key_id)
         SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::timestamptz[], $5::text[], $6::text[])
         ON CONFLICT (integration_id, message_id) DO UPDATE
           SET attempt = excluded.attempt, due_at = excluded.due_at, payload = excluded.payload,
               payload_key_id = excluded.payload_key_id, claimed_until = NULL
           WHERE excluded.attempt >= delivery_retries.attempt`,
        [
          entries.map((e) => e.integrationId),
          entries.map((e) => e.messageId),
          entries.map((e) => e.attempt),
          entries.map((e) => e.dueAt.toISOString()),
          sealed.map((s) => s.text),
          sealed.map((s) => s.keyId),
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
         RETURNING r.integration_id, r.message_id, r.attempt, r.due_at, r.payload`,
        [limit, leaseMs],
      );
      const claimed: ClaimedRetries = { due: [], unreadable: [] };
      for (const raw of rows) {
        const r = claimedRow.parse(raw);
        const opened = openPayload(crypto, r);
        if ('reason' in opened) {
          claimed.unreadable.push(opened);
          continue;
        }
        claimed.due.push({
          integrationId: r.integration_id,
          messageId: r.message_id,
          attempt: r.attempt,
          dueAt: r.due_at,
          ...opened,
        });
      }
      return claimed;
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
    async scan(after, limit) {
      const { rows } = await db.query(
        `SELECT id_text, integration_id, message_id, attempt, due_at, payload FROM delivery_retries
          WHERE id_text > $1 ORDER BY id_text LIMIT $2`,
        [after, limit],
      );
      return rows.map((raw) => {
        const r = scannedRow.parse(raw);
        const opened = openPayload(crypto, r);
        return 'reason' in opened
          ? { idText: r.id_text, ...opened }
          : {
              idText: r.id_text,
              integrationId: r.integration_id,
              messageId: r.message_id,
              message: opened.message,
            };
      });
    },
    async remove(entries) {
      if (entries.length === 0) return 0;
      const { rowCount } = await db.query(
        `DELETE FROM delivery_retries AS r
         USING unnest($1::text[], $2::text[]) AS c(integration_id, message_id)
         WHERE r.integration_id = c.integration_id AND r.message_id = c.message_id`,
        [entries.map((e) => e.integrationId), entries.map((e) => e.messageId)],
      );
      return rowCount;
    },
    async pending() {
      const { rows } = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM delivery_retries');
      return Number(rows[0]?.n ?? 0);
    },
    async sealLegacy(options = {}) {
      const batchSize = Math.min(5000, Math.max(1, Math.trunc(options.batchSize ?? 500)));
      let after = '';
      let written = 0;
      for (;;) {
        const { rows } = await db.query<{
          id_text: string;
          integration_id: string;
          message_id: string;
          payload: string;
        }>(
          `SELECT id_text, integration_id, message_id, payload FROM delivery_retries
            WHERE payload_key_id IS NULL AND id_text > $1 ORDER BY id_text LIMIT $2`,
          [after, batchSize],
        );
        const last = rows.at(-1);
        if (last === undefined) return written;
        after = last.id_text;
        // A row that is sealed but unlabelled only gets its key id.
        const next = rows.map((r) =>
          isSealedText(r.payload)
            ? r.payload
            : sealColumn(crypto, r.payload, retryPayloadContext(r.integration_id, r.message_id)).text,
        );
        const { rowCount } = await db.query(
          `UPDATE delivery_retries AS t SET payload = v.next, payload_key_id = v.key_id
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS v(id, old, next, key_id)
            WHERE t.id_text = v.id AND t.payload = v.old AND t.payload_key_id IS NULL`,
          [
            rows.map((r) => r.id_text),
            rows.map((r) => r.payload),
            next,
            next.map((text) => crypto.keyIdOf(text)),
          ],
        );
        written += rowCount;
      }
    },
  };
}
