import { z } from 'zod';
import { isEmptyStringDigest, looksHashed, sha256Hex } from './digest';
import { PiiConfigError } from './errors';
import { asText, type RejectReason } from './outcome';
import type { RuleContext } from './rules';
import { googleProfile } from './vendors/google';
import { linkedinProfile } from './vendors/linkedin';
import { metaProfile } from './vendors/meta';
import { pinterestProfile } from './vendors/pinterest';
import type { FieldRule, VendorId, VendorProfile } from './vendors/profile';
import { VENDOR_IDS } from './vendors/profile';
import { snapchatProfile } from './vendors/snapchat';
import { tiktokProfile } from './vendors/tiktok';

const PROFILES: Readonly<Record<VendorId, VendorProfile>> = {
  meta: metaProfile,
  google: googleProfile,
  tiktok: tiktokProfile,
  snapchat: snapchatProfile,
  pinterest: pinterestProfile,
  linkedin: linkedinProfile,
};

const vendorOptionsSchema = z
  .object({
    /** Send 64-hex (and, for Meta, 32-hex) inputs as already hashed. Default true. */
    passthroughHashed: z.boolean().default(true),
    /** Refuse a pre-hashed input that is the digest of "" (it identifies nobody). Default true. */
    rejectEmptyStringHash: z.boolean().default(true),
    googleEmailRule: z
      .enum(['documented', 'gmail-strip-plus-suffix', 'strip-dots-and-plus-all-domains'])
      .default('documented'),
    pinterestRules: z.enum(['documented', 'rudderstack']).default('documented'),
    snapDefaultCallingCode: z
      .string()
      .regex(/^[1-9]\d{0,2}$/, 'a country calling code: 1 to 3 digits, not starting with 0')
      .default('1'),
  })
  .strict();

/** Settings of a vendor normaliser (all optional; defaults follow each vendor's documentation). */
export type VendorNormalizerOptions = z.input<typeof vendorOptionsSchema> & {
  /** Clock for the date-of-birth year window (1800 … this year + 1). Default: the system clock. */
  readonly now?: () => Date;
};

/** Facts about the person that help normalise one value. */
export interface NormalizeHints {
  /** ISO-3166 alpha-2 country, used to complete phone numbers written without a country code. */
  readonly country?: string;
}

export type NormalizeResult =
  | {
      readonly ok: true;
      /** What the vendor's rules make of the value; for a pass-through, the input as received (trimmed). */
      readonly normalized: string;
      /** Lowercase hex SHA-256 to send, or `null` for a field the vendor takes in clear (send `normalized`). */
      readonly hash: string | null;
      /** The input was already a digest and is sent as is (lowercased). */
      readonly passthrough: boolean;
    }
  | { readonly ok: false; readonly reason: RejectReason };

/** A vendor's field rules, compiled once (per integration) and applied per value. */
export interface VendorNormalizer {
  readonly vendor: VendorId;
  /** Every field this vendor profile knows. */
  readonly fields: readonly string[];
  /** Whether the field is sent hashed (`false`: clear text; `undefined`: unknown field). */
  isHashed(field: string): boolean | undefined;
  normalize(field: string, value: unknown, hints?: NormalizeHints): NormalizeResult;
  /** The digest to send, or `null` when the value is rejected or the field goes in clear text. */
  hash(field: string, value: unknown, hints?: NormalizeHints): string | null;
}

const COUNTRY_HINT = /^[A-Za-z]{2}$/;

export function createVendorNormalizer(
  vendor: VendorId,
  options: VendorNormalizerOptions = {},
): VendorNormalizer {
  if (!VENDOR_IDS.includes(vendor)) {
    throw new PiiConfigError([`vendor: must be one of ${VENDOR_IDS.join(', ')}`]);
  }
  const { now = () => new Date(), ...rest } = options;
  const parsed = vendorOptionsSchema.safeParse(rest);
  if (!parsed.success) {
    throw new PiiConfigError(
      parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`),
    );
  }
  const settings = parsed.data;
  const table: ReadonlyMap<string, FieldRule> = PROFILES[vendor](settings);
  const baseContext: RuleContext = { now };

  const normalize = (field: string, value: unknown, hints?: NormalizeHints): NormalizeResult => {
    const rule = table.get(field);
    if (rule === undefined) return { ok: false, reason: 'unknown_field' };
    const text = asText(value);
    if (text === undefined) return { ok: false, reason: 'not_a_string' };
    const trimmed = text.trim();
    if (trimmed === '') return { ok: false, reason: 'empty' };

    if (rule.hashed && settings.passthroughHashed && looksHashed(trimmed, rule.passthrough)) {
      const digest = trimmed.toLowerCase();
      if (settings.rejectEmptyStringHash && isEmptyStringDigest(digest))
        return { ok: false, reason: 'empty_hash' };
      return { ok: true, normalized: trimmed, hash: digest, passthrough: true };
    }

    const country = hints?.country;
    const context: RuleContext =
      country !== undefined && COUNTRY_HINT.test(country)
        ? { now, country: country.toUpperCase() }
        : baseContext;
    const outcome = rule.normalize(text, context);
    if (!outcome.ok) return outcome;
    if (outcome.value === '') return { ok: false, reason: 'empty' };
    return {
      ok: true,
      normalized: outcome.value,
      hash: rule.hashed ? sha256Hex(outcome.value) : null,
      passthrough: false,
    };
  };

  return {
    vendor,
    fields: [...table.keys()],
    isHashed: (field) => table.get(field)?.hashed,
    normalize,
    hash(field, value, hints) {
      const result = normalize(field, value, hints);
      return result.ok ? result.hash : null;
    },
  };
}

/**
 * One-off form of `createVendorNormalizer(vendor, options).normalize(field, value)`. The Delivery Worker
 * should build a normaliser per integration instead: this one recompiles the profile on every call.
 */
export function normalizeFor(
  vendor: VendorId,
  field: string,
  value: unknown,
  options?: VendorNormalizerOptions & NormalizeHints,
): NormalizeResult {
  const { country, ...rest } = options ?? {};
  return createVendorNormalizer(vendor, rest).normalize(
    field,
    value,
    country === undefined ? undefined : { country },
  );
}

/** One-off form of `createVendorNormalizer(vendor, options).hash(field, value)`. */
export function hashFor(
  vendor: VendorId,
  field: string,
  value: unknown,
  options?: VendorNormalizerOptions & NormalizeHints,
): string | null {
  const result = normalizeFor(vendor, field, value, options);
  return result.ok ? result.hash : null;
}
