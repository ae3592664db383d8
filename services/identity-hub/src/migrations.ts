import type { Migration } from '@signal/store';

/**
 * Tables of the Identity Hub. Released ids never change; new changes get new migrations.
 *
 * Nothing a person could be recognised by is stored in plaintext: identifier values and traits are v1
 * ciphertexts (text form) bound to their table, column and row, with the key id beside each for the
 * re-encryption job; lookups go through `digest`, a keyed HMAC-SHA-256 whose key (`identity_index_keys`) is
 * itself stored sealed.
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
]);
