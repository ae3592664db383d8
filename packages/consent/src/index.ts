export {
  CategoryAccumulator,
  type CategoryMapping,
  COOKIEBOT_CATEGORIES,
  DIDOMI_PURPOSES,
  GOOGLE_CONSENT_MODE_SIGNALS,
  ONETRUST_ASSUMED_GROUPS,
  ONETRUST_GROUPS,
  oneTrustChoices,
  USERCENTRICS_CATEGORIES,
} from './cmp-mapping';
export { type ConsentDecision, type ConsentOutcome, type DecisionContext, decide } from './decide';
export { ConsentError, type ConsentErrorCode } from './errors';
export { CONSENT_REASONS, type ConsentReason, type GateDetail, tcfCategory, tcfInForce } from './gates';
export {
  deriveGoogleConsentMode,
  type GcdSignal,
  type GcdSignals,
  type GcdState,
  type GoogleConsentModeError,
  parseGcd,
  parseGcs,
} from './google-consent-mode';
export {
  aggregateUsOptOut,
  decodeGpp,
  type GppDecoded,
  type GppDecodeError,
  type GppDecodeErrorCode,
  gppSectionName,
  gppUsViews,
  MAX_GPP_STRING_LENGTH,
  tcfFromGppSection,
  usSectionView,
} from './gpp';
export { decodeIdSet, type IdSet, idSetHas } from './id-set';
export { type ConsentRegime, consentRegime } from './jurisdiction';
export { type ConsentInput, consentInputSchema, type NormaliseOptions, normaliseConsent } from './normalise';
export {
  type ConsentRequirement,
  consentRequirementSchema,
  DEFAULT_CONSENT_REQUIREMENTS,
  type DefaultRequirementKey,
  IAB_VENDOR_IDS,
  type TcfPurposeRule,
  tcfPurposeRuleSchema,
} from './requirements';
export type { Result } from './result';
export {
  type CategoryStates,
  CONSENT_CATEGORIES,
  type ConsentCategory,
  type ConsentSignals,
  type ConsentState,
  consentCategorySchema,
  consentStateSchema,
  GOOGLE_CONSENT_SIGNALS,
  type GoogleConsentMode,
  type GoogleConsentSignal,
  type GoogleConsentValue,
  type GppState,
  type OptOutStatus,
  REPORTED_GOOGLE_CONSENT_SIGNALS,
  type ReportedGoogleConsentMode,
  type ReportedGoogleConsentSignal,
  SIGNAL_ERROR_CODES,
  type SignalErrorCode,
  type TcfState,
  type TcfValidState,
  type UsOptOut,
  type UsPrivacyState,
  type UsSectionView,
} from './state';
export {
  type CacheConsentStateStore,
  type CacheConsentStateStoreOptions,
  type ConsentCache,
  type ConsentLogger,
  type ConsentStateRead,
  type ConsentStateStore,
  type ConsentStateWrite,
  createCacheConsentStateStore,
  DEFAULT_CONSENT_TTL_MS,
  decideLatest,
  type LatestConsent,
  resolveLatestConsent,
  subjectDigest,
  visitorKey,
} from './state-store';
export {
  decodeTcString,
  MAX_TC_STRING_LENGTH,
  type TcfDecoded,
  type TcfDecodeError,
  type TcfDecodeErrorCode,
  type TcfPublisherRestriction,
} from './tcf';
export { parseUsPrivacy, type UsPrivacy, type UsPrivacyError, type UsPrivacyFlag } from './us-privacy';
export {
  applyUserConsent,
  DEFAULT_USER_CONSENT_TTL_MS,
  DEFAULT_WITHDRAWAL_TTL_MS,
  type MergedChoices,
  mergeChoices,
  mergeRecords,
  recordWithdraws,
  storedUserConsentSchema,
  type UserChoice,
  type UserConsentRead,
  type UserConsentRecord,
  type UserConsentStore,
  type UserConsentWrite,
  type WithdrawableCategory,
  withdrawnCategories,
} from './user-consent';
