import { randomBytes } from 'node:crypto';
import type { CryptoService, EncryptionContext } from '@signal/crypto';
import { type CanonicalEvent, type JsonValue, resourceIdSchema } from '@signal/events';
import { isStoreError, type Queryable } from '@signal/store';
import { z } from 'zod';
import { IdentityHubError } from '../errors';
import type { BlindIndex } from './blind-index';
import { identifierContext, traitsContext } from './encrypted-columns';
import { type IdentifierKind, type PrimaryKind, vendorIdentifiers } from './identifiers';
import { lwwMerge, parseStoredTraits, type StoredTraits, traitsFromEvent } from './traits';

/** Who a lookup is about, within one org: the ids an event carries. */
export interface Subject {
  readonly anonymousId?: string;
  readonly userId?: string;
}

export interface LookupRequest {
  /**
   * Whether the visitor consented to the purpose the caller enriches for (the Delivery Worker's stage-2
   * decision for this vendor). False: nothing is read or decrypted and the answer is null.
   */
  readonly consent: boolean;
  /** The identifiers the vendor accepts; only these are decrypted and returned. */
  readonly kinds: readonly IdentifierKind[];
  /** Also return the profile's traits (for vendors that take hashed email/phone). Default false. */
  readonly traits?: boolean;
}

export interface IdentityEnrichment {
  /** The profile's union-find root. */
  readonly profileId: string;
  /** The most recently seen value of each requested kind the profile has. */
  readonly identifiers: Readonly<Partial<Record<IdentifierKind, string>>>;
  /** Latest value of each trait; present only when asked for and the profile has traits. */
  readonly traits?: Readonly<Record<string, JsonValue>>;
}

/** The port the Delivery Worker calls to enrich an event. */
export interface IdentityLookup {
  /**
   * The profile `subject` names in `org` (the event's `org`), or null. Never anything of another org: the
   * same user id or anonymous id in two orgs is two people.
   */
  lookup(org: string, subject: Subject, request: LookupRequest): Promise<IdentityEnrichment | null>;
}

export interface IngestResult {
  /** The profile the event's ids belong to afterwards; null when the event carried no id. */
  readonly profileId: string | null;
  /** Profiles folded into `profileId` by this event. */
  readonly merged: readonly string[];
  /** True when the anonymous id moved to another user's profile (it had been identified as someone else). */
  readonly moved: boolean;
  /**
   * Set when the event was deliberately dropped, untouched, with why: `erased` = one of its ids was erased
   * after the gateway received it (a message still on the bus: redelivered, lagging, replayed). `profileId`
   * is then null.
   */
  readonly dropped?: 'erased';
}

export interface ErasureCounts {
  readonly profiles: number;
  readonly identifiers: number;
  readonly traits: number;
}

/**
 * Whether an anonymous id or user id of the erasure's org was the erased person's: the named subject (as
 * both kinds) and every anonymous id and user id their profiles held. Compared by blind-index digest, so the
 * ids themselves are never kept; for finding the person's data outside the graph (dead letters, scheduled
 * retries), value by value.
 */
export interface ErasedSubjectMatcher {
  /** Whether an anonymous id or user id of the org is the person's. */
  id(kind: PrimaryKind, value: string): boolean;
  /**
   * Whether an erasure digest (a delivery message's `erasureDigests`, made by the processor for ids a rule or
   * pipeline changed) is of one of the person's ids.
   */
  erasureDigest(kind: PrimaryKind, digest: string): boolean;
}

export interface IdentityGraph extends IdentityLookup {
  /**
   * Applies one raw event to the graph of its org (`event.org`): links, vendor ids, traits. Idempotent; safe
   * to run again on redelivery.
   */
  ingest(event: CanonicalEvent): Promise<IngestResult>;
  /**
   * Deletes the profile(s) an anonymous id or a user id belongs to in `org`, with every link and trait.
   * `profileIds` are the erased roots; `keySubjects` adds their merged-away profiles: every profile whose
   * DEK may have sealed this person's data (crypto-shredding destroys them all, since backups hold
   * pre-merge ciphertexts). The same id in another org is another person and is not touched: erasing it
   * from the wrong org answers exactly as an id nobody has (zeros). `isErased` tells the person's ids apart
   * (`ErasedSubjectMatcher`).
   */
  erase(
    org: string,
    subjectId: string,
  ): Promise<
    ErasureCounts & {
      readonly profileIds: readonly string[];
      readonly keySubjects: readonly string[];
      readonly isErased: ErasedSubjectMatcher;
    }
  >;
  /**
   * What `erase` would match now (read only, nothing locked or changed): the named subject as both kinds and
   * every anonymous id and user id of its profiles in `org`. For clearing the person's data elsewhere before
   * the graph forgets their other ids.
   */
  subjectMatcher(org: string, subjectId: string): Promise<ErasedSubjectMatcher>;
  /** Union-find `find`: the live profile of `org` a (possibly merged-away) profile id now belongs to, or null. */
  canonicalProfileId(org: string, profileId: string): Promise<string | null>;
  /** Deletes erasure records past their retention; returns how many. Run periodically (the hub does, hourly). */
  purgeErasureRecords(): Promise<number>;
}

export interface IdentityGraphOptions {
  readonly db: Pick<Queryable, 'query'> & {
    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  };
  readonly crypto: Pick<CryptoService, 'sealText' | 'openText' | 'openTextAsync' | 'keyIdOf'>;
  readonly index: BlindIndex;
  /**
   * Crypto-shredding (envelope mode with ENCRYPTION_CRYPTO_SHREDDING): each profile's traits and identifiers
   * are sealed under that profile's own DEK. Absent: everything is sealed with the identity class key.
   */
  readonly profileKeys?: ProfileKeys;
  /** Transaction attempts on serialization failures, deadlocks and lost insert races. Default 5. */
  readonly maxAttempts?: number;
  /**
   * How long an erasure record is kept after the erasure (default `ERASURE_RECORD_RETENTION_MS`, 30 days; at
   * least `MIN_ERASURE_RECORD_RETENTION_MS`, the raw-events retention): raw events received before the
   * erasure are dropped for that long.
   */
  readonly erasureRetentionMs?: number;
  /** Wall clock in ms: the time an erasure is recorded at and records expire by. Default `Date.now`. */
  readonly now?: () => number;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** raw-events retention (docs/kafka.md, `retention.ms=604800000`): the least an erasure record must outlive. */
export const MIN_ERASURE_RECORD_RETENTION_MS = 7 * DAY_MS;
/**
 * Default erasure record retention: the suggested `dlq-events` retention (30 days). A dead-lettered raw event
 * replayed from the DLQ returns to raw-events with its original `receivedAt`, so it must still meet the record.
 */
export const ERASURE_RECORD_RETENTION_MS = 30 * DAY_MS;
/**
 * An event stamped up to this long after the erasure still counts as received before it: the gateway that
 * stamped `receivedAt` and the process that ran the erasure read different clocks. The cost: a new sign-up
 * within this margin of its erasure is dropped (its next event, later, creates the new profile).
 */
export const ERASURE_CLOCK_MARGIN_MS = 30_000;

/**
 * Per-profile DEKs (the runtime's `subjectKeys`). Graph writes run in a transaction, and on PGlite (one
 * connection) nothing else may query the database meanwhile: DEK rows are read, created and unwrapped only
 * outside it (`prepare`, `fetch`); inside it, sealing and opening use what `ready` / `holds` say is in memory.
 * A transaction that finds a DEK missing rolls back, the DEK is made ready, and it runs again.
 */
export interface ProfileKeys {
  prepare(profileId: string): Promise<void>;
  ready(profileId: string): boolean;
  holds(keyId: string): boolean;
  fetch(keyId: string): Promise<void>;
}

/** A vendor id seen again updates `last_seen_at` only when it is this much newer (bounds write load). */
const LAST_SEEN_GRANULARITY_MS = 60 * 60 * 1000;
const MAX_SUBJECT_LENGTH = 256;

/** Inside a transaction: a DEK is not in memory. Roll back, make it ready outside, run the transaction again. */
class KeyNeeded extends Error {
  constructor(
    readonly kind: 'profile' | 'key',
    readonly id: string,
  ) {
    super('a DEK must be made ready outside the transaction');
  }
}

/** Rounds of "roll back, make a DEK ready, run again" one write may take (each needs a different DEK). */
const MAX_KEY_ROUNDS = 8;

/** A concurrent transaction inserted the same identifier first: rerun, and find its row this time. */
class LostRace extends Error {
  constructor() {
    super('identifier inserted concurrently');
  }
}

const identifierRowSchema = z.object({ id: z.string(), kind: z.string(), profile_id: z.string() });
const profileRowSchema = z.object({ id: z.string(), created_at: z.date() });
const valueRowSchema = z.object({ id: z.string(), kind: z.string(), value: z.string() });
const vendorRowSchema = z.object({
  id: z.string(),
  kind: z.string(),
  digest: z.string(),
  last_seen_at: z.date(),
});
const traitsRowSchema = z.object({ traits: z.string() });
const countSchema = z.object({ n: z.coerce.number() });
const primaryDigestSchema = z.object({ kind: z.enum(['anonymous_id', 'user_id']), digest: z.string() });
const erasureRowSchema = z.object({ erased_at: z.date().nullable(), expires_at: z.date().nullable() });

interface PrimaryDigest {
  readonly kind: PrimaryKind;
  /** The blind-index digest (`identity_identifiers.digest`). */
  readonly digest: string;
}

interface PrimaryId extends PrimaryDigest {
  readonly value: string;
}

/** The org a lookup or erasure is scoped to, as the store issues org ids (what `event.org` carries). */
function checkOrg(org: unknown): string {
  const parsed = resourceIdSchema.safeParse(org);
  if (!parsed.success) {
    throw new IdentityHubError(
      'invalid_subject',
      'the org must be an org id (1-128 characters of A-Z a-z 0-9 _ . : -)',
    );
  }
  return parsed.data;
}

const NOT_LINKED: IngestResult = Object.freeze({ profileId: null, merged: [], moved: false });
const DROPPED_ERASED: IngestResult = Object.freeze({
  profileId: null,
  merged: [],
  moved: false,
  dropped: 'erased',
});

/**
 * Transaction-scoped advisory lock key of a subject, from its blind-index digest (60 bits; a collision only
 * serialises two unrelated writes). Erasure and ingest both take the locks of the ids they name before
 * reading anything, so an erasure and a first event of the same id cannot interleave: without it, an ingest
 * could find neither rows nor an erasure record, and commit a profile right after the erasure committed.
 */
function subjectLockKey(digest: string): bigint {
  return BigInt(`0x${digest.slice(0, 15)}`);
}

function newId(prefix: 'prf' | 'idn'): string {
  return `${prefix}_${randomBytes(16).toString('hex')}`;
}

/**
 * The identity graph on the Database port (PostgreSQL or PGlite).
 *
 * Tenancy: every profile, identifier, trait and erasure record belongs to one org (`org_id`; for writes the
 * event's `org`, which the gateway stamped from the authenticated pipeline key). Digests are of (org, kind,
 * value), unique keys are per org, sealed values bind their org, and every query names the org: user "42" of
 * two orgs is two people, and no read, merge, move or erasure of one org reaches another's rows.
 *
 * Model: a profile holds identifiers (anonymous ids, at most one user id, vendor and click ids) and traits.
 * An anonymous id or user id belongs to one profile of its org at a time (unique digest per org). `identify`
 * links an anonymous id to a user id:
 *
 * - when the anonymous id's profile has no user yet, the two profiles merge; the winner is the older profile
 *   (then the smaller id), so any processing order ends with the same profile id;
 * - when it already belongs to another user (a shared device), the anonymous id moves to this user's profile
 *   and the two people stay apart.
 *
 * A merged-away profile remains as a tombstone pointing at its root (`merged_into`, path-compressed on every
 * merge), so ids handed out earlier still resolve (union-find). Identifier values and traits are sealed;
 * rows are found by keyed digests.
 */
export function createIdentityGraph(options: IdentityGraphOptions): IdentityGraph {
  const { db, crypto, index, profileKeys } = options;
  const maxAttempts = options.maxAttempts ?? 5;
  const clock = options.now ?? Date.now;
  const erasureRetentionMs = options.erasureRetentionMs ?? ERASURE_RECORD_RETENTION_MS;
  if (!Number.isSafeInteger(erasureRetentionMs) || erasureRetentionMs < MIN_ERASURE_RECORD_RETENTION_MS) {
    throw new IdentityHubError(
      'invalid_config',
      `erasureRetentionMs must be at least ${MIN_ERASURE_RECORD_RETENTION_MS} ms (the raw-events retention)`,
    );
  }

  async function inTransaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    let keyRounds = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        return await db.transaction(fn);
      } catch (error) {
        if (error instanceof KeyNeeded && profileKeys !== undefined && keyRounds < MAX_KEY_ROUNDS) {
          keyRounds++;
          attempt--;
          await (error.kind === 'profile' ? profileKeys.prepare(error.id) : profileKeys.fetch(error.id));
          continue;
        }
        if (error instanceof KeyNeeded) {
          throw new IdentityHubError(
            'graph_unavailable',
            'identity graph write could not get its DEKs ready',
          );
        }
        const again =
          error instanceof LostRace ||
          (isStoreError(error) && (error.code === 'serialization_failure' || error.code === 'conflict'));
        if (again && attempt < maxAttempts) {
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
          continue;
        }
        if (isStoreError(error) && error.retryable) {
          throw new IdentityHubError('graph_unavailable', `identity graph write failed (${error.code})`, {
            cause: error,
          });
        }
        throw error;
      }
    }
  }

  function primary(org: string, kind: PrimaryKind, value: string | undefined): PrimaryId | null {
    return value === undefined ? null : { kind, value, digest: index.digest(org, kind, value) };
  }

  /**
   * The erasure record's digest of an id of `org`: a keyed HMAC (a sub-key of the blind-index key) of its
   * blind-index digest, under a purpose of its own. Computable from a stored row without opening it (an
   * erasure never needs a DEK or a readable ciphertext), never a plain hash (an email's SHA-256 is reversed by
   * enumeration), and not equal to the live `identity_identifiers.digest`, so the records cannot be joined to
   * profiles in the database.
   */
  /** The profiles `profileIds` stand for: themselves and the ones merged into them, sorted. */
  async function membersOf(q: Pick<Queryable, 'query'>, org: string, profileIds: readonly string[]) {
    const { rows } = await q.query(
      `SELECT id FROM identity_profiles
        WHERE org_id = $1 AND (id = ANY($2::text[]) OR merged_into = ANY($2::text[])) ORDER BY id`,
      [org, profileIds],
    );
    return rows.map((row) => z.object({ id: z.string() }).parse(row).id);
  }

  /** The anonymous ids and user ids (blind-index digests) these profiles hold. */
  async function primaryDigestsOf(
    q: Pick<Queryable, 'query'>,
    org: string,
    profileIds: readonly string[],
  ): Promise<PrimaryDigest[]> {
    const { rows } = await q.query(
      `SELECT kind, digest FROM identity_identifiers
        WHERE org_id = $1 AND profile_id = ANY($2::text[]) AND kind IN ('anonymous_id', 'user_id')`,
      [org, profileIds],
    );
    return rows.map((row) => primaryDigestSchema.parse(row));
  }

  function checkSubject(subjectId: string): void {
    if (typeof subjectId !== 'string' || subjectId === '' || subjectId.length > MAX_SUBJECT_LENGTH) {
      throw new IdentityHubError('invalid_subject', `the subject must be 1-${MAX_SUBJECT_LENGTH} characters`);
    }
  }

  function matcherOf(org: string, ids: readonly PrimaryDigest[]): ErasedSubjectMatcher {
    const digests = new Set(ids.map((id) => `${id.kind}\0${id.digest}`));
    const erasureDigests = new Set(ids.map((id) => `${id.kind}\0${erasureDigest(org, id)}`));
    return {
      id: (kind, value) =>
        typeof value === 'string' &&
        value !== '' &&
        digests.has(`${kind}\0${index.digest(org, kind, value)}`),
      erasureDigest: (kind, digest) => erasureDigests.has(`${kind}\0${digest}`),
    };
  }

  function erasureDigest(org: string, id: PrimaryDigest): string {
    return index.erasureDigest(org, id.kind, id.digest);
  }

  async function lockSubjects(tx: Queryable, ids: readonly PrimaryDigest[]): Promise<void> {
    // Sorted, so two writes naming the same ids take their locks in the same order (no deadlock).
    const keys = [...new Set(ids.map((id) => subjectLockKey(id.digest)))].sort((a, b) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    if (keys.length === 0) return;
    await tx.query(
      `SELECT ${keys.map((_, i) => `pg_advisory_xact_lock($${i + 1}::bigint)`).join(', ')}`,
      keys.map(String),
    );
  }

  /**
   * The latest erasure recorded for any of these ids of `org`, or null. Records written before
   * identity-hub/0003 (`identity_erasures_legacy`) carry no org: they count in every org until they expire
   * (an erasure keeps holding; the cost is dropping another org's same id's older events for a while).
   */
  async function latestErasure(
    q: Pick<Queryable, 'query'>,
    org: string,
    ids: readonly PrimaryId[],
  ): Promise<{ erasedAt: Date; expiresAt: Date } | null> {
    const { rows } = await q.query(
      `SELECT max(erased_at) AS erased_at, max(expires_at) AS expires_at FROM (
         SELECT erased_at, expires_at FROM identity_erasures
          WHERE org_id = $1 AND (kind, digest) IN (SELECT * FROM unnest($2::text[], $3::text[]))
         UNION ALL
         SELECT erased_at, expires_at FROM identity_erasures_legacy
          WHERE (kind, digest) IN (SELECT * FROM unnest($2::text[], $4::text[]))
       ) AS records`,
      [
        org,
        ids.map((i) => i.kind),
        ids.map((i) => erasureDigest(org, i)),
        ids.map((i) => index.legacyErasureDigest(i.kind, i.value)),
      ],
    );
    const row = erasureRowSchema.parse(rows[0] ?? { erased_at: null, expires_at: null });
    return row.erased_at === null || row.expires_at === null
      ? null
      : { erasedAt: row.erased_at, expiresAt: row.expires_at };
  }

  /** Records these ids of `org` as erased at `erasedAt`; a later erasure of the same id moves its record forward. */
  async function recordErasure(
    tx: Queryable,
    org: string,
    ids: readonly PrimaryDigest[],
    erasedAt: Date,
    expiresAt: Date,
  ): Promise<void> {
    const unique = new Map(ids.map((id) => [`${id.kind}\0${id.digest}`, id]));
    if (unique.size === 0) return;
    const list = [...unique.values()];
    await tx.query(
      `INSERT INTO identity_erasures (org_id, kind, digest, erased_at, expires_at)
       SELECT $1, kind, digest, $4, $5 FROM unnest($2::text[], $3::text[]) AS t (kind, digest)
       ON CONFLICT (org_id, kind, digest) DO UPDATE
         SET erased_at = GREATEST(identity_erasures.erased_at, EXCLUDED.erased_at),
             expires_at = GREATEST(identity_erasures.expires_at, EXCLUDED.expires_at)`,
      [org, list.map((i) => i.kind), list.map((i) => erasureDigest(org, i)), erasedAt, expiresAt],
    );
  }

  /** Whether an event received at `receivedAtMs` predates the erasure (clock margin included). */
  function receivedBefore(receivedAtMs: number, erasure: { erasedAt: Date } | null): boolean {
    if (erasure === null) return false;
    // An unparseable receipt time cannot prove the event came after the erasure.
    return !(receivedAtMs >= erasure.erasedAt.getTime() + ERASURE_CLOCK_MARGIN_MS);
  }

  /**
   * The rows of these anonymous ids / user ids in `org`. The `kind IN` repeats the unique index's predicate so
   * the planner can use it.
   */
  async function findPrimaries(
    q: Pick<Queryable, 'query'>,
    org: string,
    ids: readonly PrimaryDigest[],
    lock = true,
  ) {
    const { rows } = await q.query(
      `SELECT id, kind, profile_id FROM identity_identifiers
        WHERE org_id = $1 AND kind IN ('anonymous_id', 'user_id')
          AND (kind, digest) IN (SELECT * FROM unnest($2::text[], $3::text[]))
        ORDER BY id${lock ? ' FOR UPDATE' : ''}`,
      [org, ids.map((i) => i.kind), ids.map((i) => i.digest)],
    );
    return rows.map((row) => identifierRowSchema.parse(row));
  }

  /** Seals a profile's value: under the profile's DEK with crypto-shredding, else the identity class key. */
  function sealFor(profileId: string, plaintext: string, context: EncryptionContext): string {
    if (profileKeys === undefined) return crypto.sealText(plaintext, context);
    if (!profileKeys.ready(profileId)) throw new KeyNeeded('profile', profileId);
    return crypto.sealText(plaintext, context, { subject: profileId });
  }

  /** Opens inside a transaction: with crypto-shredding, only with a DEK already in memory. */
  function openHeld(sealed: string, context: EncryptionContext): Buffer {
    if (profileKeys !== undefined) {
      let keyId: string | undefined;
      try {
        keyId = crypto.keyIdOf(sealed);
      } catch {
        // Malformed: openText below fails and says so.
      }
      if (keyId !== undefined && !profileKeys.holds(keyId)) throw new KeyNeeded('key', keyId);
    }
    return crypto.openText(sealed, context);
  }

  /**
   * `id` is chosen before the transaction (a write creates at most one profile) so its DEK can be made ready
   * outside it; a rerun of the same write reuses it (the rolled-back profile never existed).
   */
  async function createProfile(tx: Queryable, org: string, id: string, at: Date): Promise<string> {
    await tx.query(
      'INSERT INTO identity_profiles (id, org_id, created_at, updated_at) VALUES ($1, $2, $3, $3)',
      [id, org, at],
    );
    return id;
  }

  async function insertIdentifier(
    tx: Queryable,
    org: string,
    profileId: string,
    kind: IdentifierKind,
    value: string,
    digest: string,
    seenAt: Date,
  ): Promise<void> {
    const id = newId('idn');
    const sealed = sealFor(profileId, value, identifierContext(id, kind, org));
    const result = await tx.query(
      `INSERT INTO identity_identifiers (id, org_id, profile_id, kind, digest, value, value_key_id, first_seen_at, last_seen_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT DO NOTHING`,
      [id, org, profileId, kind, digest, sealed, crypto.keyIdOf(sealed), seenAt],
    );
    if (result.rowCount !== 1) throw new LostRace();
  }

  async function hasUser(tx: Queryable, org: string, profileId: string): Promise<boolean> {
    const { rows } = await tx.query(
      "SELECT 1 FROM identity_identifiers WHERE org_id = $1 AND profile_id = $2 AND kind = 'user_id' LIMIT 1",
      [org, profileId],
    );
    return rows.length > 0;
  }

  async function lockProfiles(tx: Queryable, org: string, ids: readonly string[]) {
    const { rows } = await tx.query(
      'SELECT id, created_at FROM identity_profiles WHERE org_id = $1 AND id = ANY($2::text[]) ORDER BY id FOR UPDATE',
      [org, ids],
    );
    return rows.map((row) => profileRowSchema.parse(row));
  }

  async function readTraits(tx: Queryable, org: string, profileId: string): Promise<StoredTraits | null> {
    const { rows } = await tx.query(
      'SELECT traits FROM identity_traits WHERE org_id = $1 AND profile_id = $2 FOR UPDATE',
      [org, profileId],
    );
    const row = rows[0];
    if (row === undefined) return null;
    return openTraits(org, profileId, traitsRowSchema.parse(row).traits);
  }

  function openTraits(org: string, profileId: string, sealed: string): StoredTraits {
    let plaintext: string;
    try {
      plaintext = openHeld(sealed, traitsContext(profileId, org)).toString('utf8');
    } catch (cause) {
      if (cause instanceof KeyNeeded) throw cause;
      throw new IdentityHubError('corrupt_record', 'stored traits do not open', { cause });
    }
    return parseTraits(plaintext);
  }

  async function openTraitsAsync(org: string, profileId: string, sealed: string): Promise<StoredTraits> {
    let plaintext: string;
    try {
      plaintext = (await crypto.openTextAsync(sealed, traitsContext(profileId, org))).toString('utf8');
    } catch (cause) {
      throw new IdentityHubError('corrupt_record', 'stored traits do not open', { cause });
    }
    return parseTraits(plaintext);
  }

  function parseTraits(plaintext: string): StoredTraits {
    const traits = parseStoredTraits(plaintext);
    if (traits === null) throw new IdentityHubError('corrupt_record', 'stored traits do not parse');
    return traits;
  }

  async function writeTraits(
    tx: Queryable,
    org: string,
    profileId: string,
    traits: StoredTraits,
    at: Date,
  ): Promise<void> {
    const sealed = sealFor(profileId, JSON.stringify(traits), traitsContext(profileId, org));
    await tx.query(
      `INSERT INTO identity_traits (profile_id, org_id, traits, traits_key_id, updated_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (profile_id) DO UPDATE SET traits = EXCLUDED.traits, traits_key_id = EXCLUDED.traits_key_id,
         updated_at = EXCLUDED.updated_at`,
      [profileId, org, sealed, crypto.keyIdOf(sealed), at],
    );
  }

  /**
   * Folds `loser` into `winner` (both of `org`): identifiers, traits (latest value per trait) and the
   * union-find pointer.
   */
  async function merge(tx: Queryable, org: string, winner: string, loser: string, at: Date): Promise<void> {
    await tx.query(
      `UPDATE identity_identifiers w SET last_seen_at = GREATEST(w.last_seen_at, l.last_seen_at)
         FROM identity_identifiers l
        WHERE w.org_id = $3 AND l.org_id = $3 AND w.profile_id = $1 AND l.profile_id = $2
          AND w.kind = l.kind AND w.digest = l.digest`,
      [winner, loser, org],
    );
    await tx.query(
      `DELETE FROM identity_identifiers l USING identity_identifiers w
        WHERE l.org_id = $3 AND w.org_id = $3 AND l.profile_id = $2 AND w.profile_id = $1
          AND l.kind = w.kind AND l.digest = w.digest`,
      [winner, loser, org],
    );
    await moveIdentifiers(tx, org, winner, { profileId: loser });
    const loserTraits = await readTraits(tx, org, loser);
    if (loserTraits !== null) {
      const winnerTraits = (await readTraits(tx, org, winner)) ?? {};
      await writeTraits(tx, org, winner, lwwMerge(winnerTraits, loserTraits).traits, at);
      await tx.query('DELETE FROM identity_traits WHERE org_id = $1 AND profile_id = $2', [org, loser]);
    }
    await tx.query(
      `UPDATE identity_profiles SET merged_into = $1, updated_at = $3
        WHERE org_id = $4 AND (id = $2 OR merged_into = $2)`,
      [winner, loser, at, org],
    );
    await tx.query('UPDATE identity_profiles SET updated_at = $2 WHERE id = $1 AND org_id = $3', [
      winner,
      at,
      org,
    ]);
  }

  /**
   * Moves identifiers to another profile (a merge, or an anonymous id leaving a shared device's other user).
   * With crypto-shredding each value is re-sealed under its new profile's DEK: erasing that profile must
   * destroy every key its values live under, and the old profile's DEK goes with the old profile.
   */
  async function moveIdentifiers(
    tx: Queryable,
    org: string,
    to: string,
    which: { readonly profileId: string } | { readonly identifierId: string },
  ): Promise<void> {
    const [column, value] =
      'profileId' in which ? ['profile_id', which.profileId] : ['id', which.identifierId];
    if (profileKeys === undefined) {
      await tx.query(`UPDATE identity_identifiers SET profile_id = $1 WHERE org_id = $3 AND ${column} = $2`, [
        to,
        value,
        org,
      ]);
      return;
    }
    const { rows } = await tx.query(
      `SELECT id, kind, value FROM identity_identifiers WHERE org_id = $2 AND ${column} = $1 ORDER BY id FOR UPDATE`,
      [value, org],
    );
    for (const raw of rows) {
      const row = valueRowSchema.parse(raw);
      const context = identifierContext(row.id, row.kind, org);
      let plaintext: Buffer;
      try {
        plaintext = openHeld(row.value, context);
      } catch (cause) {
        if (cause instanceof KeyNeeded) throw cause;
        throw new IdentityHubError('corrupt_record', 'a stored identifier does not open', { cause });
      }
      const sealed = sealFor(to, plaintext.toString('utf8'), context);
      plaintext.fill(0);
      await tx.query(
        'UPDATE identity_identifiers SET profile_id = $1, value = $2, value_key_id = $3 WHERE id = $4',
        [to, sealed, crypto.keyIdOf(sealed), row.id],
      );
    }
  }

  /** Links the event's anonymous id and user id; returns the profile they end up in. */
  async function link(
    tx: Queryable,
    org: string,
    anon: PrimaryId | null,
    user: PrimaryId | null,
    at: Date,
    newProfileId: string,
  ): Promise<{ profileId: string; merged: string[]; moved: boolean }> {
    const present = [anon, user].filter((id): id is PrimaryId => id !== null);
    const rows = await findPrimaries(tx, org, present);
    const anonRow = rows.find((r) => r.kind === 'anonymous_id');
    const userRow = rows.find((r) => r.kind === 'user_id');
    const result = (profileId: string, merged: string[] = [], moved = false) => ({
      profileId,
      merged,
      moved,
    });

    if (anon === null || user === null) {
      const only = anon ?? user;
      if (only === null) throw new Error('an event without ids is not linked');
      const row = anonRow ?? userRow;
      if (row !== undefined) return result(row.profile_id);
      const profileId = await createProfile(tx, org, newProfileId, at);
      await insertIdentifier(tx, org, profileId, only.kind, only.value, only.digest, at);
      return result(profileId);
    }

    if (anonRow === undefined && userRow === undefined) {
      const profileId = await createProfile(tx, org, newProfileId, at);
      await insertIdentifier(tx, org, profileId, 'anonymous_id', anon.value, anon.digest, at);
      await insertIdentifier(tx, org, profileId, 'user_id', user.value, user.digest, at);
      return result(profileId);
    }
    if (anonRow !== undefined && userRow === undefined) {
      await lockProfiles(tx, org, [anonRow.profile_id]);
      if (!(await hasUser(tx, org, anonRow.profile_id))) {
        await insertIdentifier(tx, org, anonRow.profile_id, 'user_id', user.value, user.digest, at);
        return result(anonRow.profile_id);
      }
      // The browser was identified as someone else before: this user gets a profile of their own.
      const profileId = await createProfile(tx, org, newProfileId, at);
      await insertIdentifier(tx, org, profileId, 'user_id', user.value, user.digest, at);
      await moveIdentifiers(tx, org, profileId, { identifierId: anonRow.id });
      return result(profileId, [], true);
    }
    if (anonRow === undefined && userRow !== undefined) {
      await insertIdentifier(tx, org, userRow.profile_id, 'anonymous_id', anon.value, anon.digest, at);
      return result(userRow.profile_id);
    }
    if (anonRow === undefined || userRow === undefined) throw new Error('unreachable');
    if (anonRow.profile_id === userRow.profile_id) return result(anonRow.profile_id);

    const profiles = await lockProfiles(tx, org, [anonRow.profile_id, userRow.profile_id]);
    if (await hasUser(tx, org, anonRow.profile_id)) {
      await moveIdentifiers(tx, org, userRow.profile_id, { identifierId: anonRow.id });
      return result(userRow.profile_id, [], true);
    }
    const [winner, loser] = [...profiles].sort(
      (a, b) => a.created_at.getTime() - b.created_at.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
    if (winner === undefined || loser === undefined) throw new Error('a profile row is missing');
    await merge(tx, org, winner.id, loser.id, at);
    return result(winner.id, [loser.id]);
  }

  async function recordVendorIds(
    tx: Queryable,
    org: string,
    profileId: string,
    ids: readonly { kind: IdentifierKind; value: string }[],
    at: Date,
  ): Promise<void> {
    if (ids.length === 0) return;
    const withDigests = ids.map((id) => ({ ...id, digest: index.digest(org, id.kind, id.value) }));
    const { rows } = await tx.query(
      `SELECT id, kind, digest, last_seen_at FROM identity_identifiers
        WHERE org_id = $1 AND profile_id = $2 AND (kind, digest) IN (SELECT * FROM unnest($3::text[], $4::text[]))`,
      [org, profileId, withDigests.map((i) => i.kind), withDigests.map((i) => i.digest)],
    );
    const known = new Map(
      rows.map((row) => vendorRowSchema.parse(row)).map((r) => [`${r.kind}\0${r.digest}`, r]),
    );
    for (const id of withDigests) {
      const existing = known.get(`${id.kind}\0${id.digest}`);
      if (existing === undefined) {
        await insertIdentifier(tx, org, profileId, id.kind, id.value, id.digest, at);
      } else if (at.getTime() - existing.last_seen_at.getTime() > LAST_SEEN_GRANULARITY_MS) {
        await tx.query('UPDATE identity_identifiers SET last_seen_at = $2 WHERE id = $1', [existing.id, at]);
      }
    }
  }

  async function recordTraits(
    tx: Queryable,
    org: string,
    profileId: string,
    incoming: StoredTraits,
    at: Date,
  ): Promise<void> {
    if (Object.keys(incoming).length === 0) return;
    const current = (await readTraits(tx, org, profileId)) ?? {};
    const merged = lwwMerge(current, incoming);
    if (merged.changed) await writeTraits(tx, org, profileId, merged.traits, at);
  }

  async function ingest(event: CanonicalEvent): Promise<IngestResult> {
    // The org the gateway stamped from the pipeline key (authenticated), never one the payload chose.
    const org = checkOrg(event.org);
    const anon = primary(org, 'anonymous_id', event.anonymousId);
    const user = primary(org, 'user_id', event.userId);
    if (anon === null && user === null) return NOT_LINKED;
    const ids = [anon, user].filter((id): id is PrimaryId => id !== null);
    // Server time orders updates: a browser's clock can be anywhere.
    const at = new Date(Date.parse(event.receivedAt));
    const vendorIds = vendorIdentifiers(event);
    const traits = event.type === 'identify' ? traitsFromEvent(event.traits, at.getTime()) : {};
    const newProfileId = newId('prf');
    // A hint only (the transaction decides): an event about to be dropped needs no DEK made for it.
    if (profileKeys !== undefined && !receivedBefore(at.getTime(), await latestErasure(db, org, ids))) {
      // Make the DEKs this write will most likely need ready before the transaction opens (one pass in the
      // common case); whatever else it turns out to need (a merge's other profile) costs one more round.
      const known = await profilesOf(db, org, ids);
      for (const profileId of known.length === 0 ? [newProfileId] : known) {
        if (!profileKeys.ready(profileId)) await profileKeys.prepare(profileId);
      }
    }
    return await inTransaction(async (tx) => {
      // Locks first, then the record: an erasure of these ids either committed before (its record is seen
      // here) or waits for this write and then erases what it wrote.
      await lockSubjects(tx, ids);
      const erasure = await latestErasure(tx, org, ids);
      if (erasure !== null && receivedBefore(at.getTime(), erasure)) {
        // Received before the erasure: the person's data from before it stays erased. The event's other id
        // (an anonymous id first linked to the erased user id by this very event) is recorded as erased from
        // the same moment, so that id's own earlier events, further back on the bus, are dropped too.
        await recordErasure(tx, org, ids, erasure.erasedAt, erasure.expiresAt);
        return DROPPED_ERASED;
      }
      const linked = await link(tx, org, anon, user, at, newProfileId);
      await recordVendorIds(tx, org, linked.profileId, vendorIds, at);
      await recordTraits(tx, org, linked.profileId, traits, at);
      return linked;
    });
  }

  /** The profiles these ids of `org` belong to now (outside a transaction: a hint of which DEKs a write needs). */
  async function profilesOf(
    q: Pick<Queryable, 'query'>,
    org: string,
    ids: readonly PrimaryId[],
  ): Promise<string[]> {
    const rows = await findPrimaries(q, org, ids, false);
    return [...new Set(rows.map((row) => row.profile_id))].sort();
  }

  async function profileFor(
    q: Pick<Queryable, 'query'>,
    org: string,
    subject: Subject,
  ): Promise<string | null> {
    const ids = [
      primary(org, 'user_id', subject.userId),
      primary(org, 'anonymous_id', subject.anonymousId),
    ].filter((id): id is PrimaryId => id !== null);
    if (ids.length === 0) return null;
    const parsed = await findPrimaries(q, org, ids, false);
    // The user id is the stronger link: a shared device's anonymous id may point at someone else.
    return (parsed.find((r) => r.kind === 'user_id') ?? parsed[0])?.profile_id ?? null;
  }

  return {
    ingest,

    async lookup(orgId, subject, request) {
      const org = checkOrg(orgId);
      if (!request.consent) return null;
      const profileId = await profileFor(db, org, subject);
      if (profileId === null) return null;
      const identifiers: Partial<Record<IdentifierKind, string>> = {};
      if (request.kinds.length > 0) {
        const { rows } = await db.query(
          `SELECT DISTINCT ON (kind) id, kind, value FROM identity_identifiers
            WHERE org_id = $1 AND profile_id = $2 AND kind = ANY($3::text[])
            ORDER BY kind, last_seen_at DESC, id`,
          [org, profileId, [...request.kinds]],
        );
        for (const raw of rows) {
          const row = valueRowSchema.parse(raw);
          try {
            identifiers[row.kind as IdentifierKind] = (
              await crypto.openTextAsync(row.value, identifierContext(row.id, row.kind, org))
            ).toString('utf8');
          } catch (cause) {
            throw new IdentityHubError('corrupt_record', 'a stored identifier does not open', { cause });
          }
        }
      }
      if (request.traits !== true) return { profileId, identifiers };
      const { rows } = await db.query(
        'SELECT traits FROM identity_traits WHERE org_id = $1 AND profile_id = $2',
        [org, profileId],
      );
      const row = rows[0];
      if (row === undefined) return { profileId, identifiers };
      const stored = await openTraitsAsync(org, profileId, traitsRowSchema.parse(row).traits);
      const traits: Record<string, JsonValue> = {};
      for (const [key, entry] of Object.entries(stored)) traits[key] = entry.v;
      return { profileId, identifiers, traits };
    },

    async subjectMatcher(orgId, subjectId) {
      const org = checkOrg(orgId);
      checkSubject(subjectId);
      const ids = [primary(org, 'user_id', subjectId), primary(org, 'anonymous_id', subjectId)].filter(
        (id): id is PrimaryId => id !== null,
      );
      const profileIds = [...new Set((await findPrimaries(db, org, ids, false)).map((r) => r.profile_id))];
      if (profileIds.length === 0) return matcherOf(org, ids);
      const members = await membersOf(db, org, profileIds);
      return matcherOf(org, [...ids, ...(await primaryDigestsOf(db, org, members))]);
    },

    async erase(orgId, subjectId) {
      const org = checkOrg(orgId);
      checkSubject(subjectId);
      const erasedAt = new Date(clock());
      const expiresAt = new Date(erasedAt.getTime() + erasureRetentionMs);
      return await inTransaction(async (tx) => {
        // Only `org`'s digests: the same id in another org digests differently, so it is neither found nor
        // erased here, and the answer (zeros, a record of this org) is the one an unknown id gets.
        const ids = [primary(org, 'user_id', subjectId), primary(org, 'anonymous_id', subjectId)].filter(
          (id): id is PrimaryId => id !== null,
        );
        await lockSubjects(tx, ids);
        const rows = await findPrimaries(tx, org, ids);
        const profileIds = [...new Set(rows.map((r) => r.profile_id))].sort();
        if (profileIds.length === 0) {
          // Recorded even when the graph holds nothing yet: the hub may not have consumed this person's
          // events when the erasure runs, and they must not build a profile when it does.
          await recordErasure(tx, org, ids, erasedAt, expiresAt);
          return {
            profiles: 0,
            identifiers: 0,
            traits: 0,
            profileIds: [],
            keySubjects: [],
            isErased: matcherOf(org, ids),
          };
        }
        await lockProfiles(tx, org, profileIds);
        const count = async (sql: string) =>
          countSchema.parse((await tx.query(sql, [org, profileIds])).rows[0]).n;
        const identifiers = await count(
          'SELECT count(*) AS n FROM identity_identifiers WHERE org_id = $1 AND profile_id = ANY($2::text[])',
        );
        const traits = await count(
          'SELECT count(*) AS n FROM identity_traits WHERE org_id = $1 AND profile_id = ANY($2::text[])',
        );
        const profiles = await count(
          `SELECT count(*) AS n FROM identity_profiles
            WHERE org_id = $1 AND (id = ANY($2::text[]) OR merged_into = ANY($2::text[]))`,
        );
        const keySubjects = await membersOf(tx, org, profileIds);
        // Every anonymous id and user id the person had, besides the one the erasure named: their events
        // still on the bus must not rebuild the profile either. Digests only, nothing is opened.
        const erased = [...ids, ...(await primaryDigestsOf(tx, org, keySubjects))];
        await recordErasure(tx, org, erased, erasedAt, expiresAt);
        // ON DELETE CASCADE removes identifiers, traits and the merged-away tombstones with each root.
        await tx.query('DELETE FROM identity_profiles WHERE org_id = $1 AND id = ANY($2::text[])', [
          org,
          profileIds,
        ]);
        return { profiles, identifiers, traits, profileIds, keySubjects, isErased: matcherOf(org, erased) };
      });
    },

    async canonicalProfileId(orgId, profileId) {
      const org = checkOrg(orgId);
      const { rows } = await db.query(
        'SELECT coalesce(merged_into, id) AS root FROM identity_profiles WHERE org_id = $1 AND id = $2',
        [org, profileId],
      );
      const row = rows[0];
      return row === undefined ? null : z.object({ root: z.string() }).parse(row).root;
    },

    async purgeErasureRecords() {
      const now = new Date(clock());
      const records = await db.query('DELETE FROM identity_erasures WHERE expires_at <= $1', [now]);
      // Written before identity-hub/0003 (org-blind): purged by the same rule until none is left.
      const legacy = await db.query('DELETE FROM identity_erasures_legacy WHERE expires_at <= $1', [now]);
      return records.rowCount + legacy.rowCount;
    },
  };
}
