import { z } from 'zod';
import { PiiConfigError } from '../errors';
import { FIELD_TYPES, type FieldType } from './field-types';
import { FORBIDDEN_SEGMENTS, MAX_PATH_SEGMENTS, MAX_WILDCARDS, WILDCARD } from './path';

/**
 * The Org Data Layer's `pii_rules` (contract shape: `{enabled, hash_fields[], redact_fields[],
 * hash_algorithm}`). Field paths are dotted (`traits.email`, `context.ip`); `*` stands for any one key or
 * array index at that level (`properties.products.*.email`).
 */

const fieldPath = z
  .string()
  .trim()
  .superRefine((path, ctx) => {
    const fail = (why: string) =>
      ctx.addIssue({ code: 'custom', message: `a dotted field path such as traits.email (${why})` });
    if (path === '') return fail('got an empty string');
    if (path.length > 512) return fail('at most 512 characters');
    const segments = path.split('.');
    if (segments.length > MAX_PATH_SEGMENTS) return fail(`at most ${MAX_PATH_SEGMENTS} segments`);
    if (segments.some((s) => s === '')) return fail(`"${path}" has an empty segment`);
    const forbidden = segments.find((s) => FORBIDDEN_SEGMENTS.has(s));
    if (forbidden !== undefined) return fail(`segment "${forbidden}" is not allowed`);
    if (segments.filter((s) => s === WILDCARD).length > MAX_WILDCARDS) {
      return fail(`at most ${MAX_WILDCARDS} "*" wildcards`);
    }
    if (segments.every((s) => s === WILDCARD))
      return fail('a path of wildcards only would match the whole event');
  });

export const MASKING_MODES = ['full', 'partial', 'hash', 'null'] as const;
export type MaskingMode = (typeof MASKING_MODES)[number];

/** A bare string is shorthand for `{ field: <string> }`. */
const shorthand = (value: unknown) => (typeof value === 'string' ? { field: value } : value);

const hashField = z.preprocess(
  shorthand,
  z
    .object({
      field: fieldPath,
      /** Normalisation before hashing; inferred from the last named path segment when absent. */
      type: z.enum(FIELD_TYPES, { message: `one of ${FIELD_TYPES.join(', ')}` }).optional(),
    })
    .strict(),
);

const redactField = z.preprocess(
  shorthand,
  z
    .object({
      field: fieldPath,
      mode: z.enum(MASKING_MODES, { message: `one of ${MASKING_MODES.join(', ')}` }).default('full'),
    })
    .strict(),
);

const MAX_RULES = 256;

export const piiRulesSchema = z
  .object({
    /** Off only when set to false: a config that lists fields but forgets this flag still protects them. */
    enabled: z.boolean().default(true),
    hash_fields: z.array(hashField).max(MAX_RULES).default([]),
    redact_fields: z.array(redactField).max(MAX_RULES).default([]),
    /** `hmac-sha256` for fields that stay inside Signal; vendors need plain `sha256`. */
    hash_algorithm: z
      .enum(['sha256', 'hmac-sha256'], { message: 'one of sha256, hmac-sha256' })
      .default('sha256'),
  })
  .strict()
  .superRefine((rules, ctx) => {
    const seen = new Map<string, string>();
    const claim = (field: string, list: 'hash_fields' | 'redact_fields', index: number) => {
      const before = seen.get(field);
      if (before === undefined) {
        seen.set(field, `${list}[${index}]`);
        return;
      }
      ctx.addIssue({
        code: 'custom',
        path: [list, index],
        message: `"${field}" is already listed in ${before}: list each field once, in hash_fields or redact_fields`,
      });
    };
    for (const [i, r] of rules.hash_fields.entries()) claim(r.field, 'hash_fields', i);
    for (const [i, r] of rules.redact_fields.entries()) claim(r.field, 'redact_fields', i);
  });

/** `pii_rules` as written in configuration (before defaults and validation). */
export interface PiiRulesInput {
  readonly enabled?: boolean;
  readonly hash_fields?: readonly (string | { readonly field: string; readonly type?: FieldType })[];
  readonly redact_fields?: readonly (string | { readonly field: string; readonly mode?: MaskingMode })[];
  readonly hash_algorithm?: 'sha256' | 'hmac-sha256';
}
export type PiiRules = z.output<typeof piiRulesSchema>;

/** Validates `pii_rules`; throws `PiiConfigError` listing every problem as "<path>: <what it must be>". */
export function parsePiiRules(raw: unknown): PiiRules {
  const parsed = piiRulesSchema.safeParse(raw ?? {});
  if (parsed.success) return parsed.data;
  throw new PiiConfigError(
    parsed.error.issues.map((issue) => {
      const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
      return `pii_rules${path}: ${issue.message}`;
    }),
  );
}
