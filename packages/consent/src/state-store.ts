import { createHash } from 'node:crypto';
import { z } from 'zod';
import { type ConsentDecision, type ConsentOutcome, type DecisionContext, decide } from './decide';
import { ConsentError } from './errors';
import { normaliseConsent } from './normalise';
import type { ConsentRequirement } from './requirements';
import { type ConsentState, consentStateSchema } from './state';

/**
 * The slice of the cache port this package needs; `Pick<Cache, 'get' | 'compareAndSet'>` of `@signal/cache`
 * satisfies it (Redis via ioredis in production, the in-process cache embedded).
 */
export interface ConsentCache {
  get(key: string): Promise<string | null>;
  /** Stores `value` only if the key holds exactly `expected` (null: nothing), atomically. */
  compareAndSet(key: string, expected: string | null, value: string, ttlMs: number): Promise<boolean>;
}

/** Lost compare-and-set rounds before a write gives up as `unavailable` (the caller retries later). */
const MAX_WRITE_ATTEMPTS = 8;

/** Minimal pino-compatible logger slice. */
export interface ConsentLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
}

export type ConsentStateRead =
  | { readonly status: 'found'; readonly state: ConsentState }
  | {
      readonly status: 'missing';
      /**
       * What was stored for the anonymous id before org scoping (`consent:v1:`, any org's), while the visitor
       * has no state of its own: it may only restrict (`LatestConsent.veto`), never grant.
       */
      readonly legacy?: ConsentState;
    }
  /** Present but not a state we can read (bad JSON, failed schema): fail closed, not retryable. */
  | { readonly status: 'corrupt' }
  /** The cache did not answer: fail closed for now; a retry may succeed. */
  | { readonly status: 'unavailable' };

export type ConsentStateWrite =
  | { readonly status: 'written' }
  /** The stored state is as new or newer (last writer wins by `updatedAt`); nothing was written. */
  | { readonly status: 'stale'; readonly current: ConsentState }
  | { readonly status: 'unavailable' };

/**
 * Latest consent per visitor of an org (anonymous id within `event.org`): consent is given to one org (the
 * controller), so the same anonymous id in another org, a coincidence or an id both derive from an e-mail,
 * is another visitor whose choices never apply here. Port: the cache-backed implementation below is the
 * production one.
 */
export interface ConsentStateStore {
  get(org: string, anonymousId: string): Promise<ConsentStateRead>;
  /**
   * The state stored for the visitor whose `visitorKey(org, anonymousId)` this is: for an event whose
   * anonymous id a rule hashed or removed after the state was stored under the original. Pre-scoping
   * (`consent:v1:`) states are keyed by the raw id and cannot be found this way.
   */
  getByVisitorKey(visitorKey: string): Promise<ConsentStateRead>;
  /** Keep `state` unless the stored one has an equal or later `updatedAt` (an older update never overwrites). */
  set(org: string, anonymousId: string, state: ConsentState): Promise<ConsentStateWrite>;
}

export interface CacheConsentStateStoreOptions {
  readonly cache: ConsentCache;
  /**
   * Prefix of every key (the namespace is the cache's business); default `consent:v2:`. The rest of the key
   * is a SHA-256 of the org and the anonymous id, so the cache holds no visitor id in its key space.
   */
  readonly keyPrefix?: string;
  /**
   * Where states written before org scoping live (`<prefix><anonymous id>`, any org's); default
   * `consent:v1:`, null to ignore them. Read only while a visitor has no state of its own yet, and only ever
   * as a veto: it may have been another org's, so a withdrawal in it still holds but a grant grants nothing.
   * A visitor's state is written only once newer than it. They expire with their TTL (`ttlMs` after their
   * last write); after that, this can be set to null.
   */
  readonly legacyKeyPrefix?: string | null;
  /** How long a visitor's state is kept after its last update; default 395 days (13 months). */
  readonly ttlMs?: number;
  readonly logger?: ConsentLogger;
}

export const DEFAULT_CONSENT_TTL_MS = 395 * 24 * 60 * 60 * 1000;

const storedSchema = z.object({ v: z.literal(1), state: consentStateSchema });
/**
 * "Known to have no state": a short-lived copy a store backed by a database leaves after finding no row, so
 * that a visitor without a state (events that never carry consent) does not cost a query per event. Read as
 * `missing`; a `set` replaces it like any other text (the compare-and-set expects exactly it). A release
 * before this one reads it as a valid state with nothing granted, observed at time 0: any consent an event
 * carries is newer and wins, and an event without any is judged on nothing granted, exactly as for a missing
 * state, so a rolling upgrade changes no decision.
 */
const ABSENT = JSON.stringify({ v: 1, state: normaliseConsent({}, { observedAt: 0 }), absent: true });
/** How long an `ABSENT` copy is trusted: a state written meanwhile replaces it at once, so this only bounds
 * how long a row written behind the cache's back (another deployment, a restore) stays unseen. */
const ABSENT_TTL_MS = 60_000;

/**
 * A `ConsentStateStore` over the cache. `set` is a read-compare-write made atomic by the cache's
 * compare-and-set: it writes only over the exact value it read, so two processes writing one visitor at once
 * (a rebalance, a redelivered batch, another replica) cannot let an older state overwrite a newer one; the
 * loser reads again and finds either a newer state (`stale`) or retries. Within one instance writes to a key
 * are also queued, so they do not contend with each other.
 */
/**
 * The cache-backed store, with what a store backed by a database beside it needs: a short-lived "no state"
 * copy, so that a visitor without a state costs the database one query a minute, not one per event.
 */
export interface CacheConsentStateStore extends ConsentStateStore {
  /** Whether the cache holds the "no state" copy for this visitor (false when it holds a state or nothing). */
  isKnownAbsent(visitorKey: string): Promise<boolean>;
  /** Leaves the "no state" copy for a minute where the cache holds nothing for this visitor. */
  markAbsent(visitorKey: string): Promise<void>;
}

export function createCacheConsentStateStore(options: CacheConsentStateStoreOptions): CacheConsentStateStore {
  const { cache, logger } = options;
  const keyPrefix = options.keyPrefix ?? 'consent:v2:';
  const legacyKeyPrefix = options.legacyKeyPrefix === undefined ? 'consent:v1:' : options.legacyKeyPrefix;
  const ttlMs = options.ttlMs ?? DEFAULT_CONSENT_TTL_MS;
  if (!Number.isInteger(ttlMs) || ttlMs <= 0) {
    throw new ConsentError(
      'consent_invalid_argument',
      'ttlMs must be a positive integer number of milliseconds',
    );
  }
  const tails = new Map<string, Promise<void>>();

  const keyOf = (org: string, anonymousId: string): string => {
    if (org === '') throw new ConsentError('consent_invalid_argument', 'org must not be empty');
    if (anonymousId === '')
      throw new ConsentError('consent_invalid_argument', 'anonymousId must not be empty');
    return `${keyPrefix}${subjectDigest(org, anonymousId)}`;
  };

  /** The visitor's own state, else (none yet) what was stored for the anonymous id before org scoping. */
  const fetchWithLegacy = async (
    key: string,
    anonymousId: string,
  ): Promise<{ raw: string | null; read: ConsentStateRead; legacy?: ConsentState }> => {
    const own = await fetch(key);
    if (own.read.status !== 'missing' || legacyKeyPrefix === null) return own;
    const legacy = await fetch(`${legacyKeyPrefix}${anonymousId}`);
    // An unreadable legacy entry is as good as none; an unreachable cache is unreachable.
    if (legacy.read.status === 'unavailable') return legacy;
    return legacy.read.status === 'found' ? { ...own, legacy: legacy.read.state } : own;
  };

  /** Runs tasks for one key one after another, whatever the previous one's outcome. */
  const serialised = <T>(key: string, task: () => Promise<T>): Promise<T> => {
    const run = (tails.get(key) ?? Promise.resolve()).then(task);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    tails.set(key, tail);
    void tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key);
    });
    return run;
  };

  /** The stored text as read (what a compare-and-set must expect) and what it decodes to. */
  const fetch = async (key: string): Promise<{ raw: string | null; read: ConsentStateRead }> => {
    let value: string | null;
    try {
      value = await cache.get(key);
    } catch (cause) {
      logger?.warn({ err: errorName(cause) }, 'consent state store unavailable');
      return { raw: null, read: { status: 'unavailable' } };
    }
    return { raw: value, read: decode(value) };
  };

  const decode = (value: string | null): ConsentStateRead => {
    if (value === null || value === ABSENT) return { status: 'missing' };
    let json: unknown;
    try {
      json = JSON.parse(value);
    } catch {
      logger?.warn({ problem: 'json' }, 'stored consent state unreadable');
      return { status: 'corrupt' };
    }
    const parsed = storedSchema.safeParse(json);
    if (!parsed.success) {
      logger?.warn({ problem: 'schema' }, 'stored consent state unreadable');
      return { status: 'corrupt' };
    }
    return { status: 'found', state: parsed.data.state };
  };

  return {
    get: async (org, anonymousId) => {
      const { read, legacy } = await fetchWithLegacy(keyOf(org, anonymousId), anonymousId);
      return legacy === undefined ? read : { status: 'missing', legacy };
    },
    getByVisitorKey: async (visitorKey) => {
      if (!VISITOR_KEY.test(visitorKey)) {
        throw new ConsentError('consent_invalid_argument', 'not a visitor key (use visitorKey)');
      }
      return (await fetch(`${keyPrefix}${visitorKey}`)).read;
    },
    isKnownAbsent: async (visitorKey) => {
      try {
        return (await cache.get(`${keyPrefix}${visitorKey}`)) === ABSENT;
      } catch {
        return false;
      }
    },
    markAbsent: async (visitorKey) => {
      try {
        // Only where the cache holds nothing: a state written meanwhile is never replaced.
        await cache.compareAndSet(`${keyPrefix}${visitorKey}`, null, ABSENT, ABSENT_TTL_MS);
      } catch (cause) {
        logger?.warn({ err: errorName(cause) }, 'consent state store unavailable');
      }
    },
    set: async (org, anonymousId, state) => {
      const key = keyOf(org, anonymousId);
      const valid = consentStateSchema.safeParse(state);
      if (!valid.success) {
        throw new ConsentError('consent_invalid_argument', 'not a consent state (use normaliseConsent)', {
          cause: valid.error,
        });
      }
      const value = JSON.stringify({ v: 1, state: valid.data });
      return serialised(key, async (): Promise<ConsentStateWrite> => {
        for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt += 1) {
          const { raw, read, legacy } = await fetchWithLegacy(key, anonymousId);
          if (read.status === 'unavailable') return read;
          if (read.status === 'found' && read.state.updatedAt >= valid.data.updatedAt) {
            return { status: 'stale', current: read.state };
          }
          // A pre-upgrade state as new or newer keeps its veto: nothing older is written over it.
          if (legacy !== undefined && legacy.updatedAt >= valid.data.updatedAt) {
            return { status: 'stale', current: legacy };
          }
          // Missing, corrupt or older: replace exactly what was read, or read again if it changed meanwhile.
          try {
            if (await cache.compareAndSet(key, raw, value, ttlMs)) return { status: 'written' };
          } catch (cause) {
            logger?.warn({ err: errorName(cause) }, 'consent state store unavailable');
            return { status: 'unavailable' };
          }
        }
        logger?.warn(
          { attempts: MAX_WRITE_ATTEMPTS },
          'consent state write kept losing to concurrent writers',
        );
        return { status: 'unavailable' };
      });
    },
  };
}

/**
 * SHA-256 (base64url) of u32 length ‖ UTF-8 of the org, then of the subject (an anonymous id, or a person's
 * consent subject): no field runs into the next. Shared by both consent stores' keys.
 */
export function subjectDigest(org: string, anonymousId: string): string {
  const hash = createHash('sha256');
  const length = Buffer.allocUnsafe(4);
  for (const field of [org, anonymousId]) {
    length.writeUInt32BE(Buffer.byteLength(field, 'utf8'));
    hash.update(length).update(field, 'utf8');
  }
  return hash.digest('base64url');
}

/**
 * The key a visitor's consent state is stored under: `subjectDigest` of the org and the anonymous id. The
 * processor puts it on a delivery message (`consentVisitor`) whose anonymous id a rule changed, so stage 2
 * still finds the visitor (`ConsentStateStore.getByVisitorKey`).
 */
export function visitorKey(org: string, anonymousId: string): string {
  return subjectDigest(org, anonymousId);
}

const VISITOR_KEY = /^[A-Za-z0-9_-]{43}$/;

export function errorName(cause: unknown): string {
  return cause instanceof Error ? cause.name : 'unknown';
}

export interface LatestConsent {
  /** The newest state known for the visitor; null = unknown, decide() then drops every non-essential delivery. */
  readonly state: ConsentState | null;
  readonly source: 'store' | 'event' | 'none';
  /** Why the store gave no usable answer: `unavailable` is transient (worth a retry), `corrupt` is not. */
  readonly storeProblem?: 'corrupt' | 'unavailable';
  /**
   * A newer state stored before org scoping (possibly another org's): it may only restrict. `decideLatest`
   * takes the stricter of the decisions on `state` and on it.
   */
  readonly veto?: ConsentState;
}

const STRICTNESS: Readonly<Record<ConsentOutcome, number>> = { allow: 0, strip: 1, drop: 2 };

/** Stage 2's decision on `resolveLatestConsent`'s answer: on its state, made stricter by its veto if any. */
export function decideLatest(
  latest: LatestConsent,
  requirement: ConsentRequirement,
  context: DecisionContext,
): ConsentDecision {
  const decision = decide(latest.state, requirement, context);
  if (latest.veto === undefined) return decision;
  const vetoed = decide(latest.veto, requirement, context);
  return STRICTNESS[vetoed.outcome] > STRICTNESS[decision.outcome] ? vetoed : decision;
}

/**
 * Stage-2 input: the newer of the stored state and the state the event carried (the store may not have seen
 * this event's consent yet, or may hold a later revocation). If the store cannot be read, the answer is
 * `null`: without it we cannot know whether consent was withdrawn since ingestion.
 */
export async function resolveLatestConsent(
  store: ConsentStateStore,
  org: string,
  /** The anonymous id the state was stored for, or its `visitorKey` when the event's id was changed since. */
  visitor: string | { readonly visitorKey: string },
  arrived: ConsentState | null,
): Promise<LatestConsent> {
  let read: ConsentStateRead;
  try {
    read =
      typeof visitor === 'string'
        ? await store.get(org, visitor)
        : await store.getByVisitorKey(visitor.visitorKey);
  } catch {
    read = { status: 'unavailable' };
  }
  switch (read.status) {
    case 'found':
      return arrived !== null && arrived.updatedAt > read.state.updatedAt
        ? { state: arrived, source: 'event' }
        : { state: read.state, source: 'store' };
    case 'missing': {
      const latest: LatestConsent =
        arrived === null ? { state: null, source: 'none' } : { state: arrived, source: 'event' };
      const { legacy } = read;
      return legacy !== undefined && (arrived === null || legacy.updatedAt >= arrived.updatedAt)
        ? { ...latest, veto: legacy }
        : latest;
    }
    case 'corrupt':
    case 'unavailable':
      return { state: null, source: 'none', storeProblem: read.status };
  }
}
