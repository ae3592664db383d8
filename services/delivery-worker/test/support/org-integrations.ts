import type { Queryable } from '@signal/store';

/**
 * Writes an org with one pipeline and these integrations as the control plane stores them (its migrations
 * must have run): what makes a dead letter or a scheduled retry an org's. The pipeline is `pl_<orgId>`.
 */
export async function seedOrgIntegrations(
  db: Pick<Queryable, 'query'>,
  orgId: string,
  integrationIds: readonly string[],
): Promise<void> {
  const pipelineId = `pl_${orgId}`;
  await db.query(
    `INSERT INTO orgs (id, name, slug, created_at, updated_at) VALUES ($1, $1, $1, now(), now())`,
    [orgId],
  );
  await db.query(
    `INSERT INTO pipelines (id, org_id, name, slug, type, created_at, updated_at)
     VALUES ($1, $2, $1, $1, 'web', now(), now())`,
    [pipelineId, orgId],
  );
  for (const id of integrationIds) {
    await db.query(
      `INSERT INTO integrations (id, pipeline_id, vendor, name, consent, created_at, updated_at)
       VALUES ($1, $2, 'webhook', $1, '{}', now(), now())`,
      [id, pipelineId],
    );
  }
}
