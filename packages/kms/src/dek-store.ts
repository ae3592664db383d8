import type { Migration, Queryable } from '@signal/store';
import { z } from 'zod';
import type { KmsProviderName, WrappedKey } from './provider';

/**
 * Wrapped DEKs, one row each. The id is the v1 ciphertext's 16-byte key id (hex), so a ciphertext names its
 * DEK. Exactly one `active` DEK per (data class, subject): it seals; `decrypt-only` DEKs open what they sealed
 * until the re-encryption job has moved it; `destroyed` rows keep their id and metadata (for the audit trail
 * and so a ciphertext under them fails as `key_destroyed`), but their wrapped key and commitment are gone.
 */
const deks = `
CREATE TABLE crypto_deks (
  id            text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
  data_class    text NOT NULL CHECK (data_class IN ('general', 'credentials', 'identity', 'tokens', 'bus')),
  -- Per-subject identity DEKs (crypto-shredding); '' for the data class's own DEKs.
  subject       text NOT NULL DEFAULT '',
  state         text NOT NULL CHECK (state IN ('active', 'decrypt-only', 'destroyed')),
  provider      text NOT NULL,
  kek_ref       text NOT NULL,
  wrapped       bytea,
  commitment    bytea,
  created_at    timestamptz NOT NULL DEFAULT now(),
  rotated_at    timestamptz,
  destroyed_at  timestamptz,
  CHECK ((state = 'destroyed') = (wrapped IS NULL AND commitment IS NULL))
);
CREATE UNIQUE INDEX crypto_deks_one_active ON crypto_deks (data_class, subject) WHERE state = 'active';
CREATE INDEX crypto_deks_subject ON crypto_deks (subject) WHERE subject <> '';
`;

/**
 * SQL true when the key-id column `keyIdColumn` (a trusted identifier, never input) names the active DEK of a
 * subject (crypto-shredding). Such a record is current: the re-encryption job must leave it under its
 * subject's DEK, never move it to the class DEK (erasure would then no longer erase it).
 */
export function activeSubjectDekSql(keyIdColumn: string): string {
  return `EXISTS (SELECT 1 FROM crypto_deks d WHERE d.id = ${keyIdColumn} AND d.subject <> '' AND d.state = 'active')`;
}

export const kmsMigrations: readonly Migration[] = Object.freeze([{ id: 'kms/0001_deks', sql: deks }]);

/** `general` is the DEK of contexts without a data class. */
export const DEK_CLASSES = ['general', 'credentials', 'identity', 'tokens', 'bus'] as const;
export type DekClass = (typeof DEK_CLASSES)[number];
export type DekState = 'active' | 'decrypt-only' | 'destroyed';

const rowSchema = z.object({
  id: z.string().regex(/^[0-9a-f]{32}$/),
  data_class: z.enum(DEK_CLASSES),
  subject: z.string(),
  state: z.enum(['active', 'decrypt-only', 'destroyed']),
  provider: z.string(),
  kek_ref: z.string(),
  wrapped: z.instanceof(Uint8Array).nullable(),
  commitment: z.instanceof(Uint8Array).nullable(),
  created_at: z.date(),
  rotated_at: z.date().nullable(),
});

export interface DekRow {
  readonly id: string;
  readonly dataClass: DekClass;
  /** '' for a data class's own DEK. */
  readonly subject: string;
  readonly state: DekState;
  readonly provider: string;
  readonly kekRef: string;
  /** Absent once destroyed. */
  readonly wrapped: WrappedKey | null;
  readonly commitment: Buffer | null;
  readonly createdAt: Date;
  readonly rotatedAt: Date | null;
}

function toRow(raw: unknown): DekRow {
  const row = rowSchema.parse(raw);
  return {
    id: row.id,
    dataClass: row.data_class,
    subject: row.subject,
    state: row.state,
    provider: row.provider,
    kekRef: row.kek_ref,
    wrapped: row.wrapped === null ? null : { ciphertext: Buffer.from(row.wrapped), kekRef: row.kek_ref },
    commitment: row.commitment === null ? null : Buffer.from(row.commitment),
    createdAt: row.created_at,
    rotatedAt: row.rotated_at,
  };
}

const COLUMNS =
  'id, data_class, subject, state, provider, kek_ref, wrapped, commitment, created_at, rotated_at';

export interface NewDek {
  readonly id: string;
  readonly dataClass: DekClass;
  readonly subject: string;
  readonly provider: KmsProviderName;
  readonly wrapped: WrappedKey;
  readonly commitment: Uint8Array;
}

/** SQL over the `crypto_deks` table (migrated with `kmsMigrations`). Rows are validated on the way in. */
export class DekStore {
  readonly #db: Queryable;

  constructor(db: Queryable) {
    this.#db = db;
  }

  async get(id: string): Promise<DekRow | undefined> {
    const result = await this.#db.query(`SELECT ${COLUMNS} FROM crypto_deks WHERE id = $1`, [id]);
    return result.rows[0] === undefined ? undefined : toRow(result.rows[0]);
  }

  async active(dataClass: DekClass, subject = ''): Promise<DekRow | undefined> {
    const result = await this.#db.query(
      `SELECT ${COLUMNS} FROM crypto_deks WHERE data_class = $1 AND subject = $2 AND state = 'active'`,
      [dataClass, subject],
    );
    return result.rows[0] === undefined ? undefined : toRow(result.rows[0]);
  }

  /** Inserts an active DEK unless (data class, subject) has one already; false when another process won. */
  async insertActive(dek: NewDek): Promise<boolean> {
    const result = await this.#db.query(
      `INSERT INTO crypto_deks (id, data_class, subject, state, provider, kek_ref, wrapped, commitment)
       VALUES ($1, $2, $3, 'active', $4, $5, $6, $7)
       ON CONFLICT (data_class, subject) WHERE state = 'active' DO NOTHING`,
      [
        dek.id,
        dek.dataClass,
        dek.subject,
        dek.provider,
        dek.wrapped.kekRef,
        Buffer.from(dek.wrapped.ciphertext),
        Buffer.from(dek.commitment),
      ],
    );
    return result.rowCount === 1;
  }

  /** DEK rotation: the active DEK of (class, subject) becomes decrypt-only and `next` becomes active, atomically. */
  async rotate(next: NewDek, run: <T>(fn: (tx: Queryable) => Promise<T>) => Promise<T>): Promise<void> {
    await run(async (tx) => {
      await tx.query(
        `UPDATE crypto_deks SET state = 'decrypt-only', rotated_at = now()
         WHERE data_class = $1 AND subject = $2 AND state = 'active'`,
        [next.dataClass, next.subject],
      );
      await new DekStore(tx).insertActive(next);
    });
  }

  /** Ids of DEKs that can still open data (active and decrypt-only), optionally only a class's own ones. */
  async usable(options: { readonly classDeksOnly?: boolean } = {}): Promise<DekRow[]> {
    const result = await this.#db.query(
      `SELECT ${COLUMNS} FROM crypto_deks WHERE state <> 'destroyed' ${options.classDeksOnly ? "AND subject = ''" : ''} ORDER BY id`,
    );
    return result.rows.map(toRow);
  }

  /** A page of undestroyed DEKs after `afterId` (keyset pagination), for KEK rotation. */
  async page(afterId: string, limit: number): Promise<DekRow[]> {
    const result = await this.#db.query(
      `SELECT ${COLUMNS} FROM crypto_deks WHERE state <> 'destroyed' AND id > $1 ORDER BY id LIMIT $2`,
      [afterId, limit],
    );
    return result.rows.map(toRow);
  }

  /** KEK rotation: replaces the wrapped form if the row still holds `previous` (optimistic). */
  async rewrapped(id: string, previous: WrappedKey, next: WrappedKey): Promise<boolean> {
    const result = await this.#db.query(
      `UPDATE crypto_deks SET wrapped = $3, kek_ref = $4 WHERE id = $1 AND wrapped = $2 AND state <> 'destroyed'`,
      [id, Buffer.from(previous.ciphertext), Buffer.from(next.ciphertext), next.kekRef],
    );
    return result.rowCount === 1;
  }

  /** Crypto-shredding: forgets the wrapped key and commitment of every DEK of `subject`; returns their ids. */
  async destroySubject(subject: string): Promise<string[]> {
    const result = await this.#db.query(
      `UPDATE crypto_deks SET state = 'destroyed', wrapped = NULL, commitment = NULL, destroyed_at = now()
       WHERE subject = $1 AND state <> 'destroyed' RETURNING id`,
      [subject],
    );
    return result.rows.map((row) => z.object({ id: z.string() }).parse(row).id);
  }

  /** Which of these DEK ids another process has destroyed (each process checks the ones it caches). */
  async destroyedAmong(ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const result = await this.#db.query(
      `SELECT id FROM crypto_deks WHERE id = ANY($1::text[]) AND state = 'destroyed'`,
      [[...ids]],
    );
    return result.rows.map((row) => z.object({ id: z.string() }).parse(row).id);
  }

  /** Number of undestroyed DEKs per state, for health. */
  async counts(): Promise<Record<string, number>> {
    const result = await this.#db.query(`SELECT state, count(*)::int AS n FROM crypto_deks GROUP BY state`);
    const counts: Record<string, number> = {};
    for (const raw of result.rows) {
      const row = z.object({ state: z.string(), n: z.number() }).parse(raw);
      counts[row.state] = row.n;
    }
    return counts;
  }
}
