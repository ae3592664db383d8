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
export type ConsentCategories = NonNullable<Consent['categories']>;
