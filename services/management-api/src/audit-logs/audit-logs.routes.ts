import { once } from 'node:events';
import type { AuditListFilters, AuditLog, AuditPageOptions } from '@signal/audit';
import { HttpError, sendJson } from '@signal/http';
import type { AuditTrail } from '../http/audit-trail';
import type { RouteHandlers } from '../http/route-kit';
import type { ApiLogger } from '../logger';
import type { DeploymentAuthority } from '../rbac/deployment-authority';

const FILTERS = ['action', 'user_id', 'resource_type', 'resource_id', 'from', 'to'] as const;

/**
 * Known filters from the query string; the audit log validates them (400 naming the field otherwise). The
 * org is never one of them: it is the caller's.
 */
function filtersFrom(query: URLSearchParams): Record<string, string> {
  const filters: Record<string, string> = {};
  for (const name of FILTERS) {
    const value = query.get(name);
    if (value !== null) filters[name] = value;
  }
  return filters;
}

export function createAuditLogsRoutes(deps: {
  readonly audit: Pick<AuditLog, 'list' | 'exportNdjson'>;
  readonly trail: AuditTrail;
  readonly logger: ApiLogger;
  readonly deploymentAuthority: Pick<DeploymentAuthority, 'holds'>;
}): Pick<RouteHandlers, 'auditLogs.list' | 'auditLogs.export'> {
  const { audit, trail, logger, deploymentAuthority } = deps;
  return {
    /**
     * The caller's org's entries, never another org's; for the deployment authority also the deployment-wide
     * ones recorded without an org (key events, decrypt failures, purges).
     */
    async 'auditLogs.list'({ res, query, principal }) {
      const limit = query.get('limit');
      const cursor = query.get('cursor');
      const filters: AuditListFilters = {
        ...(filtersFrom(query) as AuditListFilters),
        org_id: principal.orgId,
        with_deployment_entries: await deploymentAuthority.holds(principal),
      };
      const page: AuditPageOptions = {
        ...(limit === null ? {} : { limit }),
        ...(cursor === null ? {} : { cursor }),
      };
      sendJson(res, 200, await audit.list(filters, page));
    },

    /**
     * NDJSON, oldest first, with the chain fields so the file can be verified offline. Streamed with
     * backpressure; the export itself is recorded (`audit.exported`) before the first byte.
     */
    async 'auditLogs.export'({ res, query, info, principal }) {
      const filters: AuditListFilters = {
        ...(filtersFrom(query) as AuditListFilters),
        org_id: principal.orgId,
        with_deployment_entries: await deploymentAuthority.holds(principal),
      };
      const lines = audit.exportNdjson(filters)[Symbol.asyncIterator]();
      // The first read validates the filters, so a bad filter is still a clean 400.
      const first = await lines.next();
      await trail.record({
        action: 'audit.exported',
        principal,
        info,
        changes: { filters: { old: null, new: filtersFrom(query) } },
      });
      res.statusCode = 200;
      res.setHeader('content-type', 'application/x-ndjson; charset=utf-8');
      res.setHeader('content-disposition', 'attachment; filename="signal-audit-log.ndjson"');
      res.setHeader('cache-control', 'no-store');
      res.setHeader('x-content-type-options', 'nosniff');
      try {
        for (let next = first; next.done !== true; next = await lines.next()) {
          if (!res.write(next.value)) await once(res, 'drain');
        }
        res.end();
      } catch (error) {
        logger.error({ err: error }, 'audit export interrupted');
        if (!res.headersSent) throw new HttpError('internal', 'internal error');
        res.destroy();
      }
    },
  };
}
