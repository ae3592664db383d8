import type { Cache } from '@signal/cache';
import {
  type ConsentCategory,
  ConsentError,
  DEFAULT_USER_CONSENT_TTL_MS,
  DEFAULT_WITHDRAWAL_TTL_MS,
  mergeChoices,
  mergeRecords,
  recordWithdraws,
  storedUserConsentSchema,
  subjectDigest,
  type UserChoice,
  type UserConsentRead,
  type UserConsentStore,
  type UserConsentWrite,
} from '@signal/consent';
import { type Database, isStoreError } from '@signal/store';
import { z } from 'zod';

/**
 * Consents of record (`@signal/consent`, `UserConsentStore`) kept in the database, table
 * `identity_consent_of_record` (identity-hub/0004), with copies in the cache for the delivery workers' reads.
 *
 * Why the database: a person's objection to direct marketing is a record, not a cache entry. The embedded
 * cache lives in the process's memory (a restart would forget every withdrawal, and its budget evicts), and a
 * Redis may run without persistence or with an eviction policy: a withdrawal lost there would let the
 * person's events reach the vendors again, silently. The database is where every other record of ours lives,
 * is backed up with it, and keeps the row until it expires.
 *
 * - **Write** (the event processor, per signed `consent_update`): one transaction that locks the person's row,
 *   merges the choices into it (per category the later wins, a withdrawal wins a tie: `mergeChoices`), and
 *   sets its expiry from the result (`ttlMs` after this change, `withdrawalTtlMs` if it holds a withdrawal).
 *   The cached copy is replaced while the row is still locked, so two writers of one person replace it in the
 *   order they committed (replaced after the commit, the earlier writer's copy could land last and hide the
 *   later withdrawal); if the commit then fails, the copy is deleted.
 * - **Read** (the delivery worker, once per person and batch): the cached copy if there is one, else the row,
 *   which is then cached for `cacheTtlMs` (also when there is none: most people have no record, and their
 *   events must not each cost a query). A fill only adds a copy where none is (`setIfAbsent`), so it never
 *   replaces the newer copy a write put there meanwhile. Only if the cache fails during a write (neither
 *   replaced nor deleted) is a copy older than the write served, for at most `cacheTtlMs` (a minute by
 *   default). A cache that fails is skipped: the database answers alone.
 * - **Upgrade**: before this table, records were kept in the cache only (`consent:v2:u:…`, also where a
 *   processor not yet upgraded writes them). Such a copy is merged into the row whenever the person's row is
 *   written or read from the database and it adds anything (merging is idempotent: `mergeRecords`), so
 *   nothing recorded before the upgrade is lost, nor during a rolling upgrade in the documented order
 *   (workers first: an old processor's choice then reaches the new workers at their next read of the row,
 *   within `cacheTtlMs`). An unreadable old copy of a person without a row reads `corrupt`, as it did.
 * - **Unreadable** (a row or copy that fails validation): a row reads `corrupt` (stage 2 then withdraws every
 *   non-essential category for the person); a write replaces it, as its choices are the only ones known to be
 *   theirs. A copy that fails validation is ignored and the row read instead.
 * - **Expiry**: a row past `expires_at` reads as missing; `purgeExpired` deletes such rows (the identity hub
 *   runs it hourly with the erasure records' purge).
 */
export interface ConsentOfRecordOptions {
  readonly db: Pick<Database, 'query' | 'transaction'>;
  /** Holds copies for reads; omitted: every read asks the database. */
  readonly cache?: Pick<Cache, 'get' | 'set' | 'setIfAbsent' | 'delete'>;
  /** How long a read's copy is served from the cache (default 60 s). */
  readonly cacheTtlMs?: number;
  /** A record of grants only is kept this long after its last change (default 395 days). */
  readonly ttlMs?: number;
  /** A record holding a withdrawal is kept this long after its last change (default 10 years). */
  readonly withdrawalTtlMs?: number;
  /** Where records written before 0004 were kept, in the cache; null: do not look. Default `consent:v2:u:`. */
  readonly legacyKeyPrefix?: string | null;
  readonly logger?: { warn(obj: Record<string, unknown>, msg: string): void };
  /** ms since the epoch; injectable for tests. */
  readonly now?: () => number;
}

export interface ConsentOfRecord extends UserConsentStore {
  /** Deletes the rows past their expiry; returns how many. */
  purgeExpired(): Promise<number>;
}

/** Copies in the cache (the `consent:` family, evicted first when the embedded cache is full). */
const CACHE_PREFIX = 'consent:v3:u:';
const DEFAULT_CACHE_TTL_MS = 60_000;
const UNDEFINED_TABLE = '42P01';

type Categories = Readonly<Partial<Record<ConsentCategory, UserChoice>>>;

const rowSchema = z.object({ categories: z.unknown(), expires_at: z.date() });

/** An old cache-only record that is there but does not parse. */
const UNREADABLE = 'unreadable';

/** A record's JSON, as stored in the row and in a copy. */
function serialise(categories: Categories): string {
  return JSON.stringify({ v: 1, categories });
}

function parseRecord(json: unknown): Categories | undefined {
  const parsed = storedUserConsentSchema.safeParse(json);
  return parsed.success ? parsed.data.categories : undefined;
}

function parseText(text: string): Categories | undefined {
  try {
    return parseRecord(JSON.parse(text));
  } catch {
    return undefined;
  }
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new ConsentError('consent_invalid_argument', `${name} must be a positive integer number of ms`);
  }
  return value;
}

export function createConsentOfRecord(options: ConsentOfRecordOptions): ConsentOfRecord {
  const { db, cache, logger } = options;
  const now = options.now ?? Date.now;
  const cacheTtlMs = positiveInteger('cacheTtlMs', options.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS);
  const ttlMs = positiveInteger('ttlMs', options.ttlMs ?? DEFAULT_USER_CONSENT_TTL_MS);
  const withdrawalTtlMs = Math.max(
    ttlMs,
    positiveInteger('withdrawalTtlMs', options.withdrawalTtlMs ?? DEFAULT_WITHDRAWAL_TTL_MS),
  );
  const legacyPrefix = options.legacyKeyPrefix === undefined ? 'consent:v2:u:' : options.legacyKeyPrefix;

  const digestOf = (org: string, subject: string): string => {
    if (org === '' || subject === '') {
      throw new ConsentError('consent_invalid_argument', 'org and subject must not be empty');
    }
    return subjectDigest(org, subject);
  };

  /** A cache call that may fail: the database answers alone then. */
  async function cached<T>(call: () => Promise<T>, fallback: T): Promise<T> {
    if (cache === undefined) return fallback;
    try {
      return await call();
    } catch (err) {
      logger?.warn({ err: err instanceof Error ? err.name : 'unknown' }, 'consent of record: cache failed');
      return fallback;
    }
  }

  /** The cache-only record of before 0004: none, its categories, or `UNREADABLE`. */
  async function legacyRecord(digest: string): Promise<Categories | typeof UNREADABLE | undefined> {
    if (legacyPrefix === null || cache === undefined) return undefined;
    const text = await cached(() => cache.get(`${legacyPrefix}${digest}`), null);
    if (text === null) return undefined;
    const categories = parseText(text);
    if (categories === undefined) return UNREADABLE;
    return Object.keys(categories).length === 0 ? undefined : categories;
  }

  function unavailable(err: unknown, op: string): { readonly status: 'unavailable' } {
    const missingTable = isStoreError(err) && err.sqlState === UNDEFINED_TABLE;
    logger?.warn(
      missingTable
        ? { op, problem: 'the table identity_consent_of_record is missing: run `signal-cli migrate`' }
        : {
            op,
            err: err instanceof Error ? err.name : 'unknown',
            ...(isStoreError(err) ? { code: err.code } : {}),
          },
      'consent of record: database unavailable',
    );
    return { status: 'unavailable' };
  }

  /**
   * Replaces the person's copy (inside the write's transaction, the row locked); deletes it when that fails.
   * Returns false if neither worked: an older copy may then be served until it lapses.
   */
  async function replaceCopy(key: string, categories: Categories): Promise<boolean> {
    if (cache === undefined) return true;
    const replaced = await cached(async () => {
      await cache.set(key, serialise(categories), { ttlMs: cacheTtlMs });
      return true;
    }, false);
    return replaced || (await cached(() => cache.delete(key).then(() => true), false));
  }

  /**
   * Merges `choices` (or, with `choices` undefined, only a legacy copy) into the row, in one transaction with
   * the row locked: concurrent writers of one person queue, and none undoes another's category.
   */
  async function write(
    org: string,
    digest: string,
    change: {
      readonly choices: Readonly<Partial<Record<ConsentCategory, boolean>>>;
      readonly at: number;
    } | null,
    legacy: Categories | undefined,
  ): Promise<{ status: 'written' | 'stale'; categories: Categories }> {
    const key = `${CACHE_PREFIX}${digest}`;
    let copyTouched = false;
    try {
      return await db.transaction(async (tx) => {
        const at = now();
        // One statement that makes the row if it is new (empty, expired at once) and locks it either way,
        // returning what it held: two processors recording a new person's first choices queue here, and no
        // purge can take the row away between a check and a lock.
        const { rows } = await tx.query(
          `INSERT INTO identity_consent_of_record AS r (org_id, subject_digest, categories, updated_at, expires_at)
           VALUES ($1, $2, '{"v":1,"categories":{}}', $3, $3)
           ON CONFLICT (org_id, subject_digest) DO UPDATE SET org_id = r.org_id
           RETURNING r.categories, r.expires_at`,
          [org, digest, new Date(at)],
        );
        const row = rowSchema.parse(rows[0]);
        const live = row.expires_at.getTime() > at;
        // Expired: nothing of it holds any more. Unreadable: replaced, these choices are all that is known.
        const held = (live ? parseRecord(row.categories) : undefined) ?? {};
        let merged = legacy === undefined ? { categories: held, changed: false } : mergeRecords(held, legacy);
        if (change !== null) {
          const next = mergeChoices(merged.categories, change.choices, change.at);
          merged = { categories: next.categories, changed: merged.changed || next.changed };
        }
        if (!merged.changed && live) return { status: 'stale', categories: merged.categories };
        const expiresAt = at + (recordWithdraws(merged.categories) ? withdrawalTtlMs : ttlMs);
        await tx.query(
          `UPDATE identity_consent_of_record SET categories = $3::jsonb, updated_at = $4, expires_at = $5
            WHERE org_id = $1 AND subject_digest = $2`,
          [org, digest, serialise(merged.categories), new Date(at), new Date(expiresAt)],
        );
        // Still locked: a later writer of this person replaces the copy only after this one did.
        copyTouched = true;
        if (!(await replaceCopy(key, merged.categories))) {
          logger?.warn(
            {},
            'consent of record: cached copy neither replaced nor deleted; it lapses with its TTL',
          );
        }
        return { status: merged.changed ? 'written' : 'stale', categories: merged.categories };
      });
    } catch (err) {
      // The copy may hold what did not commit: gone, so the next read asks the database.
      if (copyTouched) await cached(() => cache?.delete(key) ?? Promise.resolve(false), false);
      throw err;
    }
  }

  async function readRow(org: string, digest: string): Promise<UserConsentRead> {
    const { rows } = await db.query(
      `SELECT categories, expires_at FROM identity_consent_of_record
        WHERE org_id = $1 AND subject_digest = $2 AND expires_at > $3`,
      [org, digest, new Date(now())],
    );
    const row = rows[0];
    if (row === undefined) return { status: 'missing' };
    const parsed = rowSchema.safeParse(row);
    const categories = parsed.success ? parseRecord(parsed.data.categories) : undefined;
    if (categories === undefined) {
      logger?.warn({ problem: 'schema' }, 'consent of record: stored record unreadable');
      return { status: 'corrupt' };
    }
    return { status: 'found', record: { categories } };
  }

  return {
    async get(org, subject) {
      const digest = digestOf(org, subject);
      const key = `${CACHE_PREFIX}${digest}`;
      const copy = await cached(() => cache?.get(key) ?? Promise.resolve(null), null);
      const fromCopy = copy === null ? undefined : parseText(copy);
      if (fromCopy !== undefined) {
        return Object.keys(fromCopy).length === 0
          ? { status: 'missing' }
          : { status: 'found', record: { categories: fromCopy } };
      }
      let read: UserConsentRead;
      try {
        read = await readRow(org, digest);
        // A cache-only copy of before 0004 (or of a processor not yet upgraded): merged in when it adds anything.
        const legacy = await legacyRecord(digest);
        const held = read.status === 'found' ? read.record.categories : {};
        if (legacy === UNREADABLE) {
          // As the cache-only store read it: fail closed, until a signed choice writes the row.
          if (read.status === 'missing') return { status: 'corrupt' };
        } else if (legacy !== undefined && read.status !== 'corrupt' && mergeRecords(held, legacy).changed) {
          const moved = await write(org, digest, null, legacy);
          read = { status: 'found', record: { categories: moved.categories } };
        }
      } catch (err) {
        return unavailable(err, 'read');
      }
      if (read.status === 'found' || read.status === 'missing') {
        const categories = read.status === 'found' ? read.record.categories : {};
        await cached(
          () => cache?.setIfAbsent(key, serialise(categories), cacheTtlMs) ?? Promise.resolve(false),
          false,
        );
      }
      return read;
    },

    async record(org, subject, choices, at): Promise<UserConsentWrite> {
      const digest = digestOf(org, subject);
      // Checked before anything is written (mergeChoices checks it too, inside the transaction).
      mergeChoices({}, {}, at);
      // An unreadable old copy is replaced: these choices are the only ones known to be the person's.
      const legacy = await legacyRecord(digest);
      try {
        const result = await write(org, digest, { choices, at }, legacy === UNREADABLE ? undefined : legacy);
        return { status: result.status };
      } catch (err) {
        return unavailable(err, 'write');
      }
    },

    async purgeExpired() {
      const { rowCount } = await db.query('DELETE FROM identity_consent_of_record WHERE expires_at <= $1', [
        new Date(now()),
      ]);
      return rowCount;
    },
  };
}
