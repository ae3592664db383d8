import type { Migration } from '@signal/store';

/**
 * Control-plane tables. Conventions:
 * - ids are text (`pl_…`, see ids.ts) and sort by creation time: lists page on the id alone;
 * - every encrypted column is TEXT holding the v1 text form (`v1.…`), with a `*key_id` column beside it (hex
 *   key id, NULL for a legacy plaintext value) and an index on (key_id, id), so the re-encryption job and
 *   `/health/crypto` count and walk records per key without decrypting anything;
 * - secrets that only need checking (pipeline keys, refresh tokens) are stored as SHA-256 digests of
 *   high-entropy random values, never in a recoverable form.
 */
const init = `
CREATE TABLE orgs (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  slug        text NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);

CREATE TABLE users (
  id                 text PRIMARY KEY,
  org_id             text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  email              text NOT NULL CHECK (email = lower(email)),
  name               text,
  role               text NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
  password_hash      text NOT NULL,
  -- Set for invited users until they choose their own password.
  must_change_password boolean NOT NULL DEFAULT false,
  -- Access tokens issued at or before this instant are refused (immediate revocation).
  tokens_valid_after timestamptz,
  created_at         timestamptz NOT NULL,
  updated_at         timestamptz NOT NULL,
  UNIQUE (org_id, email)
);
-- At most one owner per org (the repository guarantees at least one).
CREATE UNIQUE INDEX users_one_owner_per_org ON users (org_id) WHERE role = 'owner';
CREATE INDEX users_email ON users (email);

CREATE TABLE refresh_tokens (
  id          text PRIMARY KEY,
  user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- All tokens descending from one login share a family; reuse of a rotated token revokes the user's tokens.
  family_id   text NOT NULL,
  token_hash  text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
  issued_at   timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz,
  revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE pipelines (
  id               text PRIMARY KEY,
  org_id           text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  name             text NOT NULL,
  slug             text NOT NULL,
  type             text NOT NULL CHECK (type IN ('web', 'app', 'server')),
  enabled          boolean NOT NULL DEFAULT true,
  allowed_domains  text[] NOT NULL DEFAULT '{}',
  linked_domains   text[] NOT NULL DEFAULT '{}',
  rate_limit_rps   integer CHECK (rate_limit_rps IS NULL OR rate_limit_rps > 0),
  created_at       timestamptz NOT NULL,
  updated_at       timestamptz NOT NULL,
  UNIQUE (org_id, slug)
);
CREATE INDEX pipelines_org ON pipelines (org_id, id);

CREATE TABLE pipeline_keys (
  id             text PRIMARY KEY,
  pipeline_id    text NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
  key_hash       text NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
  -- "dk_live_AbCd…" style hint for humans: the environment and the first 4 random characters.
  key_hint       text NOT NULL,
  environment    text NOT NULL CHECK (environment IN ('live', 'test')),
  created_at     timestamptz NOT NULL,
  -- NULL: the active key. Set at rotation (now + grace) or revocation (now); the key works until then.
  grace_ends_at  timestamptz
);
CREATE UNIQUE INDEX pipeline_keys_one_active ON pipeline_keys (pipeline_id) WHERE grace_ends_at IS NULL;
CREATE INDEX pipeline_keys_pipeline ON pipeline_keys (pipeline_id, id);

CREATE TABLE pipeline_secrets (
  id             text PRIMARY KEY,
  pipeline_id    text NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
  secret         text NOT NULL,
  key_id         text,
  created_at     timestamptz NOT NULL,
  grace_ends_at  timestamptz
);
CREATE UNIQUE INDEX pipeline_secrets_one_active ON pipeline_secrets (pipeline_id) WHERE grace_ends_at IS NULL;
CREATE INDEX pipeline_secrets_pipeline ON pipeline_secrets (pipeline_id, id);
CREATE INDEX pipeline_secrets_key_id ON pipeline_secrets (key_id, id);

CREATE TABLE integrations (
  id                  text PRIMARY KEY,
  pipeline_id         text NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
  vendor              text NOT NULL,
  name                text NOT NULL,
  enabled             boolean NOT NULL DEFAULT true,
  settings            jsonb NOT NULL DEFAULT '{}',
  consent             jsonb NOT NULL,
  credentials         text,
  credentials_key_id  text,
  -- {field: "••••1a2b"}: computed when the credentials are written, so reads never decrypt.
  credentials_masked  jsonb,
  created_at          timestamptz NOT NULL,
  updated_at          timestamptz NOT NULL,
  CHECK ((credentials IS NULL) = (credentials_masked IS NULL))
);
CREATE INDEX integrations_pipeline ON integrations (pipeline_id, id);
CREATE INDEX integrations_credentials_key_id ON integrations (credentials_key_id, id);

CREATE TABLE data_layer_configs (
  org_id         text PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
  version        integer NOT NULL CHECK (version > 0),
  pii_rules      jsonb NOT NULL,
  bot_filtering  jsonb NOT NULL,
  routing_rules  jsonb NOT NULL,
  updated_at     timestamptz NOT NULL,
  updated_by     text
);
`;

/**
 * Integration pipelines (map/filter steps, `@signal/org-data-layer`): a JSON array the processor compiles.
 * Existing integrations get the empty pipeline, which delivers events unchanged (what they did before).
 */
const integrationPipeline = `
ALTER TABLE integrations ADD COLUMN pipeline jsonb NOT NULL DEFAULT '[]'
  CHECK (jsonb_typeof(pipeline) = 'array');
`;

/**
 * One-time passwords expire (`ONE_TIME_PASSWORD_TTL_MS`, 72 h). Invitations still open when this runs get the
 * full period from now rather than from their creation, so an upgrade does not lock out recent invitees.
 */
const passwordExpiry = `
ALTER TABLE users ADD COLUMN password_expires_at timestamptz;
UPDATE users SET password_expires_at = now() + interval '72 hours' WHERE must_change_password;
`;

/**
 * A login's absolute end (`SESSION_MAX_AGE`): each rotation used to issue a token living REFRESH_TOKEN_TTL
 * from then, so a login refreshed within the TTL lasted forever. Tokens issued before this end with their
 * own expiry: their holders sign in again by then, at the latest. The default (the longest REFRESH_TOKEN_TTL
 * allowed) is for instances of the previous release still running during a rolling upgrade, which insert
 * without the column: their logins keep working and end within 90 days.
 */
const sessionMaxAge = `
ALTER TABLE refresh_tokens ADD COLUMN session_expires_at timestamptz;
UPDATE refresh_tokens SET session_expires_at = expires_at;
ALTER TABLE refresh_tokens ALTER COLUMN session_expires_at SET NOT NULL;
ALTER TABLE refresh_tokens ALTER COLUMN session_expires_at SET DEFAULT now() + interval '90 days';
ALTER TABLE refresh_tokens ADD CONSTRAINT refresh_tokens_within_session CHECK (expires_at <= session_expires_at);
`;

export const controlPlaneMigrations: readonly Migration[] = Object.freeze([
  { id: 'control-plane/0001_init', sql: init },
  { id: 'control-plane/0002_integration_pipeline', sql: integrationPipeline },
  { id: 'control-plane/0003_password_expiry', sql: passwordExpiry },
  { id: 'control-plane/0004_session_max_age', sql: sessionMaxAge },
]);
