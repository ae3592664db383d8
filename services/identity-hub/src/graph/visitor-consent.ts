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

const rowSchema = z.object({ visitor_key: z.string(), state: z.unknown() });

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

  // Table reads and writes of one event-loop turn go to the database together (`perTurn`): the processor
  // handles a batch of events at once, and one query per new visitor plus one commit (with its fsync) per
  // new state cost about 1 ms per visitor on PGlite: `pnpm bench processor` fell from ~10,800 to ~3,000
  // events/s with 5,000 new visitors in 20,000 events.
  const fromTable = perTurn(async (keys: readonly string[]): Promise<ConsentStateRead[]> => {
    let rows: unknown[];
    try {
      ({ rows } = await db.query(
        'SELECT visitor_key, state FROM consent_visitor_states WHERE visitor_key = ANY($1::text[]) AND expires_at > $2',
        [[...new Set(keys)], new Date(now())],
      ));
    } catch (err) {
      const failure = failed(err);
      return keys.map(() => failure);
    }
    const found = new Map<string, ConsentStateRead>();
    for (const raw of rows) {
      const row = rowSchema.parse(raw);
      const state = consentStateSchema.safeParse(row.state);
      if (!state.success) logger?.warn({ problem: 'schema' }, 'stored visitor consent unreadable');
      found.set(
        row.visitor_key,
        state.success ? { status: 'found', state: state.data } : { status: 'corrupt' },
      );
    }
    return keys.map((key) => found.get(key) ?? { status: 'missing' });
  });

  /** `undefined` once the table holds the state (or a newer one); the failure otherwise. */
  const toTable = perTurn(
    async (
      writes: readonly { key: string; state: ConsentState }[],
    ): Promise<(ConsentStateWrite | undefined)[]> => {
      // One row per visitor in a statement (ON CONFLICT cannot touch a row twice): the newest state, which
      // is what the updated_at guard would have kept of them one by one.
      const newest = new Map<string, ConsentState>();
      for (const { key, state } of writes) {
        const seen = newest.get(key);
        if (seen === undefined || seen.updatedAt < state.updatedAt) newest.set(key, state);
      }
      try {
        await db.query(
          `INSERT INTO consent_visitor_states (visitor_key, state, updated_at, expires_at)
           SELECT k, s::jsonb, u, $4 FROM unnest($1::text[], $2::text[], $3::bigint[]) AS w(k, s, u)
           ON CONFLICT (visitor_key) DO UPDATE
             SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at
             WHERE consent_visitor_states.updated_at < EXCLUDED.updated_at`,
          [
            [...newest.keys()],
            [...newest.values()].map((state) => JSON.stringify(state)),
            [...newest.values()].map((state) => String(state.updatedAt)),
            new Date(now() + ttlMs),
          ],
        );
        return writes.map(() => undefined);
      } catch (err) {
        const failure = failed(err);
        return writes.map(() => failure);
      }
    },
  );

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
        const refused = await toTable({ key, state });
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

/**
 * Whether two states say the same, whatever their times: a deep comparison in which key order (jsonb reorders
 * keys) and keys holding `undefined` (JSON drops them) do not count. Called for every event that carries
 * consent, so it builds no strings (a sorted serialisation of both was ~10% of the processor's CPU).
 */
function sameChoices(a: ConsentState, b: ConsentState): boolean {
  return sameJson(a, b, 'updatedAt');
}

function sameJson(a: unknown, b: unknown, ignoredKey?: string): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => sameJson(item, b[i]));
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let keys = 0;
  for (const key in x) {
    if (key === ignoredKey || x[key] === undefined) continue;
    if (!sameJson(x[key], y[key])) return false;
    keys += 1;
  }
  for (const key in y) if (key !== ignoredKey && y[key] !== undefined) keys -= 1;
  return keys === 0;
}

/**
 * Calls of one event-loop turn, answered by one call of `run` with all their inputs (in order; `run` returns
 * one output per input). The first call of a turn schedules the run after the turn (`setImmediate`), by
 * which time every caller whose work was only promise steps has made its call too. `run` must not throw:
 * failures are outputs, which is how the store reports an unreachable database.
 */
function perTurn<I, O>(run: (inputs: readonly I[]) => Promise<O[]>): (input: I) => Promise<O> {
  let pending: { input: I; resolve: (output: O) => void; reject: (err: unknown) => void }[] = [];
  return (input) =>
    new Promise<O>((resolve, reject) => {
      pending.push({ input, resolve, reject });
      if (pending.length > 1) return;
      setImmediate(() => {
        const batch = pending;
        pending = [];
        run(batch.map((p) => p.input)).then(
          (outputs) => {
            batch.forEach((p, i) => {
              p.resolve(outputs[i] as O);
            });
          },
          (err: unknown) => {
            for (const p of batch) p.reject(err);
          },
        );
      });
    });
}
