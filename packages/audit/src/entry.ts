import { z } from 'zod';
import {
  type AuditAction,
  type AuditResourceType,
  auditActionSchema,
  auditResourceTypeSchema,
} from './actions';
import { type JsonValue, storableString } from './json';
import type { AuditChanges } from './mask';

/** One audit entry as the Management API returns it (contract: ARCHITECTURE §4 "Audit events"). */
export interface AuditEntry {
  readonly id: string;
  readonly action: AuditAction;
  /** Who acted; null for the system itself (start-up, background jobs) or an unknown user (failed login). */
  readonly user_id: string | null;
  readonly user_email: string | null;
  readonly resource_type: AuditResourceType;
  readonly resource_id: string | null;
  /** `{field: {old, new}}`, secrets and PII masked before recording. */
  readonly changes: AuditChanges;
  readonly ip_address: string | null;
  readonly user_agent: string | null;
  /** ISO 8601 (UTC, millisecond precision) time the entry was recorded. */
  readonly timestamp: string;
  /**
   * The org the action happened in (the actor's): readers are scoped to it. Null for what belongs to no org:
   * the deployment's own events (keys, purges) and attempts naming no known user.
   */
  readonly org_id: string | null;
}

/** An entry with its place in the hash chain (internal; also what the NDJSON export writes). */
export interface ChainedAuditEntry extends AuditEntry {
  /** Position in the chain: 1, 2, 3, … without gaps. */
  readonly seq: number;
  /** `hash` of the entry at `seq - 1` (or of the last purged entry, or 64 zeros for the first). */
  readonly prev_hash: string;
  /** SHA-256(prev_hash ‖ canonical JSON of the entry including seq), lower-case hex. */
  readonly hash: string;
}

/** User agents are kept for forensics, but no request header deserves more than this. */
export const MAX_USER_AGENT_LENGTH = 512;
/** Upper bound of an entry's canonical `changes` JSON; a bigger diff is a writer bug, not an audit record. */
export const MAX_CHANGES_BYTES = 256 * 1024;

const identifier = z.string().min(1).max(200).transform(storableString);

/** What `record` accepts. `id`, `timestamp` and the chain fields are assigned by the log. */
export const auditEntryInputSchema = z.strictObject({
  action: auditActionSchema,
  /** The org the action happened in; omit (null) for deployment-wide events. */
  org_id: identifier.nullable().optional(),
  user_id: identifier.nullable().optional(),
  user_email: z.string().min(1).max(320).transform(storableString).nullable().optional(),
  /** Defaults to the action's resource type (`integration.updated` → `integration`). */
  resource_type: auditResourceTypeSchema.optional(),
  resource_id: identifier.nullable().optional(),
  changes: z
    .record(
      z.string().min(1).max(200),
      z.strictObject({ old: z.unknown().optional(), new: z.unknown().optional() }),
    )
    .optional(),
  ip_address: z.union([z.ipv4(), z.ipv6()]).nullable().optional(),
  user_agent: z
    .string()
    .transform((ua) => storableString(ua.slice(0, MAX_USER_AGENT_LENGTH)))
    .nullable()
    .optional(),
});

export type AuditEntryInput = z.input<typeof auditEntryInputSchema>;

const HASH = /^[0-9a-f]{64}$/;

const jsonValueSchema = z.json() as unknown as z.ZodType<JsonValue>;
const changesSchema = z.record(z.string(), z.object({ old: jsonValueSchema, new: jsonValueSchema }));

/** The public entry shape, for consumers that read entries back (API responses, exports). */
export const auditEntrySchema = z.object({
  id: z.string().min(1),
  action: auditActionSchema,
  user_id: z.string().nullable(),
  user_email: z.string().nullable(),
  resource_type: auditResourceTypeSchema,
  resource_id: z.string().nullable(),
  changes: changesSchema,
  ip_address: z.string().nullable(),
  user_agent: z.string().nullable(),
  timestamp: z.iso.datetime(),
  /** Absent from exports written before entries carried an org. */
  org_id: z.string().nullable().default(null),
});

export const chainedAuditEntrySchema = auditEntrySchema.extend({
  seq: z.number().int().positive(),
  prev_hash: z.string().regex(HASH),
  hash: z.string().regex(HASH),
});

/** int8 arrives as a string (both store adapters); anything else is accepted only if it is a safe integer. */
const seqSchema = z.union([z.string().regex(/^[0-9]+$/), z.number(), z.bigint()]).transform((value, ctx) => {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) {
    ctx.addIssue({ code: 'custom', message: 'seq must be a positive safe integer' });
    return z.NEVER;
  }
  return n;
});

const timestampSchema = z.union([z.date(), z.string()]).transform((value, ctx) => {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) {
    ctx.addIssue({ code: 'custom', message: 'occurred_at must be a timestamp' });
    return z.NEVER;
  }
  return date.toISOString();
});

/** A row of `audit_log` as read back from either adapter. */
export const auditRowSchema = z
  .object({
    seq: seqSchema,
    id: z.string().min(1),
    action: auditActionSchema,
    user_id: z.string().nullable(),
    user_email: z.string().nullable(),
    resource_type: auditResourceTypeSchema,
    resource_id: z.string().nullable(),
    changes: changesSchema,
    ip_address: z.string().nullable(),
    user_agent: z.string().nullable(),
    occurred_at: timestampSchema,
    prev_hash: z.string().regex(HASH),
    hash: z.string().regex(HASH),
    org_id: z.string().nullable(),
  })
  .transform(
    (row): ChainedAuditEntry => ({
      seq: row.seq,
      id: row.id,
      action: row.action,
      user_id: row.user_id,
      user_email: row.user_email,
      resource_type: row.resource_type,
      resource_id: row.resource_id,
      changes: row.changes,
      ip_address: row.ip_address,
      user_agent: row.user_agent,
      timestamp: row.occurred_at,
      org_id: row.org_id,
      prev_hash: row.prev_hash,
      hash: row.hash,
    }),
  );

/** The columns `auditRowSchema` reads, in SELECT form (and `appendEntry`'s INSERT order). */
export const AUDIT_ROW_COLUMNS =
  'seq, id, action, user_id, user_email, resource_type, resource_id, changes, ip_address, user_agent, occurred_at, prev_hash, hash, org_id';

/** Drops the chain fields: the shape list endpoints return. */
export function publicEntry(entry: ChainedAuditEntry): AuditEntry {
  return {
    id: entry.id,
    action: entry.action,
    user_id: entry.user_id,
    user_email: entry.user_email,
    resource_type: entry.resource_type,
    resource_id: entry.resource_id,
    changes: entry.changes,
    ip_address: entry.ip_address,
    user_agent: entry.user_agent,
    timestamp: entry.timestamp,
    org_id: entry.org_id,
  };
}
