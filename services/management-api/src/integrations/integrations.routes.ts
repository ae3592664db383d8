import {
  type ControlPlane,
  type Integration,
  integrationPatchSchema,
  newIntegrationSchema,
} from '@signal/control-plane';
import { HttpError, sendJson } from '@signal/http';
import { type AuditTrail, diff, type FieldChanges } from '../http/audit-trail';
import { pageQuery, readBody } from '../http/request';
import type { RouteHandlers } from '../http/route-kit';
import { integrationJson, pageJson } from '../http/serialize';

const INTEGRATION_FIELDS = [
  'vendor',
  'name',
  'enabled',
  'settings',
  'consent',
  'pipeline',
] as const satisfies readonly (keyof Integration)[];

/**
 * Credentials are write-only: requests may set or replace them, responses show only the masked form, and the
 * audit entry records that they changed (masked values), never what they are.
 */
function credentialChange(before: Integration | null, after: Integration | null) {
  const old = before?.credentialsMasked ?? null;
  const next = after?.credentialsMasked ?? null;
  return JSON.stringify(old) === JSON.stringify(next) ? {} : { credentials: { old, new: next } };
}

export function createIntegrationsRoutes(deps: {
  readonly controlPlane: Pick<ControlPlane, 'integrations' | 'pipelines'>;
  readonly trail: AuditTrail;
}): Pick<
  RouteHandlers,
  | 'integrations.list'
  | 'integrations.create'
  | 'integrations.get'
  | 'integrations.update'
  | 'integrations.delete'
> {
  const { integrations, pipelines } = deps.controlPlane;
  const { trail } = deps;

  return {
    async 'integrations.list'({ res, params, query, principal }) {
      const pipeline = await pipelines.get(principal.orgId, params.id ?? '');
      if (pipeline === null) throw new HttpError('not_found', 'pipeline not found');
      const page = await integrations.list(principal.orgId, pipeline.id, pageQuery(query));
      sendJson(res, 200, pageJson(page, integrationJson));
    },

    async 'integrations.create'({ req, res, params, info, principal }) {
      const body = await readBody(req, newIntegrationSchema);
      const made = await integrations.create(principal.orgId, params.id ?? '', body);
      await trail.record({
        action: 'integration.created',
        principal,
        info,
        resourceId: made.id,
        changes: { ...diff(null, made, INTEGRATION_FIELDS), ...credentialChange(null, made) },
      });
      sendJson(res, 201, integrationJson(made));
    },

    async 'integrations.get'({ res, params, principal }) {
      const integration = await integrations.get(principal.orgId, params.id ?? '');
      if (integration === null) throw new HttpError('not_found', 'integration not found');
      sendJson(res, 200, integrationJson(integration));
    },

    async 'integrations.update'({ req, res, params, info, principal }) {
      const body = await readBody(req, integrationPatchSchema);
      const { before, after } = await integrations.update(principal.orgId, params.id ?? '', body);
      const changes: FieldChanges = {
        ...diff(before, after, INTEGRATION_FIELDS),
        ...credentialChange(before, after),
      };
      if (body.credentials !== undefined && changes.credentials === undefined) {
        // Same masked form, new value: still a credential change worth recording.
        changes.credentials = { old: before.credentialsMasked, new: after.credentialsMasked };
      }
      await trail.record({ action: 'integration.updated', principal, info, resourceId: after.id, changes });
      sendJson(res, 200, integrationJson(after));
    },

    async 'integrations.delete'({ res, params, info, principal }) {
      const deleted = await integrations.delete(principal.orgId, params.id ?? '');
      await trail.record({
        action: 'integration.deleted',
        principal,
        info,
        resourceId: deleted.id,
        changes: { ...diff(deleted, null, ['vendor', 'name']), ...credentialChange(deleted, null) },
      });
      sendJson(res, 204, null);
    },
  };
}
