import { z } from 'zod';
import { ConsentError } from './errors';
import { CONSENT_CATEGORIES, type ConsentCategory, type ConsentState } from './state';
import { DEFAULT_CONSENT_TTL_MS } from './state-store';

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
  /** The store did not answer: a retry may succeed. */
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

const choiceSchema = z.object({ granted: z.boolean(), at: z.number().int().nonnegative() });
/** A record as stored (a database row's JSON, a cached copy): validated wherever it is read. */
export const storedUserConsentSchema = z.object({
  v: z.literal(1),
  categories: z.partialRecord(z.enum(CONSENT_CATEGORIES), choiceSchema),
});

/** A record of grants only is kept this long after its last choice: 395 days, like a visitor's state. */
export const DEFAULT_USER_CONSENT_TTL_MS = DEFAULT_CONSENT_TTL_MS;
/** A record holding a withdrawal is kept this long after its last choice (10 years). */
export const DEFAULT_WITHDRAWAL_TTL_MS = 10 * 365 * 24 * 60 * 60 * 1000;

type Categories = Readonly<Partial<Record<ConsentCategory, UserChoice>>>;

/** What `mergeChoices` made of a record and new choices. */
export interface MergedChoices {
  readonly categories: Categories;
  /** False when every category given already held a choice at least as recent (nothing to write). */
  readonly changed: boolean;
}

/**
 * Merges `choices`, made at `at` (ms since the epoch), into a record's categories: per category the later
 * choice wins, and at the same instant a withdrawal wins (two conflicting choices at once: the stricter). A
 * redelivered or late choice never overwrites a newer one, and merging the same choices again, or in another
 * order, gives the same record, so two copies of a record can always be merged into one (`mergeRecords`).
 */
export function mergeChoices(
  current: Categories,
  choices: Readonly<Partial<Record<ConsentCategory, boolean>>>,
  at: number,
): MergedChoices {
  if (!Number.isSafeInteger(at) || at < 0) {
    throw new ConsentError('consent_invalid_argument', 'at must be a time in whole milliseconds');
  }
  const merged: Partial<Record<ConsentCategory, UserChoice>> = { ...current };
  let changed = false;
  for (const category of CONSENT_CATEGORIES) {
    const granted = choices[category];
    if (granted === undefined) continue;
    const held = merged[category];
    if (held !== undefined && (held.at > at || (held.at === at && (!held.granted || granted)))) continue;
    merged[category] = { granted, at };
    changed = true;
  }
  return { categories: merged, changed };
}

/** Merges two copies of a record: per category the later choice, a withdrawal winning a tie. */
export function mergeRecords(a: Categories, b: Categories): MergedChoices {
  let categories = a;
  let changed = false;
  for (const category of CONSENT_CATEGORIES) {
    const choice = b[category];
    if (choice === undefined) continue;
    const merged = mergeChoices(categories, { [category]: choice.granted }, choice.at);
    categories = merged.categories;
    changed ||= merged.changed;
  }
  return { categories, changed };
}

/** Whether a record holds a withdrawal: it is then kept `DEFAULT_WITHDRAWAL_TTL_MS`, not 13 months. */
export function recordWithdraws(categories: Categories): boolean {
  return Object.values(categories).some((choice) => choice?.granted === false);
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
