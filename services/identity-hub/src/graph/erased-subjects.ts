import type { CryptoService } from '@signal/crypto';
import type { ErasureDigests } from '@signal/events';
import { isStoreError, type Queryable } from '@signal/store';
import { z } from 'zod';
import { type BlindIndex, loadBlindIndex, readBlindIndex } from './blind-index';
import { ERASURE_CLOCK_MARGIN_MS } from './identity-graph';

/**
 * The identity graph's erasure records (`identity_erasures`, and the org-blind `identity_erasures_legacy`
 * until they expire), held in memory for a process that must not send an erased person's events on: the
 * delivery worker, right before an event would reach a vendor. An erasure (`DELETE /v1/admin/identity/{id}`)
 * deletes the graph, the person's dead letters and scheduled retries; their events received before it that
 * are still on the bus (raw events not yet processed, delivery messages behind a slow or failing vendor) are
 * dropped here, by the same rule the graph uses to keep them from rebuilding the profile: received before
 * the erasure plus `ERASURE_CLOCK_MARGIN_MS`. Events received later are new collection, governed by consent.
 *
 * The records are keyed digests (no id in the clear), so an event's ids are digested with the blind-index key
 * to look them up; that happens only for events of an org that has records. `refresh` asks for the records'
 * count and the sum of their erasure times, and re-reads the whole table (one row per erased identifier for
 * the record retention, 30 days by default) only when they changed: a new erasure, a re-erasure, an expiry.
 * Until the first refresh and while the tables or the key do not exist yet, nothing counts as erased.
 */
export interface ErasedSubjects {
  /**
   * Whether an event of `org` is of an erased person and was received before the erasure: by its own ids, or
   * by `digests` (`erasureDigestsOf` of the ids it arrived with, carried by a delivery message whose ids a
   * rule or pipeline changed).
   */
  erasedBefore(event: ErasableEvent, digests?: ErasureDigests): boolean;
  /**
   * The erasure digests of an event's ids, for a message that goes on without them (hashed, stripped):
   * what an erasure of that person would record, so a later `erasedBefore` matches it. Undefined until the
   * blind-index key has been read (none yet: the identity hub has not started, nothing has been erased).
   */
  erasureDigestsOf(event: ErasableEvent): ErasureDigests | undefined;
  /**
   * The key of the person's consent of record (`BlindIndex.consentSubject`) for a user id of `org`, for the
   * processor to write it and to put on the person's delivery messages (the worker never sees the user id
   * before PII rules). Undefined until the blind-index key has been read, as `erasureDigestsOf`.
   */
  consentSubjectOf(org: string, userId: string): string | undefined;
  /**
   * Re-reads the records. Throws when they cannot be read (the last view stays in force). Resolves with what
   * it found: `loaded`; `no_tables` (the identity migrations are not in this database: nothing can be
   * checked, which the caller should say loudly); `no_key` (no blind-index key yet: the identity hub has not
   * started, so nothing can have been erased).
   */
  refresh(): Promise<ErasureViewStatus>;
}

export type ErasureViewStatus = 'loaded' | 'no_tables' | 'no_key';

/** What `erasedBefore` reads of an event (a `CanonicalEvent` has it). */
export interface ErasableEvent {
  readonly org: string;
  readonly anonymousId?: string | undefined;
  readonly userId?: string | undefined;
  /** ISO 8601; an unreadable one cannot prove the event came after the erasure. */
  readonly receivedAt: string;
}

export interface ErasedSubjectsOptions {
  readonly db: Pick<Queryable, 'query'>;
  /** Opens the blind-index key (`identity_index_keys`); the process's crypto service. */
  readonly crypto: Pick<CryptoService, 'openText'>;
}

const recordRow = z.object({
  org_id: z.string().nullable(),
  kind: z.string(),
  digest: z.string(),
  erased_at: z.date(),
});

const fingerprintRow = z.object({ fingerprint: z.string() });

/** SQLSTATE 42P01: the identity tables do not exist in this database (yet). */
const UNDEFINED_TABLE = '42P01';

interface View {
  readonly index: BlindIndex;
  /** Per org: `kind\0erasure digest` → latest erasure (ms). */
  readonly byOrg: ReadonlyMap<string, ReadonlyMap<string, number>>;
  /** Org-blind records from before identity-hub/0003: `kind\0legacy digest` → erasure (ms). */
  readonly legacy: ReadonlyMap<string, number>;
}

const KINDS = [
  ['anonymous_id', 'anonymousId'],
  ['user_id', 'userId'],
] as const;

export function createErasedSubjects(options: ErasedSubjectsOptions): ErasedSubjects {
  const { db, crypto } = options;
  let view: View | null = null;

  /** `count:sum of erased_at` of the records in force at the last full read. */
  let readAt: string | null = null;

  async function read(): Promise<View | 'no_key' | 'unchanged'> {
    const index = view?.index ?? (await readBlindIndex(db, crypto));
    if (index === null) return 'no_key';
    // Most refreshes find nothing new: one aggregate row instead of every record. Inserts and expiries
    // change the count and the sum of the records' hashes (which also tells one record swapped for another
    // in the same window); a re-erasure moves a row's erased_at forward, which changes the other sum.
    const { rows: summary } = await db.query(
      `SELECT count(*)::text
              || ':' || coalesce(sum(extract(epoch FROM erased_at)), 0)::text
              || ':' || coalesce(sum(hashtextextended(org_id || ':' || kind || ':' || digest, 0)), 0)::text
                AS fingerprint
         FROM (SELECT org_id, kind, digest, erased_at FROM identity_erasures WHERE expires_at > now()
               UNION ALL
               SELECT '', kind, digest, erased_at FROM identity_erasures_legacy WHERE expires_at > now())
              AS records`,
    );
    const fingerprint = fingerprintRow.parse(summary[0]).fingerprint;
    if (view !== null && fingerprint === readAt) return 'unchanged';
    const { rows } = await db.query(
      `SELECT org_id, kind, digest, erased_at FROM identity_erasures WHERE expires_at > now()
       UNION ALL
       SELECT NULL, kind, digest, erased_at FROM identity_erasures_legacy WHERE expires_at > now()`,
    );
    const byOrg = new Map<string, Map<string, number>>();
    const legacy = new Map<string, number>();
    for (const raw of rows) {
      const row = recordRow.parse(raw);
      const key = `${row.kind}\0${row.digest}`;
      const at = row.erased_at.getTime();
      const target = row.org_id === null ? legacy : (byOrg.get(row.org_id) ?? new Map<string, number>());
      if (row.org_id !== null) byOrg.set(row.org_id, target);
      target.set(key, Math.max(at, target.get(key) ?? at));
    }
    readAt = fingerprint;
    return { index, byOrg, legacy };
  }

  return {
    async refresh() {
      try {
        const next = await read();
        if (next === 'no_key') return 'no_key';
        if (next !== 'unchanged') view = next;
        return 'loaded';
      } catch (err) {
        if (isStoreError(err) && err.sqlState === UNDEFINED_TABLE) return 'no_tables';
        throw err;
      }
    },

    erasedBefore(event, digests) {
      const current = view;
      if (current === null) return false;
      const records = current.byOrg.get(event.org);
      if (records === undefined && current.legacy.size === 0) return false;
      let erasedAt = Number.NEGATIVE_INFINITY;
      for (const [kind, field] of KINDS) {
        const carried = digests?.[field];
        if (records !== undefined && carried !== undefined) {
          erasedAt = Math.max(erasedAt, records.get(`${kind}\0${carried}`) ?? erasedAt);
        }
        const value = event[field];
        if (typeof value !== 'string' || value === '') continue;
        if (records !== undefined) {
          const digest = current.index.erasureDigest(
            event.org,
            kind,
            current.index.digest(event.org, kind, value),
          );
          erasedAt = Math.max(erasedAt, records.get(`${kind}\0${digest}`) ?? erasedAt);
        }
        if (current.legacy.size > 0) {
          const legacyDigest = current.index.legacyErasureDigest(kind, value);
          erasedAt = Math.max(erasedAt, current.legacy.get(`${kind}\0${legacyDigest}`) ?? erasedAt);
        }
      }
      if (erasedAt === Number.NEGATIVE_INFINITY) return false;
      const receivedAt = Date.parse(event.receivedAt);
      return !(receivedAt >= erasedAt + ERASURE_CLOCK_MARGIN_MS);
    },

    consentSubjectOf(org, userId) {
      return view?.index.consentSubject(org, userId);
    },

    erasureDigestsOf(event) {
      const index = view?.index;
      if (index === undefined) return undefined;
      const digests: { anonymousId?: string; userId?: string } = {};
      for (const [kind, field] of KINDS) {
        const value = event[field];
        if (typeof value !== 'string' || value === '') continue;
        digests[field] = index.erasureDigest(event.org, kind, index.digest(event.org, kind, value));
      }
      return digests;
    },
  };
}

/**
 * Makes the blind-index key if the identity tables exist and it does not yet (the identity hub's own
 * race-safe insert), for a process that must name people by it before the hub's first start: the event
 * processor, whose consents of record are keyed by it. `no_tables` when the identity migrations are not in
 * this database.
 */
export async function ensureBlindIndexKey(
  db: Queryable,
  crypto: Pick<CryptoService, 'sealText' | 'openText' | 'keyIdOf'>,
): Promise<'ready' | 'no_tables'> {
  try {
    await loadBlindIndex(db, crypto);
    return 'ready';
  } catch (err) {
    if (isStoreError(err) && err.sqlState === UNDEFINED_TABLE) return 'no_tables';
    throw err;
  }
}

/** What `keepErasedSubjectsFresh` logs through (pino's slice). */
export interface ErasureRefreshLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * Reads the records once, then every `everyMs` until the returned stop is called: for a consumer that checks
 * events against them (the event processor, the delivery worker). The first read's failure is thrown, so the
 * consumer does not start with nothing known as erased; a later one keeps the last view and is logged once per
 * outage. A database without the identity tables is said loudly (nothing is filtered there), once per change.
 */
export async function keepErasedSubjectsFresh(
  view: Pick<ErasedSubjects, 'refresh'>,
  options: { readonly everyMs: number; readonly logger: ErasureRefreshLogger },
): Promise<() => void> {
  const { logger } = options;
  let reported: ErasureViewStatus = 'loaded';
  let failing = false;
  const report = (status: ErasureViewStatus): void => {
    failing = false;
    if (status === reported) return;
    reported = status;
    if (status === 'no_tables') {
      logger.warn(
        {},
        "the identity hub's erasure records are not in this database (run signal-cli migrate): an erased person's events still on the bus are not filtered",
      );
    } else if (status === 'no_key') {
      logger.info({}, 'no erasure can have been recorded yet (the identity hub has not started)');
    }
  };
  report(await view.refresh());
  const timer = setInterval(() => {
    view.refresh().then(report, (err: unknown) => {
      if (!failing) {
        logger.warn(
          { err: err instanceof Error ? err.name : typeof err },
          'could not re-read the erasure records; the last ones read stay in force',
        );
      }
      failing = true;
    });
  }, options.everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
