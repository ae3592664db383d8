import { isSealedText, openColumn, sealColumn } from '@signal/control-plane';
import { CryptoError, type CryptoErrorCode, type EncryptionContext } from '@signal/crypto';
import type { DlqMessage, JsonValue } from '@signal/events';
import type { Queryable } from '@signal/store';
import { z } from 'zod';
import { storableText } from '../pg-text';
import { type DlqCrypto, deadLetterContext } from './encrypted-columns';
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
  /**
   * Only the letters of this org: those of integrations of its pipelines (the control plane's `integrations`
   * and `pipelines`, which must be in the same database, as they are where the Management API runs). A letter
   * of an integration no org has (deleted since) or of no integration (`raw-events`) is nobody's: only the
   * operator's deployment-wide view (no `orgId`, `signal-cli dlq`) shows it. Dead-letter ids are sequential,
   * so every caller acting for an org passes it.
   */
  readonly orgId?: string;
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
  /** Entries with an id above this (a walk over every row, oldest first). */
  readonly after?: string;
}

const lastResponseSchema = z
  .object({ status: z.number().optional(), body: z.string().optional(), errorCode: z.string().optional() })
  .nullable();

const storedRow = z.object({
  id: z.string(),
  error: z.string(),
  topic: z.string(),
  integration_id: z.string().nullable(),
  message_id: z.string().nullable(),
  letter: z.string(),
  attempts: z.number().int().nullable(),
  failed_at: z.date(),
  replayed_at: z.date().nullable(),
  replay_count: z.number().int(),
  escaped: z.boolean(),
});

/**
 * The plaintext of `delivery_dlq.letter`: the parts of a letter that carry personal data. Written as the
 * letter's own values (JSON text holds any string, U+0000 and lone surrogates included, as escapes). `escaped`
 * is only ever set on a row indexed before `delivery-worker/0003`, moved here in its 0002 stored form: its
 * strings are then JSON string literals and `original` / `lastResponse` a JSON string of their JSON text.
 */
const sealedPartSchema = z.object({
  escaped: z.boolean().optional(),
  original: z.json(),
  originalKey: z.string().nullable(),
  details: z.string(),
  lastResponse: z.json().nullable(),
});
type SealedPart = z.infer<typeof sealedPartSchema>;

/** A `delivery_dlq` row as the letter was: the sealed part opened, escaped rows decoded (see `rowValues`). */
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
  /**
   * The crypto error code when the sealed part does not open here (a key this process does not hold, a
   * ciphertext copied from another row, a damaged one); `original`, `original_key`, `details` and
   * `last_response` are then empty, and a replay skips the row. Null for a readable row.
   */
  readonly unreadable: CryptoErrorCode | null;
}

const COLUMNS =
  'id::text AS id, error, topic, integration_id, message_id, letter, attempts, failed_at, replayed_at, replay_count, escaped';

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
 * The column values of one letter, for row `id`. The parts that carry personal data are sealed into `letter`
 * (`deadLetterContext`: row id and topic bound). Of the plaintext columns, `error` and `message_id` may hold
 * text PostgreSQL cannot store (`storableText`): the row is then stored escaped, those two as JSON string
 * literals (`"a\u0000b"`, plain ASCII). `topic` and `integration_id` are never escaped (the DLQ schema limits
 * them to `[A-Za-z0-9._-]`), so filters keep working.
 */
function rowValues(crypto: DlqCrypto, letter: DlqMessage, id: string, indexedAt: Date) {
  const messageId = messageIdOf(letter.original);
  const escaped = !(storableText(letter.error) && storableText(messageId ?? ''));
  const text = (value: string | null): string | null =>
    value === null || !escaped ? value : JSON.stringify(value);
  const part = {
    original: letter.original,
    originalKey: letter.originalKey ?? null,
    details: letter.details,
    lastResponse: letter.lastResponse ?? null,
  };
  const sealed = sealColumn(crypto, JSON.stringify(part), deadLetterContext(id, letter.topic));
  return {
    id,
    error: text(letter.error),
    messageId: text(messageId),
    letter: sealed.text,
    letterKeyId: sealed.keyId,
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

function decodeJson(value: z.infer<typeof sealedPartSchema>['original'], escaped: boolean): unknown {
  if (!escaped) return value;
  if (typeof value !== 'string') throw new TypeError('an escaped delivery_dlq json column is not a string');
  return JSON.parse(value);
}

/**
 * The sealed part of a row, opened. A row indexed before `delivery-worker/0003` may still hold it as plaintext
 * (no `v1.` prefix) until the worker's start-up or the re-encryption job seals it; it is read as it is. A
 * ciphertext that does not open yields its crypto error code (the crypto service has recorded
 * `crypto.decrypt_failed`), except a retryable one (`key_unavailable`: the KMS is down), which is thrown.
 */
function openPart(
  crypto: DlqCrypto,
  stored: string,
  context: EncryptionContext,
): SealedPart | CryptoErrorCode {
  let plaintext: Buffer;
  try {
    plaintext = openColumn(crypto, stored, context);
  } catch (err) {
    if (err instanceof CryptoError && !err.retryable) return err.code;
    throw err;
  }
  try {
    return sealedPartSchema.parse(JSON.parse(plaintext.toString('utf8')));
  } finally {
    plaintext.fill(0);
  }
}

function decodeRow(crypto: DlqCrypto, raw: unknown): DeadLetterRow {
  const row = storedRow.parse(raw);
  const { escaped } = row;
  const nullable = (value: string | null) => (value === null ? null : decodeText(value, escaped));
  const part = openPart(crypto, row.letter, deadLetterContext(row.id, row.topic));
  const common = {
    id: row.id,
    error: decodeText(row.error, escaped),
    topic: row.topic,
    integration_id: row.integration_id,
    message_id: nullable(row.message_id),
    attempts: row.attempts,
    failed_at: row.failed_at,
    replayed_at: row.replayed_at,
    replay_count: row.replay_count,
  };
  if (typeof part === 'string') {
    return {
      ...common,
      details: '',
      original_key: null,
      original: null,
      last_response: null,
      unreadable: part,
    };
  }
  const legacyEscaped = part.escaped === true;
  return {
    ...common,
    details: decodeText(part.details, legacyEscaped),
    original_key: part.originalKey === null ? null : decodeText(part.originalKey, legacyEscaped),
    original: decodeJson(part.original, legacyEscaped) as JsonValue,
    last_response: lastResponseSchema.parse(
      part.lastResponse === null ? null : decodeJson(part.lastResponse, legacyEscaped),
    ),
    unreadable: null,
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
    details:
      row.unreadable === null
        ? row.details
        : `the stored letter cannot be opened (${row.unreadable}); it cannot be replayed`,
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
   * Indexes dead letters consumed from `dlq-events`; idempotent on their bus position. The parts carrying
   * personal data are sealed (`delivery_dlq.letter`). Any valid letter can be stored: text PostgreSQL refuses
   * (U+0000, unpaired surrogates) in a plaintext column is escaped losslessly, a `failedAt` outside what it
   * accepts is replaced by the time of indexing.
   */
  index(letters: readonly { partition: number; offset: string; letter: DlqMessage }[]): Promise<number>;
  list(filter?: DeadLetterFilter): Promise<DeadLetterEntry[]>;
  /** One letter by id; with `orgId`, null unless it is that org's (`DeadLetterFilter.orgId`). */
  get(id: string, scope?: { readonly orgId?: string }): Promise<DeadLetterEntry | null>;
  /** Unmasked rows for a replay (never returned to a caller outside the worker). */
  forReplay(filter: DeadLetterFilter & { readonly ids?: readonly string[] }): Promise<DeadLetterRow[]>;
  markReplayed(ids: readonly string[]): Promise<void>;
  /** Every row with an id above `after`, replayed ones too, oldest first, opened (a walk over the table). */
  scan(after: string, limit: number): Promise<DeadLetterRow[]>;
  /** Deletes these rows; returns how many were there. */
  remove(ids: readonly string[]): Promise<number>;
  /** Dead letters not yet replayed (`signal_dlq_depth`). */
  depth(): Promise<number>;
  /**
   * Seals every row still holding its letter as plaintext (indexed before `delivery-worker/0003`), in batches
   * with an optimistic check (a row changed meanwhile, e.g. sealed by another worker or the re-encryption job,
   * is left as it is). Returns how many rows this call wrote.
   */
  sealLegacy(options?: { readonly batchSize?: number }): Promise<number>;
}

/**
 * The ids of the integrations of an org's pipelines (the control plane's tables, in the same database), with
 * `param` standing for the org id: what makes a dead letter or a scheduled retry an org's.
 */
export function orgIntegrationIdsSql(param: string): string {
  return `SELECT i.id FROM integrations i JOIN pipelines p ON p.id = i.pipeline_id WHERE p.org_id = ${param}`;
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
  if (filter.orgId !== undefined) add(`integration_id IN (${orgIntegrationIdsSql('?')})`, filter.orgId);
  if (filter.integrationId !== undefined) add('integration_id = ?', filter.integrationId);
  if (filter.from !== undefined) add('failed_at >= ?', filter.from);
  if (filter.to !== undefined) add('failed_at < ?', filter.to);
  if (filter.before !== undefined) add('id < ?::bigint', filter.before);
  if (filter.after !== undefined) add('id > ?::bigint', filter.after);
  if (filter.ids !== undefined) add('id = ANY(?::bigint[])', [...filter.ids]);
  if (filter.includeReplayed !== true) clauses.push('replayed_at IS NULL');
  return { sql: clauses.length === 0 ? '' : `WHERE ${clauses.join(' AND ')}`, params };
}

function limitOf(limit: number | undefined): number {
  return Math.min(1000, Math.max(1, Math.trunc(limit ?? 50)));
}

export function createDlqStore(db: Pick<Queryable, 'query'>, crypto: DlqCrypto): DlqStore {
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
    return rows.map((row) => decodeRow(crypto, row));
  }
  return {
    async index(letters) {
      if (letters.length === 0) return 0;
      const indexedAt = new Date();
      // Row ids first: the id is bound into each letter's ciphertext, so it is known before the insert. An id
      // drawn for a letter that is already indexed (ON CONFLICT) is simply never used.
      const { rows: drawn } = await db.query<{ id: string }>(
        `SELECT nextval(pg_get_serial_sequence('delivery_dlq', 'id'))::text AS id
           FROM generate_series(1, $1::integer)`,
        [letters.length],
      );
      const ids = drawn.map((r) => BigInt(r.id)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const rows = letters.map((l, i) => {
        const id = ids[i];
        if (id === undefined) throw new Error('the DLQ id sequence returned too few ids');
        return rowValues(crypto, l.letter, id.toString(), indexedAt);
      });
      const { rowCount } = await db.query(
        `INSERT INTO delivery_dlq (id, dlq_partition, dlq_offset, error, topic, integration_id, message_id,
                                   letter, letter_key_id, attempts, failed_at, escaped)
         SELECT id, p, o, e, t, i, m, l, lk, a, f, esc
         FROM unnest($1::bigint[], $2::integer[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::text[], $10::integer[], $11::timestamptz[], $12::boolean[])
              AS x(id, p, o, e, t, i, m, l, lk, a, f, esc)
         ON CONFLICT (dlq_partition, dlq_offset) DO NOTHING`,
        [
          rows.map((r) => r.id),
          letters.map((l) => l.partition),
          letters.map((l) => l.offset),
          rows.map((r) => r.error),
          letters.map((l) => l.letter.topic),
          letters.map((l) => l.letter.integrationId ?? null),
          rows.map((r) => r.messageId),
          rows.map((r) => r.letter),
          rows.map((r) => r.letterKeyId),
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
    async get(id, scope = {}) {
      if (!/^\d{1,19}$/.test(id)) return null;
      const rows = await select(
        {
          ids: [id],
          includeReplayed: true,
          limit: 1,
          ...(scope.orgId === undefined ? {} : { orgId: scope.orgId }),
        },
        'ASC',
      );
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
    scan: (after, limit) => select({ after, includeReplayed: true, limit }, 'ASC'),
    async remove(ids) {
      if (ids.length === 0) return 0;
      const { rowCount } = await db.query('DELETE FROM delivery_dlq WHERE id = ANY($1::bigint[])', [
        [...ids],
      ]);
      return rowCount;
    },
    async depth() {
      const { rows } = await db.query<{ n: string }>(
        'SELECT count(*)::text AS n FROM delivery_dlq WHERE replayed_at IS NULL',
      );
      return Number(rows[0]?.n ?? 0);
    },
    async sealLegacy(options = {}) {
      const batchSize = Math.min(5000, Math.max(1, Math.trunc(options.batchSize ?? 500)));
      let after = '';
      let written = 0;
      for (;;) {
        const { rows } = await db.query<{ id_text: string; topic: string; letter: string }>(
          `SELECT id_text, topic, letter FROM delivery_dlq
            WHERE letter_key_id IS NULL AND id_text > $1 ORDER BY id_text LIMIT $2`,
          [after, batchSize],
        );
        const last = rows.at(-1);
        if (last === undefined) return written;
        after = last.id_text;
        // A row that is sealed but unlabelled only gets its key id.
        const next = rows.map((r) =>
          isSealedText(r.letter)
            ? r.letter
            : sealColumn(crypto, r.letter, deadLetterContext(r.id_text, r.topic)).text,
        );
        const { rowCount } = await db.query(
          `UPDATE delivery_dlq AS t SET letter = v.next, letter_key_id = v.key_id
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS v(id, old, next, key_id)
            WHERE t.id_text = v.id AND t.letter = v.old AND t.letter_key_id IS NULL`,
          [
            rows.map((r) => r.id_text),
            rows.map((r) => r.letter),
            next,
            next.map((text) => crypto.keyIdOf(text)),
          ],
        );
        written += rowCount;
      }
    },
  };
}
