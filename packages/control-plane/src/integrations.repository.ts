import {
  type ConsentRequirement,
  consentRequirementSchema,
  DEFAULT_CONSENT_REQUIREMENTS,
  type DefaultRequirementKey,
} from '@signal/consent';
import { type PipelineStep, pipelineStepsSchema } from '@signal/org-data-layer';
import type { Queryable } from '@signal/store';
import { z } from 'zod';
import { integrationCredentialsContext } from './encrypted-columns';
import { ControlPlaneError } from './errors';
import { newId } from './ids';
import { type Page, type PageRequest, resolvePage, toPage } from './pagination';
import { type ControlPlaneCrypto, openColumn, sealColumn } from './sealing';
import type { Change, Clock } from './users.repository';
import { nameSchema, parseInput, parseRow } from './validation';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Vendor credentials: a flat object of strings (access tokens, API secrets, …). Write-only through the API. */
export type IntegrationCredentials = Readonly<Record<string, string>>;

export interface Integration {
  readonly id: string;
  readonly orgId: string;
  readonly pipelineId: string;
  readonly vendor: string;
  readonly name: string;
  readonly enabled: boolean;
  /** Non-secret parameters (pixel id, measurement id, endpoint URL…). */
  readonly settings: Readonly<Record<string, JsonValue>>;
  readonly consent: ConsentRequirement;
  /** Map/filter steps the processor runs on this integration's copy of each event (empty: none). */
  readonly pipeline: readonly PipelineStep[];
  /** `{field: "••••1a2b"}` computed when the credentials were written; null when none are set. */
  readonly credentialsMasked: Readonly<Record<string, string>> | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export const MASK = '••••';
const MAX_SETTINGS_BYTES = 64 * 1024;
const MAX_CREDENTIALS_BYTES = 32 * 1024;
/** Settings are stored in plaintext: keys that name a secret belong in `credentials`. */
const SECRET_LOOKING_KEY = /secret|token|password|passwd|credential|api_?key|private|signature/i;

const jsonSchema = z.json() as unknown as z.ZodType<JsonValue>;

/**
 * Settings that decide where an integration's requests, and so its credentials, go: a vendor's endpoint
 * override (`endpoint`), the webhook's `url`, and the trust anchors its TLS accepts (`extraCaPem`). Every
 * setting a vendor adapter reads a host or a CA from belongs here (@signal/vendors, settings.ts).
 */
export const DESTINATION_SETTINGS: readonly string[] = Object.freeze(['endpoint', 'url', 'extraCaPem']);

/**
 * Whether `next` settings send requests somewhere else than `previous` did. Credentials are write-only:
 * whoever may edit settings but not see the credentials must not be able to point them at a host of their
 * own (an editor setting `endpoint` to theirs would receive the Meta access token with the next event).
 */
export function destinationChanged(
  previous: Readonly<Record<string, JsonValue>>,
  next: Readonly<Record<string, JsonValue>>,
): boolean {
  return DESTINATION_SETTINGS.some((key) => JSON.stringify(previous[key]) !== JSON.stringify(next[key]));
}

const settingsSchema = z.record(z.string().min(1).max(100), jsonSchema).superRefine((settings, ctx) => {
  for (const key of Object.keys(settings)) {
    if (SECRET_LOOKING_KEY.test(key)) {
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: 'looks like a secret: put it in credentials (encrypted, write-only), not in settings',
      });
    }
  }
  if (Buffer.byteLength(JSON.stringify(settings), 'utf8') > MAX_SETTINGS_BYTES) {
    ctx.addIssue({ code: 'custom', message: `at most ${MAX_SETTINGS_BYTES} bytes of JSON` });
  }
});

export const credentialsSchema = z
  .record(z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,99}$/), z.string().min(1).max(8192))
  .refine((c) => Object.keys(c).length >= 1 && Object.keys(c).length <= 32, '1 to 32 fields')
  .refine(
    (c) => Buffer.byteLength(JSON.stringify(c), 'utf8') <= MAX_CREDENTIALS_BYTES,
    `at most ${MAX_CREDENTIALS_BYTES} bytes`,
  );

const vendorSchema = z
  .string()
  .regex(/^[a-z][a-z0-9_]{1,39}$/, 'a vendor id such as meta, ga4, google_ads, tiktok or webhook');

export const newIntegrationSchema = z.strictObject({
  vendor: vendorSchema,
  name: nameSchema,
  enabled: z.boolean().default(true),
  settings: settingsSchema.default({}),
  /** Defaults to the vendor's requirement from @signal/consent when it has one; required otherwise. */
  consent: consentRequirementSchema.optional(),
  /** The integration's map/filter steps (`@signal/org-data-layer`), run by the processor in order. */
  pipeline: pipelineStepsSchema.default([]),
  credentials: credentialsSchema.optional(),
});
export type NewIntegrationInput = z.input<typeof newIntegrationSchema>;

export const integrationPatchSchema = z
  .strictObject({
    name: nameSchema.optional(),
    enabled: z.boolean().optional(),
    settings: settingsSchema.optional(),
    consent: consentRequirementSchema.optional(),
    /** Replaces the whole pipeline; `[]` removes every step. */
    pipeline: pipelineStepsSchema.optional(),
    /** Replaces the credentials; null removes them. */
    credentials: credentialsSchema.nullable().optional(),
  })
  .refine((patch) => Object.values(patch).some((v) => v !== undefined), 'at least one field to change');
export type IntegrationPatch = z.input<typeof integrationPatchSchema>;

/** `••••` + the last 4 characters for values long enough that 4 characters give nothing away. */
export function maskCredentials(credentials: IntegrationCredentials): Record<string, string> {
  const masked: Record<string, string> = {};
  for (const [field, value] of Object.entries(credentials)) {
    masked[field] = value.length >= 16 ? `${MASK}${value.slice(-4)}` : MASK;
  }
  return masked;
}

export interface IntegrationsRepository {
  create(orgId: string, pipelineId: string, input: NewIntegrationInput): Promise<Integration>;
  get(orgId: string, integrationId: string): Promise<Integration | null>;
  list(orgId: string, pipelineId: string, page?: PageRequest): Promise<Page<Integration>>;
  update(orgId: string, integrationId: string, patch: IntegrationPatch): Promise<Change<Integration>>;
  delete(orgId: string, integrationId: string): Promise<Integration>;
  /** Processor / delivery read: every integration of a pipeline (credentials masked). */
  listForPipeline(pipelineId: string): Promise<Integration[]>;
  /** Delivery read: one integration by id, whatever its org (the worker serves the whole deployment). */
  getById(integrationId: string): Promise<Integration | null>;
  /** Delivery read: the ids of every integration, enabled or not (each has a delivery topic). */
  listIds(): Promise<string[]>;
  /**
   * Delivery read: the decrypted credentials, in memory only; null when none are set or the integration
   * does not exist. A ciphertext that does not open throws the crypto service's `CryptoError`.
   */
  credentials(integrationId: string): Promise<IntegrationCredentials | null>;
}

const integrationRowSchema = z
  .object({
    id: z.string(),
    org_id: z.string(),
    pipeline_id: z.string(),
    vendor: z.string(),
    name: z.string(),
    enabled: z.boolean(),
    settings: z.record(z.string(), jsonSchema),
    consent: consentRequirementSchema,
    pipeline: pipelineStepsSchema,
    credentials_masked: z.record(z.string(), z.string()).nullable(),
    created_at: z.date(),
    updated_at: z.date(),
  })
  .transform(
    (row): Integration => ({
      id: row.id,
      orgId: row.org_id,
      pipelineId: row.pipeline_id,
      vendor: row.vendor,
      name: row.name,
      enabled: row.enabled,
      settings: row.settings,
      consent: row.consent,
      pipeline: row.pipeline,
      credentialsMasked: row.credentials_masked,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    }),
  );

/** Columns qualified for a join with pipelines (`p`), which supplies the org. */
const INTEGRATION_COLUMNS =
  'i.id, p.org_id, i.pipeline_id, i.vendor, i.name, i.enabled, i.settings, i.consent, i.pipeline, i.credentials_masked, i.created_at, i.updated_at';

function defaultConsent(vendor: string): ConsentRequirement | undefined {
  return Object.hasOwn(DEFAULT_CONSENT_REQUIREMENTS, vendor)
    ? DEFAULT_CONSENT_REQUIREMENTS[vendor as DefaultRequirementKey]
    : undefined;
}

export function createIntegrationsRepository(deps: {
  readonly db: {
    query: Queryable['query'];
    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  };
  readonly clock: Clock;
  readonly crypto: ControlPlaneCrypto;
}): IntegrationsRepository {
  const { db, clock, crypto } = deps;
  const toIntegration = (row: unknown) => parseRow(integrationRowSchema, row, 'integrations');

  function seal(integrationId: string, credentials: IntegrationCredentials) {
    const sealed = sealColumn(
      crypto,
      JSON.stringify(credentials),
      integrationCredentialsContext(integrationId),
    );
    return { ...sealed, masked: JSON.stringify(maskCredentials(credentials)) };
  }

  async function select(q: Pick<Queryable, 'query'>, orgId: string, integrationId: string, lock: boolean) {
    const { rows } = await q.query(
      `SELECT ${INTEGRATION_COLUMNS} FROM integrations i JOIN pipelines p ON p.id = i.pipeline_id
        WHERE p.org_id = $1 AND i.id = $2 ${lock ? 'FOR UPDATE OF i' : ''}`,
      [orgId, integrationId],
    );
    return rows[0] === undefined ? null : toIntegration(rows[0]);
  }

  return {
    async create(orgId, pipelineId, raw) {
      const input = parseInput(newIntegrationSchema, raw, 'integration');
      const consent = input.consent ?? defaultConsent(input.vendor);
      if (consent === undefined) {
        throw new ControlPlaneError(
          'invalid_input',
          `invalid integration: consent: required for vendor ${input.vendor} (no default requirement)`,
        );
      }
      const now = clock();
      const id = newId('integration', now);
      const sealed = input.credentials === undefined ? null : seal(id, input.credentials);
      const { rows } = await db.query(
        `WITH inserted AS (
           INSERT INTO integrations (id, pipeline_id, vendor, name, enabled, settings, consent, pipeline,
                                     credentials, credentials_key_id, credentials_masked, created_at, updated_at)
           SELECT $1, p.id, $4, $5, $6, $7::jsonb, $8::jsonb, $13::jsonb, $9, $10, $11::jsonb, $12, $12
             FROM pipelines p WHERE p.org_id = $2 AND p.id = $3
           RETURNING *)
         SELECT ${INTEGRATION_COLUMNS} FROM inserted i JOIN pipelines p ON p.id = i.pipeline_id`,
        [
          id,
          orgId,
          pipelineId,
          input.vendor,
          input.name,
          input.enabled,
          JSON.stringify(input.settings),
          JSON.stringify(consent),
          sealed?.text ?? null,
          sealed?.keyId ?? null,
          sealed?.masked ?? null,
          now,
          JSON.stringify(input.pipeline),
        ],
      );
      if (rows[0] === undefined) throw new ControlPlaneError('not_found', 'pipeline not found');
      return toIntegration(rows[0]);
    },

    get: (orgId, integrationId) => select(db, orgId, integrationId, false),

    async list(orgId, pipelineId, page) {
      const { limit, after } = resolvePage(page);
      const { rows } = await db.query(
        `SELECT ${INTEGRATION_COLUMNS} FROM integrations i JOIN pipelines p ON p.id = i.pipeline_id
          WHERE p.org_id = $1 AND p.id = $2 AND ($3::text IS NULL OR i.id > $3)
          ORDER BY i.id LIMIT $4`,
        [orgId, pipelineId, after, limit + 1],
      );
      return toPage(rows.map(toIntegration), limit);
    },

    async update(orgId, integrationId, raw) {
      const patch = parseInput(integrationPatchSchema, raw, 'integration');
      return db.transaction(async (tx) => {
        const before = await select(tx, orgId, integrationId, true);
        if (before === null) throw new ControlPlaneError('not_found', 'integration not found');
        if (
          patch.settings !== undefined &&
          patch.credentials === undefined &&
          before.credentialsMasked !== null &&
          destinationChanged(before.settings, patch.settings)
        ) {
          throw new ControlPlaneError(
            'invalid_input',
            `settings: changing ${DESTINATION_SETTINGS.join(', ')} changes where this integration's credentials are sent; send credentials in the same request (or credentials: null to remove them)`,
          );
        }
        const credentialsChange = patch.credentials !== undefined;
        const sealed =
          patch.credentials === undefined || patch.credentials === null
            ? null
            : seal(integrationId, patch.credentials);
        await tx.query(
          `UPDATE integrations SET
             name = coalesce($2, name),
             enabled = coalesce($3, enabled),
             settings = coalesce($4::jsonb, settings),
             consent = coalesce($5::jsonb, consent),
             pipeline = coalesce($11::jsonb, pipeline),
             credentials = CASE WHEN $6 THEN $7 ELSE credentials END,
             credentials_key_id = CASE WHEN $6 THEN $8 ELSE credentials_key_id END,
             credentials_masked = CASE WHEN $6 THEN $9::jsonb ELSE credentials_masked END,
             updated_at = $10
           WHERE id = $1`,
          [
            integrationId,
            patch.name ?? null,
            patch.enabled ?? null,
            patch.settings === undefined ? null : JSON.stringify(patch.settings),
            patch.consent === undefined ? null : JSON.stringify(patch.consent),
            credentialsChange,
            sealed?.text ?? null,
            sealed?.keyId ?? null,
            sealed?.masked ?? null,
            clock(),
            patch.pipeline === undefined ? null : JSON.stringify(patch.pipeline),
          ],
        );
        const after = await select(tx, orgId, integrationId, false);
        if (after === null) throw new ControlPlaneError('not_found', 'integration not found');
        return { before, after };
      });
    },

    async delete(orgId, integrationId) {
      return db.transaction(async (tx) => {
        const existing = await select(tx, orgId, integrationId, true);
        if (existing === null) throw new ControlPlaneError('not_found', 'integration not found');
        await tx.query('DELETE FROM integrations WHERE id = $1', [integrationId]);
        return existing;
      });
    },

    async listForPipeline(pipelineId) {
      const { rows } = await db.query(
        `SELECT ${INTEGRATION_COLUMNS} FROM integrations i JOIN pipelines p ON p.id = i.pipeline_id
          WHERE p.id = $1 ORDER BY i.id`,
        [pipelineId],
      );
      return rows.map(toIntegration);
    },

    async getById(integrationId) {
      const { rows } = await db.query(
        `SELECT ${INTEGRATION_COLUMNS} FROM integrations i JOIN pipelines p ON p.id = i.pipeline_id
          WHERE i.id = $1`,
        [integrationId],
      );
      return rows[0] === undefined ? null : toIntegration(rows[0]);
    },

    async listIds() {
      const { rows } = await db.query<{ id: unknown }>('SELECT id FROM integrations ORDER BY id');
      return rows.map((row) => z.string().parse(row.id));
    },

    async credentials(integrationId) {
      const { rows } = await db.query<{ credentials: unknown }>(
        'SELECT credentials FROM integrations WHERE id = $1',
        [integrationId],
      );
      const stored = rows[0]?.credentials;
      if (stored === undefined || stored === null) return null;
      if (typeof stored !== 'string') throw new ControlPlaneError('corrupt_row', 'integrations.credentials');
      const plaintext = openColumn(crypto, stored, integrationCredentialsContext(integrationId));
      let parsed: unknown;
      try {
        parsed = JSON.parse(plaintext.toString('utf8'));
      } catch {
        throw new ControlPlaneError('corrupt_row', 'integration credentials are not JSON');
      } finally {
        plaintext.fill(0);
      }
      return Object.freeze(parseRow(credentialsSchema, parsed, 'integrations'));
    },
  };
}
