import { z } from 'zod';
import { ConsentError } from './errors';
import { CONSENT_CATEGORIES, type ConsentCategory, type ConsentState } from './state';
import {
  type ConsentCache,
  type ConsentLogger,
  DEFAULT_CONSENT_TTL_MS,
  errorName,
  subjectDigest,
} from './state-store';

/**
 * A signed-in person's consent of record: the choices the customer's own server declared for them with a
 * signed `consent_update` event (account settings, an objection to direct marketing, a CMP choice relayed
 * after sign-in). Keyed by a pseudonym of the user id (`subject`: the identity hub's keyed digest), never by
 * an id a browser chooses, and only ever written from HMAC-signed events: a pipeline key is public and user
 * ids are client-set, so a browser could otherwise lift another person's withdrawal.
 *
 * Stage 2 applies it to every event of the person, whatever device or server sent it, as a **veto**: a
 * category the person withdrew is withdrawn for their events, even where a device's CMP still says granted;
 * a grant of record grants nothing by itself (it only replaces an earlier withdrawal of record), so the
 * event's own consent still decides everything else.
 */
export interface UserConsentRecord {
  /** Per category: the latest choice of record and when the gateway received it (ms since the epoch). */
  readonly categories: Readonly<Partial<Record<ConsentCategory, UserChoice>>>;
}

export interface UserChoice {
  readonly granted: boolean;
  readonly at: number;
}

export type UserConsentRead =
  | { readonly status: 'found'; readonly record: UserConsentRecord }
  | { readonly status: 'missing' }
  /** Present but unreadable: fail closed (every non-essential category withdrawn), not retryable. */
  | { readonly status: 'corrupt' }
  /** The cache did not answer: a retry may succeed. */
  | { readonly status: 'unavailable' };

export type UserConsentWrite =
  | { readonly status: 'written' }
  /** Every category given already holds a choice at least as recent; nothing was written. */
  | { readonly status: 'stale' }
  | { readonly status: 'unavailable' };

export interface UserConsentStore {
  get(org: string, subject: string): Promise<UserConsentRead>;
  /**
   * Merges `choices`, made at `at`, into the person's record: per category, the later choice wins (an older
   * one, redelivered or out of order, never overwrites a newer one).
   */
  record(
    org: string,
    subject: string,
    choices: Readonly<Partial<Record<ConsentCategory, boolean>>>,
    at: number,
  ): Promise<UserConsentWrite>;
}

export interface CacheUserConsentStoreOptions {
  readonly cache: ConsentCache;
  /** Default `consent:v2:u:`; the rest of the key is a SHA-256 of the org and the subject. */
  readonly keyPrefix?: string;
  /**
   * A record of grants only is kept this long after its last choice; default 395 days (13 months), like
   * visitors' states. A record holding a withdrawal is kept at least `withdrawalTtlMs`.
   */
  readonly ttlMs?: number;
  /**
   * How long a record holding a withdrawal is kept after its last choice; default 10 years. An objection to
   * direct marketing does not lapse by itself: it must not silently end with a cache TTL. (The customer's
   * server remains its source of truth and can send it again; the cache must keep data, e.g. Redis with
   * persistence and no eviction of these keys.)
   */
  readonly withdrawalTtlMs?: number;
  readonly logger?: ConsentLogger;
}

const choiceSchema = z.object({ granted: z.boolean(), at: z.number().int().nonnegative() });
const storedSchema = z.object({
  v: z.literal(1),
  categories: z.partialRecord(z.enum(CONSENT_CATEGORIES), choiceSchema),
});

/** A record holding a withdrawal is kept this long after its last choice (10 years). */
export const DEFAULT_WITHDRAWAL_TTL_MS = 10 * 365 * 24 * 60 * 60 * 1000;

/** Lost compare-and-set rounds before a write gives up as `unavailable` (the caller retries later). */
const MAX_WRITE_ATTEMPTS = 8;

export function createCacheUserConsentStore(options: CacheUserConsentStoreOptions): UserConsentStore {
  const { cache, logger } = options;
  const keyPrefix = options.keyPrefix ?? 'consent:v2:u:';
  const ttlMs = options.ttlMs ?? DEFAULT_CONSENT_TTL_MS;
  const withdrawalTtlMs = Math.max(ttlMs, options.withdrawalTtlMs ?? DEFAULT_WITHDRAWAL_TTL_MS);
  if (!Number.isInteger(ttlMs) || ttlMs <= 0 || !Number.isInteger(withdrawalTtlMs)) {
    throw new ConsentError(
      'consent_invalid_argument',
      'ttlMs must be a positive integer number of milliseconds',
    );
  }

  const keyOf = (org: string, subject: string): string => {
    if (org === '' || subject === '') {
      throw new ConsentError('consent_invalid_argument', 'org and subject must not be empty');
    }
    return `${keyPrefix}${subjectDigest(org, subject)}`;
  };

  const read = async (key: string): Promise<{ raw: string | null; read: UserConsentRead }> => {
    let raw: string | null;
    try {
      raw = await cache.get(key);
    } catch (cause) {
      logger?.warn({ err: errorName(cause) }, 'user consent store unavailable');
      return { raw: null, read: { status: 'unavailable' } };
    }
    if (raw === null) return { raw, read: { status: 'missing' } };
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      json = undefined;
    }
    const parsed = storedSchema.safeParse(json);
    if (!parsed.success) {
      logger?.warn({ problem: 'schema' }, 'stored user consent unreadable');
      return { raw, read: { status: 'corrupt' } };
    }
    return { raw, read: { status: 'found', record: { categories: parsed.data.categories } } };
  };

  return {
    get: async (org, subject) => (await read(keyOf(org, subject))).read,

    async record(org, subject, choices, at) {
      const key = keyOf(org, subject);
      if (!Number.isInteger(at) || at < 0) {
        throw new ConsentError('consent_invalid_argument', 'at must be a time in whole milliseconds');
      }
      for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt += 1) {
        const current = await read(key);
        if (current.read.status === 'unavailable') return current.read;
        // An unreadable record is replaced: these choices are the only ones known to be the person's.
        const merged: Partial<Record<ConsentCategory, UserChoice>> =
          current.read.status === 'found' ? { ...current.read.record.categories } : {};
        let changed = false;
        for (const category of CONSENT_CATEGORIES) {
          const granted = choices[category];
          if (granted === undefined) continue;
          const held = merged[category];
          // Later wins; at the same instant a withdrawal wins (two conflicting choices: the stricter).
          if (held !== undefined && (held.at > at || (held.at === at && (!held.granted || granted))))
            continue;
          merged[category] = { granted, at };
          changed = true;
        }
        if (!changed) return { status: 'stale' };
        const value = JSON.stringify({ v: 1, categories: merged });
        const withdraws = Object.values(merged).some((choice) => choice?.granted === false);
        try {
          if (await cache.compareAndSet(key, current.raw, value, withdraws ? withdrawalTtlMs : ttlMs)) {
            return { status: 'written' };
          }
        } catch (cause) {
          logger?.warn({ err: errorName(cause) }, 'user consent store unavailable');
          return { status: 'unavailable' };
        }
      }
      logger?.warn({ attempts: MAX_WRITE_ATTEMPTS }, 'user consent write kept losing to concurrent writers');
      return { status: 'unavailable' };
    },
  };
}

/** A category consent can be withdrawn from (essential is never asked for). */
export type WithdrawableCategory = Exclude<ConsentCategory, 'essential'>;
const WITHDRAWABLE = CONSENT_CATEGORIES.filter((c): c is WithdrawableCategory => c !== 'essential');

/** Categories a record withdraws; `corrupt` (unreadable) withdraws every one but essential. */
export function withdrawnCategories(read: UserConsentRead): readonly WithdrawableCategory[] {
  if (read.status === 'corrupt') return WITHDRAWABLE;
  if (read.status !== 'found') return [];
  return WITHDRAWABLE.filter((c) => read.record.categories[c]?.granted === false);
}

/**
 * The state stage 2 decides on, with the person's withdrawals of record applied: each withdrawn category is
 * set to not granted (a CMP's grant or a TC string cannot outvote it: the category gate is checked first).
 * Nothing is granted that the state did not grant. A null state stays null (it fails closed anyway).
 */
export function applyUserConsent(
  state: ConsentState | null,
  withdrawn: readonly WithdrawableCategory[],
): ConsentState | null {
  if (state === null || withdrawn.length === 0) return state;
  const categories = { ...state.categories };
  for (const category of withdrawn) categories[category] = false;
  return { ...state, categories };
}
