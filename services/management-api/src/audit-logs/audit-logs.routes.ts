import { once } from 'node:events';
import type { AuditListFilters, AuditLog } from '@signal/audit';
import { HttpError, sendJson } from '@signal/http';
import type { AuditTrail } from '../http/audit-trail';
import type { RouteHandlers } from '../http/route-kit';
import type { ApiLogger } from '../logger';

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
}): Pick<RouteHandlers, 'auditLogs.list' | 'auditLogs.export'> {
  const { audit, trail, logger } = deps;
  return {
    /** The caller's org's entries and the deployment-wide ones (key events, purges); never another org's. */
    async 'auditLogs.list'({ res, query, principal }) {
      const limit = query.get('limit');
      const cursor = query.get('cursor');
      const filters: AuditListFilters = {
        ...(filtersFrom(query) as AuditListFilters),
        org_id: principal.orgId,
      };
      const page = await audit.list(filters, {
        ...(limit === null ? {} : { limit }),
        ...(cursor === null ? {} : { cursor }),
      });
      sendJson(res, 200, page);
    },

    /**
     * NDJSON, oldest first, with the chain fields so the file can be verified offline. Streamed with
     * backpressure; the export itself is recorded (`audit.exported`) before the first byte.
     */
    async 'auditLogs.export'({ res, query, info, principal }) {
      const filters: AuditListFilters = {
        ...(filtersFrom(query) as AuditListFilters),
        org_id: principal.orgId,
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
