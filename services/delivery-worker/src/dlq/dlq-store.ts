import type { DlqMessage, JsonValue } from '@signal/events';
import type { Queryable } from '@signal/store';
import { z } from 'zod';
import { storableJson, storableText } from '../pg-text';
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

const lastResponseSchema = z
  .object({ status: z.number().optional(), body: z.string().optional(), errorCode: z.string().optional() })
  .nullable();

const storedRow = z.object({
  id: z.string(),
  error: z.string(),
  details: z.string(),
  topic: z.string(),
  integration_id: z.string().nullable(),
  message_id: z.string().nullable(),
  original_key: z.string().nullable(),
  original: z.json(),
  last_response: z.json().nullable(),
  attempts: z.number().int().nullable(),
  failed_at: z.date(),
  replayed_at: z.date().nullable(),
  replay_count: z.number().int(),
  escaped: z.boolean(),
});

/** A `delivery_dlq` row as the letter was: escaped rows decoded (see `rowValues`). */
export interface DeadLetterRow {
  readonly id: string;
  readonly error: string;
  readonly details: string;
  readonly topic: string;
  readonly integration_id: string | null;
  readonly message_id: string | null;
  readonly original_key: string | null;
  readonly original: JsonValue;
  readonly last_response: z.infer<typeof lastResponseSchema>;
  readonly attempts: number | null;
  readonly failed_at: Date;
  readonly replayed_at: Date | null;
  readonly replay_count: number;
}

const COLUMNS =
  'id::text AS id, error, details, topic, integration_id, message_id, original_key, original, last_response, attempts, failed_at, replayed_at, replay_count, escaped';

const PG_MIN_MS = Date.parse('0001-01-01T00:00:00.000Z');
const PG_MAX_MS = Date.parse('9999-12-31T23:59:59.999Z');

/** `failedAt` as PostgreSQL reads it; an instant outside years 1-9999 (which it refuses) becomes `fallback`. */
function pgTimestamp(iso: string, fallback: Date): string {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) && ms >= PG_MIN_MS && ms <= PG_MAX_MS
    ? new Date(ms).toISOString()
    : fallback.toISOString();
}

/**
 * The column values of one letter. A letter with text PostgreSQL cannot store (`storableText`) is stored
 * escaped, losslessly and as a whole: its text columns hold JSON string literals (`"a\u0000b"`), `original`
 * and `last_response` a jsonb string of their JSON text; every escape is plain ASCII. `topic` and
 * `integration_id` are never escaped (the DLQ schema limits them to `[A-Za-z0-9._-]`), so filters keep working.
 */
function rowValues(letter: DlqMessage, indexedAt: Date) {
  const messageId = messageIdOf(letter.original);
  const escaped = !(
    storableText(letter.error) &&
    storableText(letter.details) &&
    storableText(letter.originalKey ?? '') &&
    storableText(messageId ?? '') &&
    storableJson(letter.original) &&
    storableJson(letter.lastResponse ?? null)
  );
  const text = (value: string | null): string | null =>
    value === null || !escaped ? value : JSON.stringify(value);
  const json = (value: unknown): string =>
    escaped ? JSON.stringify(JSON.stringify(value)) : JSON.stringify(value);
  return {
    error: text(letter.error),
    details: text(letter.details),
    messageId: text(messageId),
    originalKey: text(letter.originalKey ?? null),
    original: json(letter.original),
    lastResponse: letter.lastResponse === undefined ? null : json(letter.lastResponse),
    failedAt: pgTimestamp(letter.failedAt, indexedAt),
    escaped,
  };
}

function decodeText(value: string, escaped: boolean): string {
  if (!escaped) return value;
  const parsed: unknown = JSON.parse(value);
  if (typeof parsed !== 'string')
    throw new TypeError('an escaped delivery_dlq text column is not a JSON string');
  return parsed;
}

function decodeJson(value: z.infer<typeof storedRow>['original'], escaped: boolean): unknown {
  if (!escaped) return value;
  if (typeof value !== 'string') throw new TypeError('an escaped delivery_dlq json column is not a string');
  return JSON.parse(value);
}

function decodeRow(raw: unknown): DeadLetterRow {
  const row = storedRow.parse(raw);
  const { escaped } = row;
  const nullable = (value: string | null) => (value === null ? null : decodeText(value, escaped));
  return {
    id: row.id,
    error: decodeText(row.error, escaped),
    details: decodeText(row.details, escaped),
    topic: row.topic,
    integration_id: row.integration_id,
    message_id: nullable(row.message_id),
    original_key: nullable(row.original_key),
    original: decodeJson(row.original, escaped) as JsonValue,
    last_response: lastResponseSchema.parse(
      row.last_response === null ? null : decodeJson(row.last_response, escaped),
    ),
    attempts: row.attempts,
    failed_at: row.failed_at,
    replayed_at: row.replayed_at,
    replay_count: row.replay_count,
  };
}

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
  /**
   * Indexes dead letters consumed from `dlq-events`; idempotent on their bus position. Any valid letter can be
   * stored: text PostgreSQL refuses (U+0000, unpaired surrogates) is escaped losslessly, a `failedAt` outside
   * what it accepts is replaced by the time of indexing.
   */
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
    return rows.map(decodeRow);
  }
  return {
    async index(letters) {
      if (letters.length === 0) return 0;
      const indexedAt = new Date();
      const rows = letters.map((l) => rowValues(l.letter, indexedAt));
      const { rowCount } = await db.query(
        `INSERT INTO delivery_dlq (dlq_partition, dlq_offset, error, details, topic, integration_id, message_id,
                                   original_key, original, last_response, attempts, failed_at, escaped)
         SELECT p, o, e, d, t, i, m, k, orig::jsonb, lr::jsonb, a, f, esc
         FROM unnest($1::integer[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::text[], $10::text[], $11::integer[], $12::timestamptz[], $13::boolean[])
              AS x(p, o, e, d, t, i, m, k, orig, lr, a, f, esc)
         ON CONFLICT (dlq_partition, dlq_offset) DO NOTHING`,
        [
          letters.map((l) => l.partition),
          letters.map((l) => l.offset),
          rows.map((r) => r.error),
          rows.map((r) => r.details),
          letters.map((l) => l.letter.topic),
          letters.map((l) => l.letter.integrationId ?? null),
          rows.map((r) => r.messageId),
          rows.map((r) => r.originalKey),
          rows.map((r) => r.original),
          rows.map((r) => r.lastResponse),
          letters.map((l) => l.letter.attempts ?? null),
          rows.map((r) => r.failedAt),
          rows.map((r) => r.escaped),
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
