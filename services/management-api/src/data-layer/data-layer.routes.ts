import { type ControlPlane, dataLayerInputSchema } from '@signal/control-plane';
import { sendJson } from '@signal/http';
import { type AuditTrail, diff } from '../http/audit-trail';
import { readBody } from '../http/request';
import type { RouteHandlers } from '../http/route-kit';
import { dataLayerJson } from '../http/serialize';

export function createDataLayerRoutes(deps: {
  readonly controlPlane: Pick<ControlPlane, 'dataLayer'>;
  readonly trail: AuditTrail;
}): Pick<RouteHandlers, 'dataLayer.get' | 'dataLayer.put'> {
  const { dataLayer } = deps.controlPlane;
  return {
    async 'dataLayer.get'({ res, principal }) {
      sendJson(res, 200, dataLayerJson(await dataLayer.get(principal.orgId)));
    },

    async 'dataLayer.put'({ req, res, info, principal }) {
      const body = await readBody(req, dataLayerInputSchema);
      const { before, after } = await dataLayer.put(principal.orgId, body, principal.userId);
      await deps.trail.record({
        action: 'data_layer.updated',
        principal,
        info,
        resourceId: principal.orgId,
        changes: diff(before, after, ['version', 'pii_rules', 'bot_filtering', 'routing_rules']),
      });
      sendJson(res, 200, dataLayerJson(after));
    },
  };
}
