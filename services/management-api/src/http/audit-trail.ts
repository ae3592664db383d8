import type { AuditAction, AuditLog, AuditResourceType } from '@signal/audit';
import type { Principal } from '../auth/authenticate';
import type { ApiLogger } from '../logger';
import type { RequestInfo } from './request';

export type FieldChanges = Record<string, { old: unknown; new: unknown }>;

/**
 * `{field: {old, new}}` for the fields whose JSON differs. Values go through the audit package's masking
 * (secret-looking fields and values are replaced) before they are stored.
 */
export function diff<T extends object>(
  before: T | null,
  after: T | null,
  fields: readonly (keyof T & string)[],
) {
  const changes: FieldChanges = {};
  for (const field of fields) {
    const old = before === null ? null : (before[field] ?? null);
    const next = after === null ? null : (after[field] ?? null);
    if (JSON.stringify(old) !== JSON.stringify(next)) changes[field] = { old, new: next };
  }
  return changes;
}

export interface AuditTrail {
  /** Records an admin action with the actor, the client and the change; never throws into the request. */
  record(entry: {
    readonly action: AuditAction;
    readonly principal: Principal | null;
    readonly info: RequestInfo;
    readonly resourceType?: AuditResourceType;
    readonly resourceId?: string | null;
    readonly changes?: FieldChanges;
    /** For events without a principal (failed login): the user the attempt named, when it exists. */
    readonly subject?: AuditSubject | null;
  }): Promise<void>;
}

/** A user an event without a principal is about (a failed login naming them). */
export interface AuditSubject {
  readonly id: string;
  readonly email: string;
  readonly orgId: string;
}

export function createAuditTrail(audit: Pick<AuditLog, 'record'>, logger: ApiLogger): AuditTrail {
  return {
    async record(entry) {
      const actor = entry.principal
        ? { id: entry.principal.userId, email: entry.principal.email, orgId: entry.principal.orgId }
        : (entry.subject ?? null);
      try {
        await audit.record({
          action: entry.action,
          // The actor's org: each org's admins read only their org's entries (`GET audit-logs`).
          org_id: actor?.orgId ?? null,
          user_id: actor?.id ?? null,
          user_email: actor?.email ?? null,
          ...(entry.resourceType === undefined ? {} : { resource_type: entry.resourceType }),
          resource_id: entry.resourceId ?? null,
          changes: entry.changes ?? {},
          ip_address: entry.info.ip,
          user_agent: entry.info.userAgent,
        });
      } catch (error) {
        // The action itself is committed; losing its audit entry is an incident, so it is logged loudly.
        logger.error(
          { err: error, action: entry.action, resource_id: entry.resourceId ?? null, audit_lost: true },
          'audit entry could not be recorded',
        );
      }
    },
  };
}
