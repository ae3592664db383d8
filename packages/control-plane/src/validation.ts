import { z } from 'zod';
import { ControlPlaneError } from './errors';

/** Parses `value` with `schema`, or throws `invalid_input` naming the fields (never echoing values). */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new ControlPlaneError('invalid_input', `invalid ${what}: ${describeIssues(result.error)}`);
}

export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 10)
    .map((issue) => `${issue.path.length === 0 ? '(root)' : issue.path.join('.')}: ${issue.message}`)
    .join('; ');
}

/** Rows read back from the database are validated too; a mismatch is a bug or tampering, not user error. */
export function parseRow<T>(schema: z.ZodType<T>, row: unknown, table: string): T {
  const result = schema.safeParse(row);
  if (result.success) return result.data;
  throw new ControlPlaneError('corrupt_row', `a ${table} row does not have the expected shape`, {
    cause: new Error(describeIssues(result.error)),
  });
}

export const ROLES = ['owner', 'admin', 'editor', 'viewer'] as const;
export type Role = (typeof ROLES)[number];
export const roleSchema = z.enum(ROLES);

export const PIPELINE_TYPES = ['web', 'app', 'server'] as const;
export type PipelineType = (typeof PIPELINE_TYPES)[number];

export const nameSchema = z.string().trim().min(1).max(200);

export const slugSchema = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/, 'lowercase letters, digits and inner hyphens, 1–64 chars');

/** Lower-cased, trimmed email. Comparisons and the per-org unique index use this form. */
export const emailSchema = z
  .string()
  .trim()
  .max(254)
  .transform((value) => value.toLowerCase())
  .pipe(z.email());

/** Passwords people choose: long enough to resist guessing, short enough that hashing stays bounded. */
export const passwordSchema = z.string().min(12, 'at least 12 characters').max(1024);

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOST = new RegExp(`^(?:${LABEL}\\.)*${LABEL}(?::(?:[1-9][0-9]{0,4}))?$`);
const WILDCARD_HOST = new RegExp(`^\\*\\.(?:${LABEL}\\.)*${LABEL}(?::(?:[1-9][0-9]{0,4}))?$`);

function domainList(allowWildcard: boolean) {
  return z
    .array(
      z
        .string()
        .trim()
        .max(253)
        .transform((value) => value.toLowerCase())
        .refine(
          (value) => HOST.test(value) || (allowWildcard && WILDCARD_HOST.test(value)),
          allowWildcard
            ? 'a host name such as shop.example.com, optionally *.example.com or with :port'
            : 'a host name such as shop.example.com (optionally with :port), no wildcards',
        ),
    )
    .max(100)
    .transform((values) => [...new Set(values)]);
}

/** CORS / Origin allowlist of a pipeline: host names, `*.` wildcards allowed. */
export const allowedDomainsSchema = domainList(true);
/** Cross-domain identity redirect allowlist: exact host names only (no open redirect through wildcards). */
export const linkedDomainsSchema = domainList(false);

/** Turns a display name into a slug candidate (`My Shop!` → `my-shop`). */
export function slugify(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64)
    .replace(/-+$/g, '');
  return slug === '' ? 'pipeline' : slug;
}
