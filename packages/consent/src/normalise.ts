import { z } from 'zod';
import {
  CategoryAccumulator,
  COOKIEBOT_CATEGORIES,
  DIDOMI_PURPOSES,
  ONETRUST_GROUPS,
  oneTrustChoices,
  USERCENTRICS_CATEGORIES,
} from './cmp-mapping';
import { ConsentError } from './errors';
import { deriveGoogleConsentMode, parseGcd, parseGcs } from './google-consent-mode';
import { aggregateUsOptOut, decodeGpp, gppUsViews, tcfFromGppSection } from './gpp';
import { encodeIdSet } from './id-set';
import type { Result } from './result';
import {
  CONSENT_CATEGORIES,
  type ConsentSignals,
  type ConsentState,
  type GppState,
  googleConsentValueSchema,
  MAX_RAW_GPP_LENGTH,
  MAX_RAW_TCF_LENGTH,
  REPORTED_GOOGLE_CONSENT_SIGNALS,
  type ReportedGoogleConsentMode,
  type SignalErrorCode,
  type TcfState,
  tcfStateSchema,
  type UsPrivacyState,
  type UsSectionView,
} from './state';
import { decodeTcString, type TcfDecoded, type TcfDecodeError } from './tcf';
import { parseUsPrivacy, usPrivacyView } from './us-privacy';

const choicesSchema = z
  .record(z.string().max(64), z.boolean())
  .refine((choices) => Object.keys(choices).length <= 64, 'at most 64 entries');
const optionalBoolean = z.boolean().nullish();

/**
 * What the browser SDK sends as `context.consent` (every field optional; `null` is read as absent so SDKs may
 * serialise missing values either way). Unknown keys are ignored; wrong types or oversized values make the
 * whole input invalid, and the state then fails closed.
 */
export const consentInputSchema = z.object({
  /** The SDK's own category view, e.g. set by the site through `datafly.consent({...})`. */
  categories: z
    .object({
      essential: optionalBoolean,
      functional: optionalBoolean,
      analytics: optionalBoolean,
      marketing: optionalBoolean,
      personalization: optionalBoolean,
    })
    .nullish(),
  /** TCF v2 TC string (`__tcfapi` `tcString`). */
  tcf: z.string().max(MAX_RAW_TCF_LENGTH).nullish(),
  /** GPP string (`__gpp` `gppString`). */
  gpp: z.string().max(MAX_RAW_GPP_LENGTH).nullish(),
  /** IAB US Privacy string (`__uspapi`), e.g. `1YNN`. */
  usPrivacy: z.string().max(16).nullish(),
  /** `navigator.globalPrivacyControl`. */
  gpc: optionalBoolean,
  cmp: z
    .object({
      name: z.string().max(64).nullish(),
      /** IAB CMP id. */
      id: z.number().int().min(0).max(4095).nullish(),
      /** `__tcfapi` `gdprApplies`: false switches the TCF gate off. */
      gdprApplies: optionalBoolean,
      /** `__gpp` `applicableSections` (the `gpp_sid` of tags). */
      gppApplicableSections: z.array(z.number().int().min(-1).max(4095)).max(64).nullish(),
      /** `OnetrustActiveGroups` (",C0001,C0003,") and, when known, every group id of the banner. */
      onetrust: z
        .object({
          activeGroups: z.union([z.string().max(1024), z.array(z.string().max(64)).max(64)]),
          groups: z.array(z.string().max(64)).max(64).nullish(),
        })
        .nullish(),
      /** `Cookiebot.consent`: necessary / preferences / statistics / marketing. */
      cookiebot: choicesSchema.nullish(),
      /** Didomi purpose id → enabled. */
      didomi: choicesSchema.nullish(),
      /** Usercentrics category slug → accepted. */
      usercentrics: choicesSchema.nullish(),
      /** Google Consent Mode as the page set it: gtag signals and/or the `gcs` / `gcd` hit parameters. */
      googleConsentMode: z
        .object({
          gcs: z.string().max(8).nullish(),
          gcd: z.string().max(32).nullish(),
          ad_storage: googleConsentValueSchema.nullish(),
          analytics_storage: googleConsentValueSchema.nullish(),
          ad_user_data: googleConsentValueSchema.nullish(),
          ad_personalization: googleConsentValueSchema.nullish(),
          functionality_storage: googleConsentValueSchema.nullish(),
          personalization_storage: googleConsentValueSchema.nullish(),
          security_storage: googleConsentValueSchema.nullish(),
        })
        .nullish(),
    })
    .nullish(),
});
export type ConsentInput = z.input<typeof consentInputSchema>;

export interface NormaliseOptions {
  /** Unix ms when this consent was observed (the event's time); orders updates in the state store. */
  readonly observedAt: number;
  /** The request's `Sec-GPC` header; `1` means Global Privacy Control is on. */
  readonly secGpc?: string | null | undefined;
  /** ISO 3166 code of the visitor's jurisdiction, for the derived Google Consent Mode; absent = unknown. */
  readonly jurisdiction?: string | undefined;
}

function present(value: string | null | undefined): string | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

function toTcfState(
  decoded: Result<TcfDecoded, TcfDecodeError>,
  source: 'tcf' | 'gpp',
  gdprApplies: boolean | undefined,
): TcfState {
  const base = { source, ...(gdprApplies === undefined ? {} : { gdprApplies }) };
  if (!decoded.ok) return { status: 'invalid', ...base, error: decoded.error.code };
  const tcf = decoded.value;
  // TCF v1 strings decode, but v1 purposes mean other things and the framework is retired: no valid consent.
  if (tcf.version !== 2) return { status: 'invalid', ...base, error: 'tcf_unsupported_version' };
  const state = tcfStateSchema.safeParse({
    status: 'valid',
    ...base,
    policyVersion: tcf.tcfPolicyVersion,
    cmpId: tcf.cmpId,
    cmpVersion: tcf.cmpVersion,
    vendorListVersion: tcf.vendorListVersion,
    created: tcf.created,
    lastUpdated: tcf.lastUpdated,
    isServiceSpecific: tcf.isServiceSpecific,
    purposeOneTreatment: tcf.purposeOneTreatment,
    publisherCountryCode: tcf.publisherCountryCode,
    specialFeatureOptins: tcf.specialFeatureOptins,
    purposeConsents: tcf.purposeConsents,
    purposeLegitimateInterests: tcf.purposeLegitimateInterests,
    vendorConsents: encodeIdSet(tcf.vendorConsents),
    vendorLegitimateInterests: encodeIdSet(tcf.vendorLegitimateInterests),
    publisherRestrictions: tcf.publisherRestrictions.map((restriction) => ({
      purposeId: restriction.purposeId,
      restrictionType: restriction.restrictionType,
      vendors: encodeIdSet(restriction.vendors),
    })),
  });
  // Decoded but outside what the framework allows (purpose 0, a restriction type of 4, …): not trusted.
  return state.success ? state.data : { status: 'invalid', ...base, error: 'tcf_undecodable' };
}

/** Denied wins when two sources report the same signal. */
function reportSignal(
  into: Record<string, 'granted' | 'denied'>,
  signal: string,
  value: 'granted' | 'denied' | null | undefined,
): void {
  if (value === null || value === undefined) return;
  into[signal] = into[signal] === 'denied' ? 'denied' : value;
}

function failClosed(
  updatedAt: number,
  gpc: boolean,
  errors: SignalErrorCode[],
  jurisdiction: string | undefined,
): ConsentState {
  return {
    v: 1,
    updatedAt,
    categories: { essential: true },
    gpc,
    usOptOut: { sale: false, sharing: false, targetedAdvertising: false },
    googleConsentMode: {
      ad_storage: 'denied',
      analytics_storage: 'denied',
      ad_user_data: 'denied',
      ad_personalization: 'denied',
    },
    ...(jurisdiction === undefined ? {} : { jurisdiction }),
    raw: {},
    errors,
  };
}

/**
 * Normalise what the browser sent into the canonical state. Never throws on browser input: anything that
 * cannot be read is recorded in `errors` and the state fails closed. Throws `ConsentError` only when
 * `observedAt` is not a non-negative finite number (a caller bug).
 */
export function normaliseConsent(input: unknown, options: NormaliseOptions): ConsentState {
  if (!Number.isFinite(options.observedAt) || options.observedAt < 0) {
    throw new ConsentError('consent_invalid_argument', 'observedAt must be a non-negative Unix time in ms');
  }
  const updatedAt = Math.trunc(options.observedAt);
  const jurisdiction = present(options.jurisdiction ?? undefined)?.toUpperCase();
  const recordedJurisdiction =
    jurisdiction !== undefined && jurisdiction.length <= 8 ? jurisdiction : undefined;
  const gpcHeader = options.secGpc?.trim() === '1';

  const parsed = consentInputSchema.safeParse(input ?? {});
  if (!parsed.success) return failClosed(updatedAt, gpcHeader, ['input_invalid'], recordedJurisdiction);
  const data = parsed.data;
  const cmp = data.cmp ?? undefined;
  const errors = new Set<SignalErrorCode>();
  const categories = new CategoryAccumulator();

  for (const category of CONSENT_CATEGORIES) {
    const choice = data.categories?.[category];
    if (choice !== null && choice !== undefined) categories.report(category, choice);
  }
  if (cmp?.onetrust) {
    const choices = oneTrustChoices(cmp.onetrust.activeGroups, cmp.onetrust.groups ?? undefined);
    categories.reportMapped(ONETRUST_GROUPS, choices);
  }
  if (cmp?.cookiebot) categories.reportMapped(COOKIEBOT_CATEGORIES, cmp.cookiebot);
  if (cmp?.didomi) categories.reportMapped(DIDOMI_PURPOSES, cmp.didomi);
  if (cmp?.usercentrics) categories.reportMapped(USERCENTRICS_CATEGORIES, cmp.usercentrics);

  let reportedGoogleConsentMode: ReportedGoogleConsentMode | undefined;
  const gcm = cmp?.googleConsentMode;
  if (gcm) {
    const reported: Record<string, 'granted' | 'denied'> = {};
    for (const signal of REPORTED_GOOGLE_CONSENT_SIGNALS) reportSignal(reported, signal, gcm[signal]);
    const gcs = present(gcm.gcs);
    if (gcs !== undefined) {
      const result = parseGcs(gcs);
      if (result.ok) {
        reportSignal(reported, 'ad_storage', result.value.ad_storage);
        reportSignal(reported, 'analytics_storage', result.value.analytics_storage);
      } else {
        errors.add(result.error.code);
      }
    }
    const gcd = present(gcm.gcd);
    if (gcd !== undefined) {
      const result = parseGcd(gcd);
      if (result.ok) {
        for (const [signal, value] of Object.entries(result.value)) {
          if (value.effective !== 'not_set') reportSignal(reported, signal, value.effective);
        }
      } else {
        errors.add(result.error.code);
      }
    }
    reportedGoogleConsentMode = reported;
    categories.reportGoogleConsentMode(reported);
  }

  const gdprApplies = cmp?.gdprApplies ?? undefined;
  const raw: ConsentState['raw'] = {};
  let tcf: TcfState | undefined;
  const tcString = present(data.tcf);
  if (tcString !== undefined) {
    raw.tcf = tcString;
    tcf = toTcfState(decodeTcString(tcString), 'tcf', gdprApplies);
  }

  let gpp: GppState | undefined;
  const usViews: UsSectionView[] = [];
  const gppString = present(data.gpp);
  if (gppString !== undefined) {
    raw.gpp = gppString;
    const decoded = decodeGpp(gppString);
    if (decoded.ok) {
      const applicable = cmp?.gppApplicableSections ?? undefined;
      const views = gppUsViews(decoded.value, applicable);
      usViews.push(...views);
      gpp = {
        status: 'valid',
        sectionIds: [...decoded.value.sectionIds],
        ...(applicable === undefined ? {} : { applicableSections: applicable }),
        us: views,
      };
      const tcfSection = decoded.value.sections.tcfeuv2;
      // The standalone TC string is the TCF API's own answer; the GPP copy is used only without one.
      if (
        tcf === undefined &&
        tcfSection !== undefined &&
        (applicable === undefined || applicable.includes(2))
      ) {
        const fromGpp = tcfFromGppSection(tcfSection);
        tcf = toTcfState(
          fromGpp === undefined
            ? { ok: false, error: { code: 'tcf_undecodable', message: 'malformed tcfeuv2 section' } }
            : { ok: true, value: fromGpp },
          'gpp',
          gdprApplies,
        );
      }
    } else {
      gpp = { status: 'invalid', error: decoded.error.code };
      errors.add(decoded.error.code);
    }
  }
  if (tcf?.status === 'invalid') errors.add(tcf.error);

  let usPrivacy: UsPrivacyState | undefined;
  const uspString = present(data.usPrivacy);
  if (uspString !== undefined) {
    raw.usPrivacy = uspString;
    const parsedUsp = parseUsPrivacy(uspString);
    if (parsedUsp.ok) {
      const { version, notice, optOutSale, lspaCovered } = parsedUsp.value;
      usPrivacy = { status: 'valid', version, notice, optOutSale, lspaCovered };
      usViews.push(usPrivacyView(parsedUsp.value));
    } else {
      usPrivacy = { status: 'invalid', error: parsedUsp.error.code };
      errors.add(parsedUsp.error.code);
    }
  }

  const cmpName = present(cmp?.name);
  const cmpId = cmp?.id ?? undefined;
  const signals: ConsentSignals = {
    v: 1,
    updatedAt,
    categories: categories.result(),
    gpc: data.gpc === true || gpcHeader || usViews.some((view) => view.gpc),
    usOptOut: aggregateUsOptOut(usViews),
    ...(tcf === undefined ? {} : { tcf }),
    ...(gpp === undefined ? {} : { gpp }),
    ...(usPrivacy === undefined ? {} : { usPrivacy }),
    ...(reportedGoogleConsentMode === undefined ? {} : { reportedGoogleConsentMode }),
    ...(recordedJurisdiction === undefined ? {} : { jurisdiction: recordedJurisdiction }),
    raw,
    ...(cmpName === undefined && cmpId === undefined
      ? {}
      : {
          cmp: {
            ...(cmpName === undefined ? {} : { name: cmpName }),
            ...(cmpId === undefined ? {} : { id: cmpId }),
          },
        }),
    errors: [...errors],
  };
  return { ...signals, googleConsentMode: deriveGoogleConsentMode(signals, jurisdiction) };
}
