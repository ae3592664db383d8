import {
  type ConsentCache,
  type ConsentState,
  type ConsentStateRead,
  type ConsentStateStore,
  type ConsentStateWrite,
  consentStateSchema,
  createCacheConsentStateStore,
  DEFAULT_CONSENT_TTL_MS,
  visitorKey,
} from '@signal/consent';
import { type Database, isStoreError } from '@signal/store';
import { z } from 'zod';

/**
 * Visitors' consent states (`@signal/consent`'s state store) kept in the database as well as in the cache.
 *
 * The cache-only store forgets: the embedded pipeline's cache lives in memory (gone at a restart, and its
 * `consent:` family is evicted least-recently-used past its budget), and a Redis without persistence loses
 * everything at its own restart. Stage 2 then finds no state and falls back to the consent the event arrived
 * with, so an event that waited (a retry, a backlog, a dead letter replayed) went out after its visitor had
 * withdrawn. Here:
 * - **Reads** ask the cache (its copy is the store's `consent:v2:` entry, as before) and, only when it has
 *   nothing, the table (`consent_visitor_states`, migration `identity-hub/0005`); a row found refills the copy,
 *   and no row leaves a one-minute "no state" copy, so a visitor without a state (events that never carry
 *   consent) costs one query a minute, not one per event.
 * - **Writes** go to the table first, then to the cache, and only when the visitor's **choices** changed
 *   (every event carries its consent with a newer time; a changed time alone is not written, so the table
 *   takes one write per change, not per event). The table keeps the newest change: an older one arriving late
 *   never overwrites it (`updated_at` guard). A row older than the latest observation with the same choices
 *   decides the same way: `resolveLatestConsent` lets an event's own newer state win either way.
 * - A cache that lost a newer state no longer lets an older one in: on a miss, the table is read before the
 *   write, and a state no newer than the row is `stale` (the row refills the copy).
 * - The database unreachable: reads that need it and writes are `unavailable` (the processor redelivers its
 *   batch, the worker defers), never a guess.
 * Rows expire 13 months after the last change (`purgeExpired`, run hourly by the identity hub).
 */
export interface VisitorConsentOptions {
  readonly db: Pick<Database, 'query'>;
  readonly cache: ConsentCache;
  /** A row (and the cache copy) is kept this long after the visitor's last change (default 395 days). */
  readonly ttlMs?: number;
  readonly logger?: { warn(obj: Record<string, unknown>, msg: string): void };
  /** ms since the epoch; injectable for tests. */
  readonly now?: () => number;
}

export interface VisitorConsentStore extends ConsentStateStore {
  /** Deletes the rows past their expiry; returns how many. */
  purgeExpired(): Promise<number>;
}

const rowSchema = z.object({ state: z.unknown() });

export function createVisitorConsentStore(options: VisitorConsentOptions): VisitorConsentStore {
  const { db, logger } = options;
  const ttlMs = options.ttlMs ?? DEFAULT_CONSENT_TTL_MS;
  const now = options.now ?? Date.now;
  const copies = createCacheConsentStateStore({
    cache: options.cache,
    ttlMs,
    ...(logger === undefined ? {} : { logger }),
  });

  const failed = (err: unknown): ConsentStateRead & ConsentStateWrite => {
    logger?.warn(
      {
        code: isStoreError(err) ? err.code : 'unknown',
        sqlState: isStoreError(err) ? err.sqlState : undefined,
      },
      'visitor consent table unavailable',
    );
    return { status: 'unavailable' };
  };

  async function fromTable(key: string): Promise<ConsentStateRead> {
    let rows: unknown[];
    try {
      ({ rows } = await db.query(
        'SELECT state FROM consent_visitor_states WHERE visitor_key = $1 AND expires_at > $2',
        [key, new Date(now())],
      ));
    } catch (err) {
      return failed(err);
    }
    const row = rows[0];
    if (row === undefined) return { status: 'missing' };
    const state = consentStateSchema.safeParse(rowSchema.parse(row).state);
    if (!state.success) {
      logger?.warn({ problem: 'schema' }, 'stored visitor consent unreadable');
      return { status: 'corrupt' };
    }
    return { status: 'found', state: state.data };
  }

  async function toTable(key: string, state: ConsentState): Promise<ConsentStateWrite | undefined> {
    try {
      await db.query(
        `INSERT INTO consent_visitor_states (visitor_key, state, updated_at, expires_at)
         VALUES ($1, $2::jsonb, $3, $4)
         ON CONFLICT (visitor_key) DO UPDATE
           SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at
           WHERE consent_visitor_states.updated_at < EXCLUDED.updated_at`,
        [key, JSON.stringify(state), state.updatedAt, new Date(now() + ttlMs)],
      );
      return undefined;
    } catch (err) {
      return failed(err);
    }
  }

  return {
    async get(org, anonymousId) {
      const cached = await copies.get(org, anonymousId);
      if (cached.status !== 'missing') return cached;
      const key = visitorKey(org, anonymousId);
      if (await copies.isKnownAbsent(key)) return cached;
      const stored = await fromTable(key);
      if (stored.status === 'missing') await copies.markAbsent(key);
      if (stored.status !== 'found') return stored.status === 'missing' ? cached : stored;
      // Refill the copy; a newer state written meanwhile is kept (`stale`).
      await copies.set(org, anonymousId, stored.state);
      return stored;
    },

    async getByVisitorKey(key) {
      const cached = await copies.getByVisitorKey(key);
      if (cached.status !== 'missing' || (await copies.isKnownAbsent(key))) return cached;
      const stored = await fromTable(key);
      if (stored.status === 'missing') await copies.markAbsent(key);
      return stored;
    },

    async set(org, anonymousId, state) {
      const key = visitorKey(org, anonymousId);
      let previous = await copies.get(org, anonymousId);
      if (previous.status === 'unavailable') return previous;
      if (previous.status === 'missing' && !(await copies.isKnownAbsent(key))) {
        const stored = await fromTable(key);
        if (stored.status === 'unavailable') return { status: 'unavailable' };
        if (stored.status === 'found' && stored.state.updatedAt >= state.updatedAt) {
          await copies.set(org, anonymousId, stored.state);
          return { status: 'stale', current: stored.state };
        }
        previous = stored;
      }
      if (previous.status !== 'found' || !sameChoices(previous.state, state)) {
        const refused = await toTable(key, state);
        if (refused !== undefined) return refused;
      }
      return copies.set(org, anonymousId, state);
    },

    async purgeExpired() {
      const { rowCount } = await db.query('DELETE FROM consent_visitor_states WHERE expires_at <= $1', [
        new Date(now()),
      ]);
      return rowCount;
    },
  };
}

/** Whether two states say the same, whatever their times (keys compared in sorted order: jsonb reorders). */
function sameChoices(a: ConsentState, b: ConsentState): boolean {
  return canonical({ ...a, updatedAt: 0 }) === canonical({ ...b, updatedAt: 0 });
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    return `{${Object.keys(record)
      .filter((k) => record[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(record[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}
