import { z } from 'zod';
import { EVENT_LIMITS } from './limits';

/** The consent categories a banner asks about; the Org Data Layer maps vendors onto them. */
export const CONSENT_CATEGORIES = [
  'essential',
  'functional',
  'analytics',
  'marketing',
  'personalization',
] as const;
export type ConsentCategory = (typeof CONSENT_CATEGORIES)[number];

/** Printable ASCII without spaces: every IAB string alphabet (base64url, `.`, `~`, `-`) fits in it. */
const PRINTABLE = /^[\x21-\x7e]*$/;

/**
 * The consent state the browser (Datafly.js reading the CMP) or a server source reports with an event.
 *
 * Everything is optional because real pages send partial state; a category that is absent is *unknown*, and
 * `@signal/consent` decides what unknown means (fail closed for anything but essential). The raw IAB strings
 * are carried verbatim and only bounded here: decoding them, and failing closed on a malformed one, is the
 * consent package's job, so a CMP bug costs consent for that event rather than the event itself.
 */
export const consentSchema = z.object({
  categories: z
    .object({
      essential: z.boolean().optional(),
      functional: z.boolean().optional(),
      analytics: z.boolean().optional(),
      marketing: z.boolean().optional(),
      personalization: z.boolean().optional(),
    })
    .optional(),
  /** IAB TCF v2.x TC string. */
  tcf: z.string().max(EVENT_LIMITS.tcfString).regex(PRINTABLE, 'must be printable ASCII').optional(),
  /** IAB Global Privacy Platform string. */
  gpp: z.string().max(EVENT_LIMITS.gppString).regex(PRINTABLE, 'must be printable ASCII').optional(),
  /**
   * The GPP section ids that apply to this page (`gpp_sid`). GPP transmits them beside the string, not in it,
   * and a consumer needs them to know which of the string's sections to honour.
   */
  gppSid: z.array(z.int().min(0).max(65_535)).max(EVENT_LIMITS.gppSections).optional(),
  /** Global Privacy Control (`Sec-GPC: 1` or `navigator.globalPrivacyControl`). */
  gpc: z.boolean().optional(),
  /** IAB US Privacy (CCPA) string: a version digit and three flags, e.g. `1YNN`. */
  usPrivacy: z
    .string()
    .regex(/^[0-9][A-Za-z-]{3}$/, 'must be a version digit and three flags, e.g. 1YNN')
    .optional(),
});

export type Consent = z.infer<typeof consentSchema>;

const US_PRIVACY = /^[0-9][A-Za-z-]{3}$/;

function isBoundedPrintable(value: unknown, max: number): boolean {
  return typeof value === 'string' && value.length <= max && PRINTABLE.test(value);
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export type ConsentCategories = NonNullable<Consent['categories']>;

/**
 * `consentSchema`'s output for a valid consent object, without zod (the same contract as `checkedInput`);
 * undefined when any rule fails. Also used by `stampEvent`, which re-checks consent after the gateway's
 * enrichment.
 */
export function checkedConsent(raw: unknown): Consent | undefined {
  if (!isPlainRecord(raw)) return undefined;
  const { categories, tcf, gpp, gppSid, gpc, usPrivacy } = raw;
  let checkedCategories: Record<string, boolean> | undefined;
  if (categories !== undefined) {
    if (!isPlainRecord(categories)) return undefined;
    checkedCategories = {};
    for (const name of CONSENT_CATEGORIES) {
      const value = categories[name];
      if (value === undefined) continue;
      if (typeof value !== 'boolean') return undefined;
      checkedCategories[name] = value;
    }
  }
  if (tcf !== undefined && !isBoundedPrintable(tcf, EVENT_LIMITS.tcfString)) return undefined;
  if (gpp !== undefined && !isBoundedPrintable(gpp, EVENT_LIMITS.gppString)) return undefined;
  if (gppSid !== undefined) {
    if (!Array.isArray(gppSid) || gppSid.length > EVENT_LIMITS.gppSections) return undefined;
    for (const sid of gppSid) {
      if (!Number.isSafeInteger(sid) || (sid as number) < 0 || (sid as number) > 65_535) return undefined;
    }
  }
  if (gpc !== undefined && typeof gpc !== 'boolean') return undefined;
  if (usPrivacy !== undefined && !(typeof usPrivacy === 'string' && US_PRIVACY.test(usPrivacy))) {
    return undefined;
  }
  const out: Record<string, unknown> = {};
  if (checkedCategories !== undefined) out.categories = checkedCategories;
  if (tcf !== undefined) out.tcf = tcf;
  if (gpp !== undefined) out.gpp = gpp;
  // A copy, as the schema's array output is one.
  if (gppSid !== undefined) out.gppSid = [...(gppSid as number[])];
  if (gpc !== undefined) out.gpc = gpc;
  if (usPrivacy !== undefined) out.usPrivacy = usPrivacy;
  return out as Consent;
}
