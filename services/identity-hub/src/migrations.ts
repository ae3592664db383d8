import { type Migration, type Queryable, requireMigrations } from '@signal/store';

/**
 * Tables of the Identity Hub. Released ids never change; new changes get new migrations.
 *
 * Nothing a person could be recognised by is stored in plaintext: identifier values and traits are v1
 * ciphertexts (text form) bound to their table, column and row, with the key id beside each for the
 * re-encryption job; lookups go through `digest`, a keyed HMAC-SHA-256 whose key (`identity_index_keys`) is
 * itself stored sealed. Since 0003 every row is of one org, and nothing is shared between orgs.
 */
export const identityHubMigrations: readonly Migration[] = Object.freeze([
  {
    id: 'identity-hub/0001_identity',
    sql: `
CREATE TABLE used_token_ids (
  jti        text PRIMARY KEY,
  expires_at timestamptz NOT NULL
);
CREATE INDEX used_token_ids_expires_at ON used_token_ids (expires_at);

CREATE TABLE identity_index_keys (
  id         text PRIMARY KEY,
  secret     text NOT NULL,
  key_id     text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX identity_index_keys_key_id ON identity_index_keys (key_id, id);

CREATE TABLE identity_profiles (
  id          text PRIMARY KEY,
  merged_into text REFERENCES identity_profiles (id) ON DELETE CASCADE,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL,
  CHECK (merged_into IS NULL OR merged_into <> id)
);
CREATE INDEX identity_profiles_merged_into ON identity_profiles (merged_into) WHERE merged_into IS NOT NULL;

CREATE TABLE identity_identifiers (
  id            text PRIMARY KEY,
  profile_id    text NOT NULL REFERENCES identity_profiles (id) ON DELETE CASCADE,
  kind          text NOT NULL,
  digest        text NOT NULL,
  value         text NOT NULL,
  value_key_id  text NOT NULL,
  first_seen_at timestamptz NOT NULL,
  last_seen_at  timestamptz NOT NULL
);
-- An anonymous id or a user id belongs to exactly one profile; a vendor id once per profile.
CREATE UNIQUE INDEX identity_identifiers_primary ON identity_identifiers (kind, digest)
  WHERE kind IN ('anonymous_id', 'user_id');
CREATE UNIQUE INDEX identity_identifiers_per_profile ON identity_identifiers (profile_id, kind, digest);
CREATE INDEX identity_identifiers_key_id ON identity_identifiers (value_key_id, id);

CREATE TABLE identity_traits (
  profile_id    text PRIMARY KEY REFERENCES identity_profiles (id) ON DELETE CASCADE,
  traits        text NOT NULL,
  traits_key_id text NOT NULL,
  updated_at    timestamptz NOT NULL
);
CREATE INDEX identity_traits_key_id ON identity_traits (traits_key_id, profile_id);
`,
  },
  {
    // Erasure records: which anonymous ids and user ids were erased, and when, so a raw event of an erased
    // person still on the bus (redelivered, lagging, replayed) cannot rebuild the profile. `digest` is a
    // keyed HMAC (the blind-index key, under a purpose of its own), never the id nor a plain hash of it;
    // rows are purged at `expires_at` (erasure + retention, at least the raw-events retention).
    id: 'identity-hub/0002_identity_erasures',
    sql: `
CREATE TABLE identity_erasures (
  kind       text NOT NULL,
  digest     text NOT NULL,
  erased_at  timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (kind, digest)
);
CREATE INDEX identity_erasures_expires_at ON identity_erasures (expires_at);
`,
  },
  {
    // Tenant isolation. Before this, the graph ignored the org: user "42" of org A and of org B were one
    // profile, and either org's lookup or erasure reached the other's person. Now every row carries its org,
    // the unique keys are per org, digests are of (org, kind, value) and sealed values bind their org.
    //
    // Rows written before: they carry no org, and their org cannot be recovered. The events that wrote them
    // did carry one, but it was not stored, and a profile may already hold two orgs' people merged (the bug
    // itself: one profile, traits merged by last write). Their digests cannot be recomputed in SQL either.
    // Attributing them would guess, and a wrong guess is the leak this fixes; keeping them unattributed would
    // keep personal data no org can look up or erase. So the graph's rows are deleted: it is an enrichment
    // cache that the next events of each visitor rebuild, per org (docs: README, "Upgrading to 0003").
    //
    // Erasure records written before are kept, read-only, as `identity_erasures_legacy`: they stand for
    // erasures that must keep holding against raw events still on the bus. They are org-blind, so until they
    // expire (expires_at, as before) they drop such events of that id in every org: over-dropping, bounded in
    // time, never a resurrection. Purged like the new ones; a later release may drop the empty table.
    id: 'identity-hub/0003_identity_org_scope',
    sql: `
ALTER TABLE identity_erasures RENAME TO identity_erasures_legacy;
ALTER TABLE identity_erasures_legacy RENAME CONSTRAINT identity_erasures_pkey TO identity_erasures_legacy_pkey;
ALTER INDEX identity_erasures_expires_at RENAME TO identity_erasures_legacy_expires_at;

CREATE TABLE identity_erasures (
  org_id     text NOT NULL,
  kind       text NOT NULL,
  digest     text NOT NULL,
  erased_at  timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (org_id, kind, digest)
);
CREATE INDEX identity_erasures_expires_at ON identity_erasures (expires_at);

TRUNCATE identity_traits, identity_identifiers, identity_profiles;

ALTER TABLE identity_profiles ADD COLUMN org_id text NOT NULL;
ALTER TABLE identity_profiles ADD CONSTRAINT identity_profiles_org_id_id_key UNIQUE (org_id, id);
-- A profile merges only into a profile of its own org; identifiers and traits belong to a profile of theirs.
ALTER TABLE identity_profiles
  DROP CONSTRAINT identity_profiles_merged_into_fkey,
  ADD CONSTRAINT identity_profiles_merged_into_fkey FOREIGN KEY (org_id, merged_into)
    REFERENCES identity_profiles (org_id, id) ON DELETE CASCADE;

ALTER TABLE identity_identifiers ADD COLUMN org_id text NOT NULL;
ALTER TABLE identity_identifiers
  DROP CONSTRAINT identity_identifiers_profile_id_fkey,
  ADD CONSTRAINT identity_identifiers_profile_id_fkey FOREIGN KEY (org_id, profile_id)
    REFERENCES identity_profiles (org_id, id) ON DELETE CASCADE;
-- An anonymous id or a user id belongs to exactly one profile of its org.
DROP INDEX identity_identifiers_primary;
CREATE UNIQUE INDEX identity_identifiers_primary ON identity_identifiers (org_id, kind, digest)
  WHERE kind IN ('anonymous_id', 'user_id');

ALTER TABLE identity_traits ADD COLUMN org_id text NOT NULL;
ALTER TABLE identity_traits
  DROP CONSTRAINT identity_traits_profile_id_fkey,
  ADD CONSTRAINT identity_traits_profile_id_fkey FOREIGN KEY (org_id, profile_id)
    REFERENCES identity_profiles (org_id, id) ON DELETE CASCADE;
`,
  },
  {
    // Consents of record: a signed-in person's choices, declared by the customer's server with a signed
    // consent_update and applied as a veto to all their events. Kept here, not in the cache alone: an
    // objection to direct marketing is a record that must survive a restart (the embedded cache lives in
    // memory), an eviction, and a Redis without persistence. `subject_digest` is a SHA-256 of the org and a
    // keyed pseudonym of the user id (the blind-index key), never the id; `categories` holds one choice and
    // its time per category (no personal data). Purged at `expires_at` (13 months after the last choice, or
    // 10 years when the record holds a withdrawal).
    id: 'identity-hub/0004_consent_of_record',
    sql: `
CREATE TABLE identity_consent_of_record (
  org_id         text NOT NULL,
  subject_digest text NOT NULL,
  categories     jsonb NOT NULL,
  updated_at     timestamptz NOT NULL,
  expires_at     timestamptz NOT NULL,
  PRIMARY KEY (org_id, subject_digest)
);
CREATE INDEX identity_consent_of_record_expires_at ON identity_consent_of_record (expires_at);
`,
  },
  {
    // Visitors' consent states (`@signal/consent` state store), kept beside their cache copies: a withdrawal
    // must survive a restart of the embedded pipeline (whose cache lives in memory), an eviction, and a Redis
    // without persistence, or an event that waited (a retry, a backlog, a replay) goes out on the consent it
    // arrived with. Written when a visitor's choices change, not on every event. `visitor_key` is the store's
    // SHA-256 of the org and the anonymous id, never the id; `state` holds choices and signal strings (no
    // personal data). Purged at `expires_at` (13 months after the last change).
    id: 'identity-hub/0005_visitor_consent',
    sql: `
CREATE TABLE consent_visitor_states (
  visitor_key text PRIMARY KEY,
  state       jsonb NOT NULL,
  updated_at  bigint NOT NULL,
  expires_at  timestamptz NOT NULL
);
CREATE INDEX consent_visitor_states_expires_at ON consent_visitor_states (expires_at);
`,
  },
]);

/**
 * For a service that uses the identity tables where they exist (the event processor and the delivery worker:
 * erasure records, consents of record): `no_tables` when this database has none of them; otherwise start-up
 * fails, naming what is missing, unless every identity migration is applied. Code upgraded before
 * `signal-cli migrate` would otherwise fail every signed consent_update and hold back its whole partition.
 */
export async function requireIdentityMigrations(
  db: Queryable,
  service: string,
): Promise<'ready' | 'no_tables'> {
  const { rows } = await db.query<{ present: unknown }>(
    `SELECT to_regclass('identity_index_keys') IS NOT NULL AS present`,
  );
  if (rows[0]?.present !== true) return 'no_tables';
  await requireMigrations(db, identityHubMigrations, service);
  return 'ready';
}
