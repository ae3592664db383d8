import {
  type BotFilteringConfig,
  type OrgDataLayerRules,
  orgDataLayerRulesSchema,
  type RoutingRule,
} from '@signal/org-data-layer';
import type { Queryable } from '@signal/store';
import { z } from 'zod';
import { ControlPlaneError } from './errors';
import type { Change, Clock } from './users.repository';
import { parseInput, parseRow } from './validation';

/**
 * The Org Data Layer: per-org rules the event processor applies to every event, in order (schema → consent →
 * bots → PII → dedup → routing). Stored as validated JSON with a `version` that goes up by one on every
 * change, so consumers cache it and reload when the version moves. The schema of the rules is
 * `@signal/org-data-layer`'s, the one the processor compiles: whatever is saved here, the processor runs.
 */

export const dataLayerInputSchema = orgDataLayerRulesSchema.extend({
  /** Optimistic concurrency: the version the writer read; a different current version is refused. */
  expected_version: z.number().int().min(0).optional(),
});
export type DataLayerInput = z.input<typeof dataLayerInputSchema>;

export interface DataLayerConfig {
  /** 0 until the org first saves a config (defaults apply), then 1, 2, … */
  readonly version: number;
  readonly pii_rules: OrgDataLayerRules['pii_rules'];
  readonly bot_filtering: BotFilteringConfig;
  readonly routing_rules: readonly RoutingRule[];
  readonly updated_at: Date | null;
  readonly updated_by: string | null;
}

/** Rows are read with the same schema, so a row saved before a setting existed gets its default. */
const storedSchema = orgDataLayerRulesSchema.extend({
  version: z.number().int().positive(),
  updated_at: z.date(),
  updated_by: z.string().nullable(),
});

function defaults(): DataLayerConfig {
  const parsed = dataLayerInputSchema.parse({});
  return {
    version: 0,
    pii_rules: parsed.pii_rules,
    bot_filtering: parsed.bot_filtering,
    routing_rules: parsed.routing_rules,
    updated_at: null,
    updated_by: null,
  };
}

export interface DataLayerRepository {
  get(orgId: string): Promise<DataLayerConfig>;
  /** Replaces the whole config (absent sections go back to their defaults) and bumps the version. */
  put(orgId: string, input: DataLayerInput, updatedBy: string | null): Promise<Change<DataLayerConfig>>;
}

export function createDataLayerRepository(deps: {
  readonly db: {
    query: Queryable['query'];
    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  };
  readonly clock: Clock;
}): DataLayerRepository {
  const { db, clock } = deps;

  async function read(q: Pick<Queryable, 'query'>, orgId: string, lock: boolean): Promise<DataLayerConfig> {
    const { rows } = await q.query(
      `SELECT version, pii_rules, bot_filtering, routing_rules, updated_at, updated_by
         FROM data_layer_configs WHERE org_id = $1 ${lock ? 'FOR UPDATE' : ''}`,
      [orgId],
    );
    return rows[0] === undefined ? defaults() : parseRow(storedSchema, rows[0], 'data_layer_configs');
  }

  return {
    get: (orgId) => read(db, orgId, false),

    async put(orgId, raw, updatedBy) {
      const input = parseInput(dataLayerInputSchema, raw, 'Org Data Layer config');
      return db.transaction(async (tx) => {
        const org = await tx.query('SELECT id FROM orgs WHERE id = $1 FOR UPDATE', [orgId]);
        if (org.rowCount === 0) throw new ControlPlaneError('not_found', 'org not found');
        const before = await read(tx, orgId, true);
        if (input.expected_version !== undefined && input.expected_version !== before.version) {
          throw new ControlPlaneError(
            'version_mismatch',
            `the Org Data Layer changed meanwhile (version ${before.version}, expected ${input.expected_version}): reload and retry`,
          );
        }
        const { rows } = await tx.query(
          `INSERT INTO data_layer_configs (org_id, version, pii_rules, bot_filtering, routing_rules, updated_at, updated_by)
           VALUES ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, $6, $7)
           ON CONFLICT (org_id) DO UPDATE SET version = EXCLUDED.version, pii_rules = EXCLUDED.pii_rules,
             bot_filtering = EXCLUDED.bot_filtering, routing_rules = EXCLUDED.routing_rules,
             updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
           RETURNING version, pii_rules, bot_filtering, routing_rules, updated_at, updated_by`,
          [
            orgId,
            before.version + 1,
            JSON.stringify(input.pii_rules),
            JSON.stringify(input.bot_filtering),
            JSON.stringify(input.routing_rules),
            clock(),
            updatedBy,
          ],
        );
        return { before, after: parseRow(storedSchema, rows[0], 'data_layer_configs') };
      });
    },
  };
}
