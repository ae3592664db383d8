import type { DlqMessage, JsonValue } from '@signal/events';
import type { Queryable } from '@signal/store';
import { z } from 'zod';
import { maskPersonalData } from './mask';

/** A dead letter as listed for inspection: the original with personal data masked. */
export interface DeadLetterEntry {
  readonly id: string;
  readonly error: string;
  readonly details: string;
  /** The topic the message failed on (a replay publishes to it). */
  readonly topic: string;
  readonly integrationId: string | null;
  readonly messageId: string | null;
  readonly attempts: number | null;
  readonly lastResponse: DlqMessage['lastResponse'] | null;
  readonly failedAt: Date;
  readonly replayedAt: Date | null;
  readonly replayCount: number;
  /** Masked (`maskPersonalData`). */
  readonly original: JsonValue;
}

export interface DeadLetterFilter {
  readonly integrationId?: string;
  /** Failed at or after. */
  readonly from?: Date;
  /** Failed before. */
  readonly to?: Date;
  /** Include entries already replayed. Default false. */
  readonly includeReplayed?: boolean;
  /** Default 50, max 1000. */
  readonly limit?: number;
  /** Entries with an id below this (keyset pagination, newest first). */
  readonly before?: string;
}

const entryRow = z.object({
  id: z.string(),
  error: z.string(),
  details: z.string(),
  topic: z.string(),
  integration_id: z.string().nullable(),
  message_id: z.string().nullable(),
  original_key: z.string().nullable(),
  original: z.json(),
  last_response: z
    .object({ status: z.number().optional(), body: z.string().optional(), errorCode: z.string().optional() })
    .nullable(),
  attempts: z.number().int().nullable(),
  failed_at: z.date(),
  replayed_at: z.date().nullable(),
  replay_count: z.number().int(),
});
export type DeadLetterRow = z.infer<typeof entryRow>;

const COLUMNS =
  'id::text AS id, error, details, topic, integration_id, message_id, original_key, original, last_response, attempts, failed_at, replayed_at, replay_count';

function messageIdOf(original: JsonValue): string | null {
  if (original === null || typeof original !== 'object' || Array.isArray(original)) return null;
  const direct = original.messageId;
  if (typeof direct === 'string') return direct.slice(0, 256);
  const event = original.event;
  if (
    event !== null &&
    typeof event === 'object' &&
    !Array.isArray(event) &&
    typeof event.messageId === 'string'
  ) {
    return event.messageId.slice(0, 256);
  }
  return null;
}

export function toEntry(row: DeadLetterRow): DeadLetterEntry {
  return {
    id: row.id,
    error: row.error,
    details: row.details,
    topic: row.topic,
    integrationId: row.integration_id,
    messageId: row.message_id,
    attempts: row.attempts,
    lastResponse: row.last_response,
    failedAt: row.failed_at,
    replayedAt: row.replayed_at,
    replayCount: row.replay_count,
    original: maskPersonalData(row.original as JsonValue),
  };
}

/** The DLQ index (`delivery_dlq`) over `dlq-events`. */
export interface DlqStore {
  /** Indexes dead letters consumed from `dlq-events`; idempotent on their bus position. */
  index(letters: readonly { partition: number; offset: string; letter: DlqMessage }[]): Promise<number>;
  list(filter?: DeadLetterFilter): Promise<DeadLetterEntry[]>;
  get(id: string): Promise<DeadLetterEntry | null>;
  /** Unmasked rows for a replay (never returned to a caller outside the worker). */
  forReplay(filter: DeadLetterFilter & { readonly ids?: readonly string[] }): Promise<DeadLetterRow[]>;
  markReplayed(ids: readonly string[]): Promise<void>;
  /** Dead letters not yet replayed (`signal_dlq_depth`). */
  depth(): Promise<number>;
}

function where(filter: DeadLetterFilter & { readonly ids?: readonly string[] }): {
  sql: string;
  params: unknown[];
} {
  const clauses: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown): void => {
    params.push(value);
    clauses.push(sql.replace('?', `$${params.length}`));
  };
  if (filter.integrationId !== undefined) add('integration_id = ?', filter.integrationId);
  if (filter.from !== undefined) add('failed_at >= ?', filter.from);
  if (filter.to !== undefined) add('failed_at < ?', filter.to);
  if (filter.before !== undefined) add('id < ?::bigint', filter.before);
  if (filter.ids !== undefined) add('id = ANY(?::bigint[])', [...filter.ids]);
  if (filter.includeReplayed !== true) clauses.push('replayed_at IS NULL');
  return { sql: clauses.length === 0 ? '' : `WHERE ${clauses.join(' AND ')}`, params };
}

function limitOf(limit: number | undefined): number {
  return Math.min(1000, Math.max(1, Math.trunc(limit ?? 50)));
}

export function createDlqStore(db: Pick<Queryable, 'query'>): DlqStore {
  async function select(
    filter: DeadLetterFilter & { readonly ids?: readonly string[] },
    order: 'ASC' | 'DESC',
  ) {
    const { sql, params } = where(filter);
    params.push(limitOf(filter.limit));
    const { rows } = await db.query(
      `SELECT ${COLUMNS} FROM delivery_dlq ${sql} ORDER BY delivery_dlq.id ${order} LIMIT $${params.length}`,
      params,
    );
    return rows.map((r) => entryRow.parse(r));
  }
  return {
    async index(letters) {
      if (letters.length === 0) return 0;
      const { rowCount } = await db.query(
        `INSERT INTO delivery_dlq (dlq_partition, dlq_offset, error, details, topic, integration_id, message_id,
                                   original_key, original, last_response, attempts, failed_at)
         SELECT p, o, e, d, t, i, m, k, orig::jsonb, lr::jsonb, a, f
         FROM unnest($1::integer[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::text[], $10::text[], $11::integer[], $12::timestamptz[])
              AS x(p, o, e, d, t, i, m, k, orig, lr, a, f)
         ON CONFLICT (dlq_partition, dlq_offset) DO NOTHING`,
        [
          letters.map((l) => l.partition),
          letters.map((l) => l.offset),
          letters.map((l) => l.letter.error),
          letters.map((l) => l.letter.details),
          letters.map((l) => l.letter.topic),
          letters.map((l) => l.letter.integrationId ?? null),
          letters.map((l) => messageIdOf(l.letter.original)),
          letters.map((l) => l.letter.originalKey ?? null),
          letters.map((l) => JSON.stringify(l.letter.original)),
          letters.map((l) =>
            l.letter.lastResponse === undefined ? null : JSON.stringify(l.letter.lastResponse),
          ),
          letters.map((l) => l.letter.attempts ?? null),
          letters.map((l) => l.letter.failedAt),
        ],
      );
      return rowCount;
    },
    async list(filter = {}) {
      return (await select(filter, 'DESC')).map(toEntry);
    },
    async get(id) {
      if (!/^\d{1,19}$/.test(id)) return null;
      const rows = await select({ ids: [id], includeReplayed: true, limit: 1 }, 'ASC');
      return rows[0] === undefined ? null : toEntry(rows[0]);
    },
    forReplay: (filter) => select(filter, 'ASC'),
    async markReplayed(ids) {
      if (ids.length === 0) return;
      await db.query(
        'UPDATE delivery_dlq SET replayed_at = now(), replay_count = replay_count + 1 WHERE id = ANY($1::bigint[])',
        [[...ids]],
      );
    },
    async depth() {
      const { rows } = await db.query<{ n: string }>(
        'SELECT count(*)::text AS n FROM delivery_dlq WHERE replayed_at IS NULL',
      );
      return Number(rows[0]?.n ?? 0);
    },
  };
}
