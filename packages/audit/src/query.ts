import { z } from 'zod';
import { auditActionSchema, auditResourceTypeSchema, DEPLOYMENT_AUDIT_ACTIONS } from './actions';
import { AuditError } from './errors';

export const DEFAULT_PAGE_LIMIT = 50;
export const MAX_PAGE_LIMIT = 100;

const instant = z.union([z.date(), z.iso.datetime({ offset: true })]).transform((value) => new Date(value));

/** Filters of `list` and `exportNdjson`; all optional and combined with AND. `from` inclusive, `to` exclusive. */
export const auditListFiltersSchema = z
  .strictObject({
    /**
     * One org's view of the log: the entries recorded for that org. Entries of other orgs, and org-less
     * entries (a failed login naming no user, a deployment's key events), are left out, unless
     * `with_deployment_entries`.
     */
    org_id: z.string().min(1).max(200).optional(),
    /**
     * With `org_id`: also the deployment-wide entries recorded without an org (`DEPLOYMENT_AUDIT_ACTIONS`: key
     * events, decrypt failures, purges). They are about every org's data and name rows of any org (a
     * `crypto.decrypt_failed` names the table and row that did not open), so they are for whoever runs the
     * deployment, not for every org's readers. Default false.
     */
    with_deployment_entries: z.boolean().optional(),
    action: auditActionSchema.optional(),
    user_id: z.string().min(1).max(200).optional(),
    resource_type: auditResourceTypeSchema.optional(),
    resource_id: z.string().min(1).max(200).optional(),
    from: instant.optional(),
    to: instant.optional(),
  })
  .refine((f) => f.from === undefined || f.to === undefined || f.from.getTime() <= f.to.getTime(), {
    message: 'from must not be after to',
    path: ['from'],
  });

export type AuditListFilters = z.input<typeof auditListFiltersSchema>;
type ParsedFilters = z.output<typeof auditListFiltersSchema>;

/** Pagination of `list`: `limit` default 50, at most 100 (numeric strings accepted, as query strings arrive). */
export const auditPageOptionsSchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_LIMIT).default(DEFAULT_PAGE_LIMIT),
  cursor: z.string().min(1).max(100).optional(),
});

export type AuditPageOptions = z.input<typeof auditPageOptionsSchema>;

/** Zod issues as "path: message" (paths and messages only, never the offending values). */
export function zodIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
}

export function parseFilters(filters: AuditListFilters): ParsedFilters {
  const parsed = auditListFiltersSchema.safeParse(filters);
  if (!parsed.success)
    throw new AuditError('audit.invalid_query', `invalid audit log filter: ${zodIssues(parsed.error)}`);
  return parsed.data;
}

export function parsePageOptions(options: AuditPageOptions): { limit: number; cursor: string | undefined } {
  const parsed = auditPageOptionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new AuditError('audit.invalid_query', `invalid audit log page options: ${zodIssues(parsed.error)}`);
  }
  return { limit: parsed.data.limit, cursor: parsed.data.cursor };
}

/** A SQL WHERE clause over audit_log with its bound parameters (column names are fixed, never input). */
export interface WhereClause {
  readonly conditions: string[];
  readonly params: unknown[];
}

export function whereClause(filters: ParsedFilters): WhereClause {
  const conditions: string[] = [];
  const params: unknown[] = [];
  const add = (sql: (placeholder: string) => string, value: unknown) => {
    params.push(value);
    conditions.push(sql(`$${params.length}`));
  };
  if (filters.org_id !== undefined && filters.with_deployment_entries === true) {
    params.push(filters.org_id, [...DEPLOYMENT_AUDIT_ACTIONS]);
    const org = `$${params.length - 1}`;
    const deploymentActions = `$${params.length}`;
    conditions.push(`(org_id = ${org} OR (org_id IS NULL AND action = ANY(${deploymentActions}::text[])))`);
  } else if (filters.org_id !== undefined) {
    add((p) => `org_id = ${p}`, filters.org_id);
  }
  if (filters.action !== undefined) add((p) => `action = ${p}`, filters.action);
  if (filters.user_id !== undefined) add((p) => `user_id = ${p}`, filters.user_id);
  if (filters.resource_type !== undefined) add((p) => `resource_type = ${p}`, filters.resource_type);
  if (filters.resource_id !== undefined) add((p) => `resource_id = ${p}`, filters.resource_id);
  if (filters.from !== undefined) add((p) => `occurred_at >= ${p}::timestamptz`, filters.from.toISOString());
  if (filters.to !== undefined) add((p) => `occurred_at < ${p}::timestamptz`, filters.to.toISOString());
  return { conditions, params };
}

const CURSOR_PREFIX = 'audit:v1:';
const CURSOR_BODY = /^audit:v1:([1-9][0-9]{0,15})$/;

/** Opaque keyset cursor: base64url of a versioned prefix and the seq the next page starts below. */
export function encodeCursor(seq: number): string {
  return Buffer.from(`${CURSOR_PREFIX}${seq}`, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const match = CURSOR_BODY.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  const seq = match?.[1] === undefined ? Number.NaN : Number(match[1]);
  if (!Number.isSafeInteger(seq) || encodeCursor(seq) !== cursor) {
    throw new AuditError('audit.invalid_cursor', 'the cursor is not one this audit log issued');
  }
  return seq;
}
