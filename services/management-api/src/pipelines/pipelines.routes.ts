import {
  type ControlPlane,
  newPipelineSchema,
  type Pipeline,
  pipelinePatchSchema,
  rotationSchema,
} from '@signal/control-plane';
import { HttpError, sendJson } from '@signal/http';
import { type AuditTrail, diff } from '../http/audit-trail';
import { pageQuery, readBody, readOptionalBody } from '../http/request';
import type { RouteHandlers } from '../http/route-kit';
import { keyInfoJson, pageJson, pipelineJson, secretInfoJson } from '../http/serialize';

const PIPELINE_FIELDS = [
  'name',
  'slug',
  'type',
  'enabled',
  'allowedDomains',
  'linkedDomains',
  'rateLimitRps',
] as const satisfies readonly (keyof Pipeline)[];

export function createPipelinesRoutes(deps: {
  readonly controlPlane: Pick<ControlPlane, 'pipelines'>;
  readonly trail: AuditTrail;
}): Pick<
  RouteHandlers,
  | 'pipelines.list'
  | 'pipelines.create'
  | 'pipelines.get'
  | 'pipelines.update'
  | 'pipelines.delete'
  | 'pipelines.keys'
  | 'pipelines.rotateKey'
  | 'pipelines.revokeKey'
  | 'pipelines.rotateSecret'
> {
  const { pipelines } = deps.controlPlane;
  const { trail } = deps;

  async function load(orgId: string, pipelineId: string): Promise<Pipeline> {
    const pipeline = await pipelines.get(orgId, pipelineId);
    if (pipeline === null) throw new HttpError('not_found', 'pipeline not found');
    return pipeline;
  }

  return {
    async 'pipelines.list'({ res, query, principal }) {
      sendJson(res, 200, pageJson(await pipelines.list(principal.orgId, pageQuery(query)), pipelineJson));
    },

    async 'pipelines.create'({ req, res, info, principal }) {
      const body = await readBody(req, newPipelineSchema);
      const made = await pipelines.create(principal.orgId, body);
      await trail.record({
        action: 'pipeline.created',
        principal,
        info,
        resourceId: made.pipeline.id,
        // Recorded as "issued": the audit masks key/secret fields, and the values are never passed in.
        changes: {
          ...diff(null, made.pipeline, PIPELINE_FIELDS),
          key: { old: null, new: 'issued' },
          hmac_secret: { old: null, new: 'issued' },
        },
      });
      sendJson(res, 201, {
        ...pipelineJson(made.pipeline),
        // Shown once: only digests and ciphertexts are stored.
        key: made.key,
        hmac_secret: made.hmacSecret,
        key_info: keyInfoJson(made.keyInfo),
        secret_info: secretInfoJson(made.secretInfo),
      });
    },

    async 'pipelines.get'({ res, params, principal }) {
      sendJson(res, 200, pipelineJson(await load(principal.orgId, params.id ?? '')));
    },

    async 'pipelines.update'({ req, res, params, info, principal }) {
      const body = await readBody(req, pipelinePatchSchema);
      const { before, after } = await pipelines.update(principal.orgId, params.id ?? '', body);
      await trail.record({
        action: 'pipeline.updated',
        principal,
        info,
        resourceId: after.id,
        changes: diff(before, after, PIPELINE_FIELDS),
      });
      sendJson(res, 200, pipelineJson(after));
    },

    async 'pipelines.delete'({ res, params, info, principal }) {
      const deleted = await pipelines.delete(principal.orgId, params.id ?? '');
      await trail.record({
        action: 'pipeline.deleted',
        principal,
        info,
        resourceId: deleted.id,
        changes: diff(deleted, null, ['name', 'slug', 'type']),
      });
      sendJson(res, 204, null);
    },

    async 'pipelines.keys'({ res, params, principal }) {
      const pipeline = await load(principal.orgId, params.id ?? '');
      const [keys, secrets] = await Promise.all([
        pipelines.listKeys(principal.orgId, pipeline.id),
        pipelines.listSecrets(principal.orgId, pipeline.id),
      ]);
      sendJson(res, 200, { keys: keys.map(keyInfoJson), secrets: secrets.map(secretInfoJson) });
    },

    async 'pipelines.rotateKey'({ req, res, params, info, principal }) {
      const body = await readOptionalBody(req, rotationSchema);
      const rotated = await pipelines.rotateKey(principal.orgId, params.id ?? '', body);
      await trail.record({
        action: 'pipeline.key_rotated',
        principal,
        info,
        resourceId: rotated.keyInfo.pipelineId,
        changes: {
          active_key: { old: rotated.previous.id, new: rotated.keyInfo.id },
          previous_key_grace_ends_at: { old: null, new: rotated.previous.graceEndsAt?.toISOString() ?? null },
        },
      });
      sendJson(res, 200, {
        key: rotated.key,
        key_info: keyInfoJson(rotated.keyInfo),
        previous: keyInfoJson(rotated.previous),
      });
    },

    async 'pipelines.revokeKey'({ res, params, info, principal }) {
      const revoked = await pipelines.revokeKey(principal.orgId, params.id ?? '', params.keyId ?? '');
      await trail.record({
        action: 'pipeline.key_rotated',
        principal,
        info,
        resourceId: revoked.pipelineId,
        changes: { revoked_key: { old: revoked.id, new: null } },
      });
      sendJson(res, 200, keyInfoJson(revoked));
    },

    async 'pipelines.rotateSecret'({ req, res, params, info, principal }) {
      const body = await readOptionalBody(req, rotationSchema);
      const rotated = await pipelines.rotateSecret(principal.orgId, params.id ?? '', body);
      await trail.record({
        action: 'pipeline.key_rotated',
        principal,
        info,
        resourceId: rotated.secretInfo.pipelineId,
        changes: {
          active_hmac_secret: { old: rotated.previous.id, new: rotated.secretInfo.id },
          previous_secret_grace_ends_at: {
            old: null,
            new: rotated.previous.graceEndsAt?.toISOString() ?? null,
          },
        },
      });
      sendJson(res, 200, {
        hmac_secret: rotated.hmacSecret,
        secret_info: secretInfoJson(rotated.secretInfo),
        previous: secretInfoJson(rotated.previous),
      });
    },
  };
}
