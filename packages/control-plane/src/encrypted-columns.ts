import type { EncryptionContext } from '@signal/crypto';
import type { Queryable } from '@signal/store';

/**
 * One registry of every encrypted column in the database. The re-encryption job walks it, `/health/crypto`
 * and `signal-cli` count records per key id through it, and the repositories build their encryption contexts
 * with the same functions, so a writer and the job can never disagree about a context.
 *
 * Each column stores the v1 text form (or, for rows written before encryption existed, a legacy plaintext
 * value without the `v1.` prefix) and has a key-id column beside it (hex, NULL for plaintext) with an index on
 * (key id, id). Later features (identity traits) add entries here together with their migrations.
 */
export interface EncryptedColumn {
  /** `table.column`, the name used in job progress, failures and logs. */
  readonly name: string;
  readonly table: string;
  /** Primary key column (text), walked in ascending order by the job. */
  readonly idColumn: string;
  /** The ciphertext column (TEXT, v1 text form). */
  readonly column: string;
  /** The hex key id column beside it. */
  readonly keyIdColumn: string;
  /** Further columns of the row the context needs (selected alongside the id). */
  readonly contextColumns: readonly string[];
  /** The context the value was sealed under, rebuilt from the row (trusted facts, never the ciphertext). */
  context(row: EncryptedRowFacts): EncryptionContext;
}

/** The id and the `contextColumns` of one row, as read from the database. */
export interface EncryptedRowFacts {
  readonly id: string;
  readonly columns: Readonly<Record<string, unknown>>;
}

/** HMAC secret of a pipeline (one row per secret generation). */
export function pipelineSecretContext(secretId: string): EncryptionContext {
  return {
    purpose: 'pipeline-hmac-secret',
    dataClass: 'credentials',
    table: 'pipeline_secrets',
    column: 'secret',
    rowId: secretId,
  };
}

/** Vendor credentials of an integration (JSON object of strings). */
export function integrationCredentialsContext(integrationId: string): EncryptionContext {
  return {
    purpose: 'integration-credentials',
    dataClass: 'credentials',
    table: 'integrations',
    column: 'credentials',
    rowId: integrationId,
  };
}

export const PIPELINE_SECRETS_COLUMN: EncryptedColumn = Object.freeze({
  name: 'pipeline_secrets.secret',
  table: 'pipeline_secrets',
  idColumn: 'id',
  column: 'secret',
  keyIdColumn: 'key_id',
  contextColumns: Object.freeze([]),
  context: (row: EncryptedRowFacts) => pipelineSecretContext(row.id),
});

export const INTEGRATION_CREDENTIALS_COLUMN: EncryptedColumn = Object.freeze({
  name: 'integrations.credentials',
  table: 'integrations',
  idColumn: 'id',
  column: 'credentials',
  keyIdColumn: 'credentials_key_id',
  contextColumns: Object.freeze([]),
  context: (row: EncryptedRowFacts) => integrationCredentialsContext(row.id),
});

export const ENCRYPTED_COLUMNS: readonly EncryptedColumn[] = Object.freeze([
  PIPELINE_SECRETS_COLUMN,
  INTEGRATION_CREDENTIALS_COLUMN,
]);

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The column's identifiers, checked. They come from this registry, never from input, but SQL is built from
 * them, so a bad entry fails loudly instead of producing odd SQL.
 */
export function columnIdentifiers(entry: EncryptedColumn): {
  readonly table: string;
  readonly id: string;
  readonly column: string;
  readonly keyId: string;
  readonly context: readonly string[];
} {
  for (const name of [
    entry.table,
    entry.idColumn,
    entry.column,
    entry.keyIdColumn,
    ...entry.contextColumns,
  ]) {
    if (!IDENTIFIER.test(name)) throw new Error(`encrypted column registry: "${name}" is not an identifier`);
  }
  return {
    table: entry.table,
    id: entry.idColumn,
    column: entry.column,
    keyId: entry.keyIdColumn,
    context: entry.contextColumns,
  };
}

/** Records per key id over every registered column (`null` = legacy plaintext). Uses the key-id indexes. */
export async function countRecordsByKeyId(
  db: Pick<Queryable, 'query'>,
  columns: readonly EncryptedColumn[] = ENCRYPTED_COLUMNS,
): Promise<ReadonlyMap<string | null, number>> {
  const counts = new Map<string | null, number>();
  for (const entry of columns) {
    const c = columnIdentifiers(entry);
    const { rows } = await db.query<{ key_id: string | null; n: string }>(
      `SELECT ${c.keyId} AS key_id, count(*) AS n FROM ${c.table} WHERE ${c.column} IS NOT NULL GROUP BY ${c.keyId}`,
    );
    for (const row of rows) counts.set(row.key_id, (counts.get(row.key_id) ?? 0) + Number(row.n));
  }
  return counts;
}

/**
 * Records still sealed under `keyId` (e.g. the previous key, for `/health/crypto` and the runbook's "drop the
 * previous key when none is left"). One index range count per column.
 */
export async function countRecordsUnderKey(
  db: Pick<Queryable, 'query'>,
  keyId: string,
  columns: readonly EncryptedColumn[] = ENCRYPTED_COLUMNS,
): Promise<number> {
  let total = 0;
  for (const entry of columns) {
    const c = columnIdentifiers(entry);
    const { rows } = await db.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${c.table} WHERE ${c.keyId} = $1`,
      [keyId],
    );
    total += Number(rows[0]?.n ?? 0);
  }
  return total;
}

/**
 * Records not under the current key(s): other keys and legacy plaintext (what a re-encryption job has to do).
 * Envelope mode has one current key per data class (their active DEKs), hence the list.
 */
export async function countRecordsPendingReencryption(
  db: Pick<Queryable, 'query'>,
  currentKeyIds: string | readonly string[],
  columns: readonly EncryptedColumn[] = ENCRYPTED_COLUMNS,
  options: {
    /**
     * SQL over a (quoted) key-id column that is true for further current keys too many to list: envelope
     * mode's per-subject DEKs (`activeSubjectDekSql` of `@signal/kms`).
     */
    readonly alsoCurrent?: (keyIdColumn: string) => string;
  } = {},
): Promise<number> {
  const current = typeof currentKeyIds === 'string' ? [currentKeyIds] : [...currentKeyIds];
  let total = 0;
  for (const entry of columns) {
    const c = columnIdentifiers(entry);
    const alsoCurrent = options.alsoCurrent === undefined ? '' : ` OR ${options.alsoCurrent(c.keyId)}`;
    const { rows } = await db.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${c.table}
        WHERE ${c.column} IS NOT NULL AND (${c.keyId} IS NULL OR NOT (${c.keyId} = ANY($1::text[])${alsoCurrent}))`,
      [current],
    );
    total += Number(rows[0]?.n ?? 0);
  }
  return total;
}
