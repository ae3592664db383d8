import { isStoreError, type Queryable } from '@signal/store';
import { z } from 'zod';
import { pipelineSecretContext } from './encrypted-columns';
import { ControlPlaneError } from './errors';
import { newId } from './ids';
import { type Page, type PageRequest, resolvePage, toPage } from './pagination';
import { type ControlPlaneCrypto, openColumn, sealColumn } from './sealing';
import {
  digestSecret,
  newHmacSecret,
  newPipelineKey,
  PIPELINE_KEY_ENVIRONMENTS,
  PIPELINE_KEY_PATTERN,
  type PipelineKeyEnvironment,
  pipelineKeyHint,
} from './secrets';
import type { Change, Clock } from './users.repository';
import {
  allowedDomainsSchema,
  linkedDomainsSchema,
  nameSchema,
  PIPELINE_TYPES,
  type PipelineType,
  parseInput,
  parseRow,
  slugify,
  slugSchema,
} from './validation';

/** A rotated key or secret keeps working this long unless told otherwise (ARCHITECTURE: 72 h grace). */
export const DEFAULT_GRACE_SECONDS = 72 * 3600;
export const MAX_GRACE_SECONDS = 30 * 86_400;
/** Keys and secrets whose grace ended this long ago are deleted at the next rotation. */
const RETIRED_RETENTION_MS = 30 * 86_400_000;

export interface Pipeline {
  readonly id: string;
  readonly orgId: string;
  readonly name: string;
  readonly slug: string;
  readonly type: PipelineType;
  readonly enabled: boolean;
  readonly allowedDomains: readonly string[];
  readonly linkedDomains: readonly string[];
  readonly rateLimitRps: number | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export type CredentialStatus = 'active' | 'grace' | 'retired';

/** Metadata of one pipeline key; the key itself is only ever returned by create / rotate. */
export interface PipelineKeyInfo {
  readonly id: string;
  readonly pipelineId: string;
  /** `dk_live_AbCd…`: enough to tell keys apart, useless to an attacker. */
  readonly hint: string;
  readonly environment: PipelineKeyEnvironment;
  readonly status: CredentialStatus;
  readonly createdAt: Date;
  readonly graceEndsAt: Date | null;
}

export interface PipelineSecretInfo {
  readonly id: string;
  readonly pipelineId: string;
  readonly status: CredentialStatus;
  readonly createdAt: Date;
  readonly graceEndsAt: Date | null;
}

/** What the ingestion gateway needs to authenticate a request carrying a pipeline key. */
export interface GatewayPipeline {
  readonly orgId: string;
  readonly pipelineId: string;
  readonly type: PipelineType;
  readonly enabled: boolean;
  /** `active` for the current key, `grace` for a rotated key still inside its grace window. */
  readonly keyStatus: 'active' | 'grace';
  readonly allowedDomains: readonly string[];
  readonly rateLimitRps: number | null;
  /**
   * HMAC-SHA256 keys for server sources, decrypted: the current secret first, then previous ones still in
   * their grace window. A secret that fails to decrypt is left out (and audited as `crypto.decrypt_failed`
   * by the crypto service), so requests signed with it are refused: fail closed.
   */
  readonly hmacSecrets: readonly Buffer[];
  /**
   * When this answer stops being true (ms since the epoch): the earliest end of a grace window in it (the
   * key's, or a rotated secret's); null when nothing in it expires. Caches keep it no longer than that.
   */
  readonly validUntil: number | null;
}

const graceSchema = z.number().int().min(0).max(MAX_GRACE_SECONDS);

export const newPipelineSchema = z.strictObject({
  name: nameSchema,
  slug: slugSchema.optional(),
  type: z.enum(PIPELINE_TYPES),
  enabled: z.boolean().default(true),
  allowed_domains: allowedDomainsSchema.default([]),
  linked_domains: linkedDomainsSchema.default([]),
  rate_limit_rps: z.number().int().min(1).max(1_000_000).nullable().default(null),
  key_environment: z.enum(PIPELINE_KEY_ENVIRONMENTS).default('live'),
});
export type NewPipelineInput = z.input<typeof newPipelineSchema>;

export const pipelinePatchSchema = z
  .strictObject({
    name: nameSchema.optional(),
    slug: slugSchema.optional(),
    type: z.enum(PIPELINE_TYPES).optional(),
    enabled: z.boolean().optional(),
    allowed_domains: allowedDomainsSchema.optional(),
    linked_domains: linkedDomainsSchema.optional(),
    rate_limit_rps: z.number().int().min(1).max(1_000_000).nullable().optional(),
  })
  .refine((patch) => Object.values(patch).some((v) => v !== undefined), 'at least one field to change');
export type PipelinePatch = z.input<typeof pipelinePatchSchema>;

export const rotationSchema = z.strictObject({
  grace_seconds: graceSchema.default(DEFAULT_GRACE_SECONDS),
  environment: z.enum(PIPELINE_KEY_ENVIRONMENTS).optional(),
});
export type RotationInput = z.input<typeof rotationSchema>;

export interface CreatedPipeline {
  readonly pipeline: Pipeline;
  /** Shown once. */
  readonly key: string;
  /** Shown once: the HMAC-SHA256 key (its ASCII bytes) server sources sign with. */
  readonly hmacSecret: string;
  readonly keyInfo: PipelineKeyInfo;
  readonly secretInfo: PipelineSecretInfo;
}

export interface PipelinesRepository {
  create(orgId: string, input: NewPipelineInput): Promise<CreatedPipeline>;
  insert(q: Queryable, orgId: string, input: NewPipelineInput): Promise<CreatedPipeline>;
  get(orgId: string, pipelineId: string): Promise<Pipeline | null>;
  getBySlug(q: Pick<Queryable, 'query'>, orgId: string, slug: string): Promise<Pipeline | null>;
  list(orgId: string, page?: PageRequest): Promise<Page<Pipeline>>;
  update(orgId: string, pipelineId: string, patch: PipelinePatch): Promise<Change<Pipeline>>;
  /** Deletes the pipeline with its keys, secrets and integrations. */
  delete(orgId: string, pipelineId: string): Promise<Pipeline>;
  listKeys(orgId: string, pipelineId: string): Promise<PipelineKeyInfo[]>;
  /** New active key (shown once); the old one keeps working until now + grace. */
  rotateKey(
    orgId: string,
    pipelineId: string,
    input?: RotationInput,
  ): Promise<{ readonly key: string; readonly keyInfo: PipelineKeyInfo; readonly previous: PipelineKeyInfo }>;
  rotateKeyIn(
    q: Queryable,
    orgId: string,
    pipelineId: string,
    input?: RotationInput,
  ): Promise<{ readonly key: string; readonly keyInfo: PipelineKeyInfo; readonly previous: PipelineKeyInfo }>;
  /** Ends a rotated key's grace now. The active key cannot be revoked: rotate it (grace 0) instead. */
  revokeKey(orgId: string, pipelineId: string, keyId: string): Promise<PipelineKeyInfo>;
  listSecrets(orgId: string, pipelineId: string): Promise<PipelineSecretInfo[]>;
  /** New HMAC secret (shown once); the previous one stays valid until now + grace. */
  rotateSecret(
    orgId: string,
    pipelineId: string,
    input?: RotationInput,
  ): Promise<{
    readonly hmacSecret: string;
    readonly secretInfo: PipelineSecretInfo;
    readonly previous: PipelineSecretInfo;
  }>;
  rotateSecretIn(
    q: Queryable,
    orgId: string,
    pipelineId: string,
    input?: RotationInput,
  ): Promise<{
    readonly hmacSecret: string;
    readonly secretInfo: PipelineSecretInfo;
    readonly previous: PipelineSecretInfo;
  }>;
  /** Gateway read: the pipeline a key belongs to, if the key is active or in grace. */
  findByKey(key: string): Promise<GatewayPipeline | null>;
  /**
   * Identity hub read: the cross-domain redirect allowlist. Empty for an unknown or disabled pipeline, so a
   * disabled pipeline's tokens are neither minted nor redeemed (not even those minted before it was disabled).
   */
  linkedDomains(pipelineId: string): Promise<readonly string[]>;
}

const pipelineRowSchema = z
  .object({
    id: z.string(),
    org_id: z.string(),
    name: z.string(),
    slug: z.string(),
    type: z.enum(PIPELINE_TYPES),
    enabled: z.boolean(),
    allowed_domains: z.array(z.string()),
    linked_domains: z.array(z.string()),
    rate_limit_rps: z.number().int().nullable(),
    created_at: z.date(),
    updated_at: z.date(),
  })
  .transform(
    (row): Pipeline => ({
      id: row.id,
      orgId: row.org_id,
      name: row.name,
      slug: row.slug,
      type: row.type,
      enabled: row.enabled,
      allowedDomains: row.allowed_domains,
      linkedDomains: row.linked_domains,
      rateLimitRps: row.rate_limit_rps,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    }),
  );

const PIPELINE_COLUMNS =
  'id, org_id, name, slug, type, enabled, allowed_domains, linked_domains, rate_limit_rps, created_at, updated_at';

const keyRowSchema = z.object({
  id: z.string(),
  pipeline_id: z.string(),
  key_hint: z.string(),
  environment: z.enum(PIPELINE_KEY_ENVIRONMENTS),
  created_at: z.date(),
  grace_ends_at: z.date().nullable(),
});
const KEY_COLUMNS = 'id, pipeline_id, key_hint, environment, created_at, grace_ends_at';

const secretRowSchema = z.object({
  id: z.string(),
  pipeline_id: z.string(),
  created_at: z.date(),
  grace_ends_at: z.date().nullable(),
});
const SECRET_COLUMNS = 'id, pipeline_id, created_at, grace_ends_at';

const gatewayRowSchema = z.object({
  pipeline_id: z.string(),
  org_id: z.string(),
  type: z.enum(PIPELINE_TYPES),
  enabled: z.boolean(),
  allowed_domains: z.array(z.string()),
  rate_limit_rps: z.number().int().nullable(),
  grace_ends_at: z.date().nullable(),
});

const secretValueRowSchema = z.object({
  id: z.string(),
  secret: z.string(),
  grace_ends_at: z.date().nullable(),
});

function statusOf(graceEndsAt: Date | null, now: Date): CredentialStatus {
  if (graceEndsAt === null) return 'active';
  return graceEndsAt.getTime() > now.getTime() ? 'grace' : 'retired';
}

export function createPipelinesRepository(deps: {
  readonly db: {
    query: Queryable['query'];
    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  };
  readonly clock: Clock;
  readonly crypto: ControlPlaneCrypto;
}): PipelinesRepository {
  const { db, clock, crypto } = deps;

  const toPipeline = (row: unknown) => parseRow(pipelineRowSchema, row, 'pipelines');
  const toKeyInfo = (row: unknown, now: Date): PipelineKeyInfo => {
    const r = parseRow(keyRowSchema, row, 'pipeline_keys');
    return {
      id: r.id,
      pipelineId: r.pipeline_id,
      hint: r.key_hint,
      environment: r.environment,
      status: statusOf(r.grace_ends_at, now),
      createdAt: r.created_at,
      graceEndsAt: r.grace_ends_at,
    };
  };
  const toSecretInfo = (row: unknown, now: Date): PipelineSecretInfo => {
    const r = parseRow(secretRowSchema, row, 'pipeline_secrets');
    return {
      id: r.id,
      pipelineId: r.pipeline_id,
      status: statusOf(r.grace_ends_at, now),
      createdAt: r.created_at,
      graceEndsAt: r.grace_ends_at,
    };
  };

  async function insertKey(
    q: Queryable,
    pipelineId: string,
    environment: PipelineKeyEnvironment,
    now: Date,
  ): Promise<{ key: string; keyInfo: PipelineKeyInfo }> {
    const key = newPipelineKey(environment);
    const { rows } = await q.query(
      `INSERT INTO pipeline_keys (id, pipeline_id, key_hash, key_hint, environment, created_at)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${KEY_COLUMNS}`,
      [newId('pipelineKey', now), pipelineId, digestSecret(key), pipelineKeyHint(key), environment, now],
    );
    return { key, keyInfo: toKeyInfo(rows[0], now) };
  }

  async function insertSecret(
    q: Queryable,
    pipelineId: string,
    now: Date,
  ): Promise<{ hmacSecret: string; secretInfo: PipelineSecretInfo }> {
    const hmacSecret = newHmacSecret();
    const id = newId('pipelineSecret', now);
    const sealed = sealColumn(crypto, hmacSecret, pipelineSecretContext(id));
    const { rows } = await q.query(
      `INSERT INTO pipeline_secrets (id, pipeline_id, secret, key_id, created_at)
       VALUES ($1, $2, $3, $4, $5) RETURNING ${SECRET_COLUMNS}`,
      [id, pipelineId, sealed.text, sealed.keyId, now],
    );
    return { hmacSecret, secretInfo: toSecretInfo(rows[0], now) };
  }

  /** Locks the pipeline row (serialises rotations) and checks it belongs to the org. */
  async function lockPipeline(q: Queryable, orgId: string, pipelineId: string): Promise<Pipeline> {
    const { rows } = await q.query(
      `SELECT ${PIPELINE_COLUMNS} FROM pipelines WHERE org_id = $1 AND id = $2 FOR UPDATE`,
      [orgId, pipelineId],
    );
    if (rows[0] === undefined) throw new ControlPlaneError('not_found', 'pipeline not found');
    return toPipeline(rows[0]);
  }

  async function insert(q: Queryable, orgId: string, raw: NewPipelineInput): Promise<CreatedPipeline> {
    const input = parseInput(newPipelineSchema, raw, 'pipeline');
    const now = clock();
    let rows: unknown[];
    try {
      ({ rows } = await q.query(
        `INSERT INTO pipelines (id, org_id, name, slug, type, enabled, allowed_domains, linked_domains,
                                rate_limit_rps, created_at, updated_at)
         SELECT $1, o.id, $3, $4, $5, $6, $7::text[], $8::text[], $9, $10, $10 FROM orgs o WHERE o.id = $2
         RETURNING ${PIPELINE_COLUMNS}`,
        [
          newId('pipeline', now),
          orgId,
          input.name,
          input.slug ?? slugify(input.name),
          input.type,
          input.enabled,
          input.allowed_domains,
          input.linked_domains,
          input.rate_limit_rps,
          now,
        ],
      ));
    } catch (error) {
      throw mapSlugConflict(error);
    }
    if (rows[0] === undefined) throw new ControlPlaneError('not_found', 'org not found');
    const pipeline = toPipeline(rows[0]);
    const { key, keyInfo } = await insertKey(q, pipeline.id, input.key_environment, now);
    const { hmacSecret, secretInfo } = await insertSecret(q, pipeline.id, now);
    return { pipeline, key, hmacSecret, keyInfo, secretInfo };
  }

  async function rotateKeyIn(q: Queryable, orgId: string, pipelineId: string, raw: RotationInput = {}) {
    const input = parseInput(rotationSchema, raw, 'rotation');
    await lockPipeline(q, orgId, pipelineId);
    const now = clock();
    const graceEnd = new Date(now.getTime() + input.grace_seconds * 1000);
    const { rows } = await q.query(
      `UPDATE pipeline_keys SET grace_ends_at = $2 WHERE pipeline_id = $1 AND grace_ends_at IS NULL
       RETURNING ${KEY_COLUMNS}`,
      [pipelineId, graceEnd],
    );
    if (rows[0] === undefined) throw new ControlPlaneError('corrupt_row', 'pipeline has no active key');
    const previous = toKeyInfo(rows[0], now);
    await q.query('DELETE FROM pipeline_keys WHERE pipeline_id = $1 AND grace_ends_at < $2', [
      pipelineId,
      new Date(now.getTime() - RETIRED_RETENTION_MS),
    ]);
    const created = await insertKey(q, pipelineId, input.environment ?? previous.environment, now);
    return { ...created, previous };
  }

  async function rotateSecretIn(q: Queryable, orgId: string, pipelineId: string, raw: RotationInput = {}) {
    const input = parseInput(rotationSchema, raw, 'rotation');
    if (input.environment !== undefined) {
      throw new ControlPlaneError('invalid_input', 'invalid rotation: environment applies to keys only');
    }
    await lockPipeline(q, orgId, pipelineId);
    const now = clock();
    const graceEnd = new Date(now.getTime() + input.grace_seconds * 1000);
    const { rows } = await q.query(
      `UPDATE pipeline_secrets SET grace_ends_at = $2 WHERE pipeline_id = $1 AND grace_ends_at IS NULL
       RETURNING ${SECRET_COLUMNS}`,
      [pipelineId, graceEnd],
    );
    if (rows[0] === undefined) throw new ControlPlaneError('corrupt_row', 'pipeline has no active secret');
    const previous = toSecretInfo(rows[0], now);
    await q.query('DELETE FROM pipeline_secrets WHERE pipeline_id = $1 AND grace_ends_at < $2', [
      pipelineId,
      new Date(now.getTime() - RETIRED_RETENTION_MS),
    ]);
    const created = await insertSecret(q, pipelineId, now);
    return { ...created, previous };
  }

  return {
    insert,
    rotateKeyIn,
    rotateSecretIn,
    create: (orgId, input) => db.transaction((tx) => insert(tx, orgId, input)),

    async get(orgId, pipelineId) {
      const { rows } = await db.query(
        `SELECT ${PIPELINE_COLUMNS} FROM pipelines WHERE org_id = $1 AND id = $2`,
        [orgId, pipelineId],
      );
      return rows[0] === undefined ? null : toPipeline(rows[0]);
    },

    async getBySlug(q, orgId, slug) {
      const { rows } = await q.query(
        `SELECT ${PIPELINE_COLUMNS} FROM pipelines WHERE org_id = $1 AND slug = $2`,
        [orgId, slug],
      );
      return rows[0] === undefined ? null : toPipeline(rows[0]);
    },

    async list(orgId, page) {
      const { limit, after } = resolvePage(page);
      const { rows } = await db.query(
        `SELECT ${PIPELINE_COLUMNS} FROM pipelines WHERE org_id = $1 AND ($2::text IS NULL OR id > $2)
         ORDER BY id LIMIT $3`,
        [orgId, after, limit + 1],
      );
      return toPage(rows.map(toPipeline), limit);
    },

    async update(orgId, pipelineId, raw) {
      const patch = parseInput(pipelinePatchSchema, raw, 'pipeline');
      return db.transaction(async (tx) => {
        const before = await lockPipeline(tx, orgId, pipelineId);
        try {
          const { rows } = await tx.query(
            `UPDATE pipelines SET
               name = coalesce($3, name),
               slug = coalesce($4, slug),
               type = coalesce($5, type),
               enabled = coalesce($6, enabled),
               allowed_domains = coalesce($7::text[], allowed_domains),
               linked_domains = coalesce($8::text[], linked_domains),
               rate_limit_rps = CASE WHEN $9 THEN $10::integer ELSE rate_limit_rps END,
               updated_at = $11
             WHERE org_id = $1 AND id = $2 RETURNING ${PIPELINE_COLUMNS}`,
            [
              orgId,
              pipelineId,
              patch.name ?? null,
              patch.slug ?? null,
              patch.type ?? null,
              patch.enabled ?? null,
              patch.allowed_domains ?? null,
              patch.linked_domains ?? null,
              patch.rate_limit_rps !== undefined,
              patch.rate_limit_rps ?? null,
              clock(),
            ],
          );
          return { before, after: toPipeline(rows[0]) };
        } catch (error) {
          throw mapSlugConflict(error);
        }
      });
    },

    async delete(orgId, pipelineId) {
      const { rows } = await db.query(
        `DELETE FROM pipelines WHERE org_id = $1 AND id = $2 RETURNING ${PIPELINE_COLUMNS}`,
        [orgId, pipelineId],
      );
      if (rows[0] === undefined) throw new ControlPlaneError('not_found', 'pipeline not found');
      return toPipeline(rows[0]);
    },

    async listKeys(orgId, pipelineId) {
      const now = clock();
      const { rows } = await db.query(
        `SELECT k.id, k.pipeline_id, k.key_hint, k.environment, k.created_at, k.grace_ends_at
           FROM pipeline_keys k JOIN pipelines p ON p.id = k.pipeline_id
          WHERE p.org_id = $1 AND p.id = $2 ORDER BY k.id DESC`,
        [orgId, pipelineId],
      );
      return rows.map((row) => toKeyInfo(row, now));
    },

    rotateKey: (orgId, pipelineId, input) =>
      db.transaction((tx) => rotateKeyIn(tx, orgId, pipelineId, input)),

    async revokeKey(orgId, pipelineId, keyId) {
      return db.transaction(async (tx) => {
        await lockPipeline(tx, orgId, pipelineId);
        const now = clock();
        const { rows } = await tx.query(
          `SELECT ${KEY_COLUMNS} FROM pipeline_keys WHERE pipeline_id = $1 AND id = $2`,
          [pipelineId, keyId],
        );
        if (rows[0] === undefined) throw new ControlPlaneError('not_found', 'pipeline key not found');
        const key = toKeyInfo(rows[0], now);
        if (key.status === 'active') {
          throw new ControlPlaneError(
            'invalid_input',
            'the active key cannot be revoked: rotate it with grace_seconds 0 instead',
          );
        }
        if (key.status === 'retired') return key;
        const updated = await tx.query(
          `UPDATE pipeline_keys SET grace_ends_at = $3 WHERE pipeline_id = $1 AND id = $2 RETURNING ${KEY_COLUMNS}`,
          [pipelineId, keyId, now],
        );
        return toKeyInfo(updated.rows[0], now);
      });
    },

    async listSecrets(orgId, pipelineId) {
      const now = clock();
      const { rows } = await db.query(
        `SELECT s.id, s.pipeline_id, s.created_at, s.grace_ends_at
           FROM pipeline_secrets s JOIN pipelines p ON p.id = s.pipeline_id
          WHERE p.org_id = $1 AND p.id = $2 ORDER BY s.id DESC`,
        [orgId, pipelineId],
      );
      return rows.map((row) => toSecretInfo(row, now));
    },

    rotateSecret: (orgId, pipelineId, input) =>
      db.transaction((tx) => rotateSecretIn(tx, orgId, pipelineId, input)),

    async findByKey(key) {
      if (typeof key !== 'string' || !PIPELINE_KEY_PATTERN.test(key)) return null;
      const now = clock();
      const { rows } = await db.query(
        `SELECT p.id AS pipeline_id, p.org_id, p.type, p.enabled, p.allowed_domains, p.rate_limit_rps,
                k.grace_ends_at
           FROM pipeline_keys k JOIN pipelines p ON p.id = k.pipeline_id
          WHERE k.key_hash = $1 AND (k.grace_ends_at IS NULL OR k.grace_ends_at > $2)`,
        [digestSecret(key), now],
      );
      if (rows[0] === undefined) return null;
      const row = parseRow(gatewayRowSchema, rows[0], 'pipeline_keys');
      const secrets = await db.query(
        `SELECT id, secret, grace_ends_at FROM pipeline_secrets
          WHERE pipeline_id = $1 AND (grace_ends_at IS NULL OR grace_ends_at > $2)
          ORDER BY (grace_ends_at IS NULL) DESC, id DESC`,
        [row.pipeline_id, now],
      );
      const hmacSecrets: Buffer[] = [];
      const graceEnds: number[] = row.grace_ends_at === null ? [] : [row.grace_ends_at.getTime()];
      for (const raw of secrets.rows) {
        const secret = parseRow(secretValueRowSchema, raw, 'pipeline_secrets');
        if (secret.grace_ends_at !== null) graceEnds.push(secret.grace_ends_at.getTime());
        try {
          hmacSecrets.push(openColumn(crypto, secret.secret, pipelineSecretContext(secret.id)));
        } catch {
          // Already audited by the crypto service (crypto.decrypt_failed); this secret simply does not verify.
        }
      }
      return {
        orgId: row.org_id,
        pipelineId: row.pipeline_id,
        type: row.type,
        enabled: row.enabled,
        keyStatus: row.grace_ends_at === null ? 'active' : 'grace',
        allowedDomains: row.allowed_domains,
        rateLimitRps: row.rate_limit_rps,
        hmacSecrets,
        validUntil: graceEnds.length === 0 ? null : Math.min(...graceEnds),
      };
    },

    async linkedDomains(pipelineId) {
      const { rows } = await db.query<{ linked_domains: unknown }>(
        'SELECT linked_domains FROM pipelines WHERE id = $1 AND enabled',
        [pipelineId],
      );
      if (rows[0] === undefined) return [];
      return parseRow(z.array(z.string()), rows[0].linked_domains, 'pipelines');
    },
  };
}

function mapSlugConflict(error: unknown): unknown {
  if (isStoreError(error) && error.code === 'conflict') {
    return new ControlPlaneError('conflict', 'a pipeline with this slug already exists in the org');
  }
  return error;
}
