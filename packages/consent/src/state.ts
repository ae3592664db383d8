import { z } from 'zod';
import { ID_SET_PATTERN } from './id-set';

/** The five canonical categories every CMP signal is mapped onto (see README for the mapping tables). */
export const CONSENT_CATEGORIES = [
  'essential',
  'functional',
  'analytics',
  'marketing',
  'personalization',
] as const;
export type ConsentCategory = (typeof CONSENT_CATEGORIES)[number];
export const consentCategorySchema = z.enum(CONSENT_CATEGORIES);

/** The four Google Consent Mode v2 signals derived for every state. */
export const GOOGLE_CONSENT_SIGNALS = [
  'ad_storage',
  'analytics_storage',
  'ad_user_data',
  'ad_personalization',
] as const;
export type GoogleConsentSignal = (typeof GOOGLE_CONSENT_SIGNALS)[number];
/** Every signal a page may report through gtag (the four above plus the storage types of Consent Mode v1). */
export const REPORTED_GOOGLE_CONSENT_SIGNALS = [
  ...GOOGLE_CONSENT_SIGNALS,
  'functionality_storage',
  'personalization_storage',
  'security_storage',
] as const;
export type ReportedGoogleConsentSignal = (typeof REPORTED_GOOGLE_CONSENT_SIGNALS)[number];
export const googleConsentValueSchema = z.enum(['granted', 'denied']);
export type GoogleConsentValue = z.infer<typeof googleConsentValueSchema>;

/**
 * Why a state fails closed. Any entry makes every non-essential decision `drop`: a consent signal that was
 * sent but cannot be read tells us nothing about what the visitor chose.
 */
export const SIGNAL_ERROR_CODES = [
  'input_invalid',
  'tcf_undecodable',
  'tcf_too_long',
  'tcf_too_complex',
  'tcf_unsupported_version',
  'gpp_undecodable',
  'gpp_too_long',
  'us_privacy_invalid',
  'google_consent_mode_invalid',
] as const;
export type SignalErrorCode = (typeof SIGNAL_ERROR_CODES)[number];
const signalErrorSchema = z.enum(SIGNAL_ERROR_CODES);

const idSetSchema = z.string().max(11_000).regex(ID_SET_PATTERN);
const purposeIdsSchema = z.array(z.number().int().min(1).max(24)).max(24);
const tcfSourceSchema = z.enum(['tcf', 'gpp']);

const tcfValidSchema = z.object({
  status: z.literal('valid'),
  /** `tcf` = the page's TC string; `gpp` = the tcfeuv2 section of its GPP string. */
  source: tcfSourceSchema,
  /** As the CMP reported it; `false` switches the TCF gate off. Absent with a string present: TCF applies. */
  gdprApplies: z.boolean().optional(),
  policyVersion: z.number().int().min(0).max(63),
  cmpId: z.number().int().min(0).max(4095),
  cmpVersion: z.number().int().min(0).max(4095),
  vendorListVersion: z.number().int().min(0).max(4095),
  created: z.string().max(40),
  lastUpdated: z.string().max(40),
  isServiceSpecific: z.boolean(),
  purposeOneTreatment: z.boolean(),
  publisherCountryCode: z.string().max(2),
  specialFeatureOptins: z.array(z.number().int().min(1).max(12)).max(12),
  purposeConsents: purposeIdsSchema,
  purposeLegitimateInterests: purposeIdsSchema,
  vendorConsents: idSetSchema,
  vendorLegitimateInterests: idSetSchema,
  publisherRestrictions: z
    .array(
      z.object({
        purposeId: z.number().int().min(1).max(63),
        restrictionType: z.number().int().min(0).max(3),
        vendors: idSetSchema,
      }),
    )
    .max(256),
});

const tcfInvalidSchema = z.object({
  status: z.literal('invalid'),
  source: tcfSourceSchema,
  gdprApplies: z.boolean().optional(),
  error: signalErrorSchema,
});

export const tcfStateSchema = z.discriminatedUnion('status', [tcfValidSchema, tcfInvalidSchema]);
export type TcfState = z.infer<typeof tcfStateSchema>;
export type TcfValidState = z.infer<typeof tcfValidSchema>;

/** `opted_out` / `not_opted_out` / `not_applicable`: GPP's 1 / 2 / 0, US Privacy's Y / N / -. */
export const optOutStatusSchema = z.enum(['opted_out', 'not_opted_out', 'not_applicable']);
export type OptOutStatus = z.infer<typeof optOutStatusSchema>;

export const usSectionViewSchema = z.object({
  section: z.string().max(16),
  sale: optOutStatusSchema,
  sharing: optOutStatusSchema,
  targetedAdvertising: optOutStatusSchema,
  gpc: z.boolean(),
});
/** The sale / sharing / targeted-advertising opt-out view of one US GPP section (or of a US Privacy string). */
export type UsSectionView = z.infer<typeof usSectionViewSchema>;

export const usOptOutSchema = z.object({
  sale: z.boolean(),
  sharing: z.boolean(),
  targetedAdvertising: z.boolean(),
});
/** True = the visitor opted out, in at least one applicable US section or the US Privacy string. */
export type UsOptOut = z.infer<typeof usOptOutSchema>;

export const gppStateSchema = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('valid'),
    sectionIds: z.array(z.number().int().min(0).max(4095)).max(64),
    /** The CMP's `applicableSections`; absent = every section in the string is taken into account. */
    applicableSections: z.array(z.number().int().min(-1).max(4095)).max(64).optional(),
    us: z.array(usSectionViewSchema).max(64),
  }),
  z.object({ status: z.literal('invalid'), error: signalErrorSchema }),
]);
export type GppState = z.infer<typeof gppStateSchema>;

const usPrivacyFlagSchema = z.enum(['Y', 'N', '-']);
export const usPrivacyStateSchema = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('valid'),
    version: z.literal(1),
    notice: usPrivacyFlagSchema,
    optOutSale: usPrivacyFlagSchema,
    lspaCovered: usPrivacyFlagSchema,
  }),
  z.object({ status: z.literal('invalid'), error: signalErrorSchema }),
]);
export type UsPrivacyState = z.infer<typeof usPrivacyStateSchema>;

export const categoryStatesSchema = z.object({
  essential: z.literal(true),
  functional: z.boolean().optional(),
  analytics: z.boolean().optional(),
  marketing: z.boolean().optional(),
  personalization: z.boolean().optional(),
});
/** Per category: true = granted, false = denied, absent = no signal expressed a choice. */
export type CategoryStates = z.infer<typeof categoryStatesSchema>;

const googleConsentModeSchema = z.object({
  ad_storage: googleConsentValueSchema,
  analytics_storage: googleConsentValueSchema,
  ad_user_data: googleConsentValueSchema,
  ad_personalization: googleConsentValueSchema,
});
export type GoogleConsentMode = z.infer<typeof googleConsentModeSchema>;

const reportedGoogleConsentModeSchema = z.object({
  ad_storage: googleConsentValueSchema.optional(),
  analytics_storage: googleConsentValueSchema.optional(),
  ad_user_data: googleConsentValueSchema.optional(),
  ad_personalization: googleConsentValueSchema.optional(),
  functionality_storage: googleConsentValueSchema.optional(),
  personalization_storage: googleConsentValueSchema.optional(),
  security_storage: googleConsentValueSchema.optional(),
});
export type ReportedGoogleConsentMode = z.infer<typeof reportedGoogleConsentModeSchema>;

/** Longest raw strings accepted from the browser (see README: longer ones fail closed). */
export const MAX_RAW_TCF_LENGTH = 8192;
export const MAX_RAW_GPP_LENGTH = 16384;

/**
 * The canonical consent state: what `normaliseConsent` produces from what the browser sent, what travels in
 * `context.consent` of every event, and what the `ConsentStateStore` keeps per visitor.
 */
export const consentStateSchema = z.object({
  v: z.literal(1),
  /** Unix ms when this choice was observed; the store keeps the state with the highest value (last writer wins). */
  updatedAt: z.number().int().min(0),
  categories: categoryStatesSchema,
  /** Global Privacy Control, from `Sec-GPC: 1`, `navigator.globalPrivacyControl` or a GPP section's Gpc field. */
  gpc: z.boolean(),
  /** US opt-outs from the US Privacy string and the applicable GPP US sections (GPC is kept apart in `gpc`). */
  usOptOut: usOptOutSchema,
  tcf: tcfStateSchema.optional(),
  gpp: gppStateSchema.optional(),
  usPrivacy: usPrivacyStateSchema.optional(),
  /** Consent Mode signals the page reported (gcs / gcd / gtag state), before any derivation. */
  reportedGoogleConsentMode: reportedGoogleConsentModeSchema.optional(),
  /** Derived from the whole state for `jurisdiction` (see README "Google Consent Mode"). */
  googleConsentMode: googleConsentModeSchema,
  /** The jurisdiction `googleConsentMode` was derived for (ISO 3166 code); absent = unknown. */
  jurisdiction: z.string().max(8).optional(),
  raw: z.object({
    tcf: z.string().max(MAX_RAW_TCF_LENGTH).optional(),
    gpp: z.string().max(MAX_RAW_GPP_LENGTH).optional(),
    usPrivacy: z.string().max(16).optional(),
  }),
  cmp: z
    .object({ name: z.string().max(64).optional(), id: z.number().int().min(0).max(4095).optional() })
    .optional(),
  /** Non-empty = fail closed (every non-essential decision is `drop`). */
  errors: z.array(signalErrorSchema).max(16),
});
export type ConsentState = z.infer<typeof consentStateSchema>;

/** A state before its Google Consent Mode is derived (what the gates read; a full state is one too). */
export type ConsentSignals = Omit<ConsentState, 'googleConsentMode'>;
