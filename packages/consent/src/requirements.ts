import { z } from 'zod';
import { consentCategorySchema } from './state';

export const tcfPurposeRuleSchema = z.object({
  /** TCF purpose id (1–11 in TCF 2.2). */
  purpose: z.number().int().min(1).max(24),
  /** The legal basis the vendor relies on for this purpose (its GVL declaration, or stricter). */
  basis: z.enum(['consent', 'legitimate_interest']),
  /** The vendor declared the purpose flexible: a publisher restriction may switch the basis. */
  flexible: z.boolean().optional(),
});
export type TcfPurposeRule = z.infer<typeof tcfPurposeRuleSchema>;

const purposeRulesSchema = z.array(tcfPurposeRuleSchema).max(24);

/**
 * What an integration needs before an event may reach it. Declared per integration (defaults below), checked
 * by `decide` at both stages.
 */
export const consentRequirementSchema = z.object({
  /** The canonical category the delivery falls under. `essential` deliveries are never dropped. */
  category: consentCategorySchema,
  /** IAB Global Vendor List id; with a TC string in force the TCF gate then applies. */
  iabVendorId: z.number().int().min(1).max(65535).optional(),
  /** TCF purposes needed to deliver at all; default `[{purpose: 1, basis: 'consent'}]` when iabVendorId is set. */
  requiredPurposes: purposeRulesSchema.optional(),
  /**
   * A stricter gate for the personal data in the event (hashed email, phone, address, click ids' user data).
   * When it fails but the delivery gate passes, the decision is `strip`: deliver without PII. Absent: the PII
   * follows the delivery gate.
   */
  userData: z
    .object({
      category: consentCategorySchema,
      /** TCF purposes the PII needs (checked against iabVendorId); absent = none beyond the category. */
      requiredPurposes: purposeRulesSchema.optional(),
    })
    .optional(),
  /**
   * The delivery is a sale, a sharing or targeted advertising under US state law, so US opt-outs and GPC
   * block it. Defaults to true for `marketing`; set it for other categories that sell or share data.
   */
  saleOrSharing: z.boolean().optional(),
});
export type ConsentRequirement = z.infer<typeof consentRequirementSchema>;

/** IAB Global Vendor List ids (GVL v17, TCF 2.2). Meta, TikTok, Snap and Pinterest have none. */
export const IAB_VENDOR_IDS = { google: 755, linkedin: 804, microsoft: 1126 } as const;

const P1_CONSENT: TcfPurposeRule = { purpose: 1, basis: 'consent' };
const P7_CONSENT: TcfPurposeRule = { purpose: 7, basis: 'consent' };

/**
 * Defaults per vendor (see README "Integration defaults" for the reasoning). Google's TCF mapping drives the
 * Google ones: ad_storage = purpose 1, ad_user_data = purposes 1 and 7 (consent, vendor 755).
 */
export type DefaultRequirementKey =
  | 'google_ads'
  | 'ga4'
  | 'linkedin'
  | 'microsoft_ads'
  | 'meta'
  | 'tiktok'
  | 'pinterest'
  | 'snapchat'
  | 'webhook';

export const DEFAULT_CONSENT_REQUIREMENTS: Readonly<
  Record<DefaultRequirementKey, Readonly<ConsentRequirement>>
> = deepFreeze({
  google_ads: {
    category: 'marketing',
    iabVendorId: IAB_VENDOR_IDS.google,
    requiredPurposes: [P1_CONSENT],
    userData: { category: 'marketing', requiredPurposes: [P1_CONSENT, P7_CONSENT] },
  },
  ga4: {
    category: 'analytics',
    iabVendorId: IAB_VENDOR_IDS.google,
    requiredPurposes: [],
    userData: { category: 'marketing', requiredPurposes: [P1_CONSENT, P7_CONSENT] },
  },
  linkedin: {
    category: 'marketing',
    iabVendorId: IAB_VENDOR_IDS.linkedin,
    requiredPurposes: [P1_CONSENT, { purpose: 7, basis: 'legitimate_interest' }],
  },
  microsoft_ads: {
    category: 'marketing',
    iabVendorId: IAB_VENDOR_IDS.microsoft,
    requiredPurposes: [P1_CONSENT, P7_CONSENT],
  },
  meta: { category: 'marketing' },
  tiktok: { category: 'marketing' },
  pinterest: { category: 'marketing' },
  snapchat: { category: 'marketing' },
  webhook: { category: 'marketing' },
});

function deepFreeze<T extends object>(value: T): T {
  for (const inner of Object.values(value)) {
    if (typeof inner === 'object' && inner !== null) deepFreeze(inner);
  }
  return Object.freeze(value);
}
