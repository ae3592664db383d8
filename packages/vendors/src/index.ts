export {
  type AdapterContext,
  type BuiltRequest,
  type Payload,
  type Preparation,
  type PreparedEvent,
  VENDOR_ADAPTER_IDS,
  type VendorAdapter,
  type VendorAdapterId,
  type VendorLimits,
} from './adapter';
export { ENVELOPE_RESERVE_BYTES, splitBatches } from './batching';
export { type ClickIds, readClickIds } from './canonical/click-ids';
export { type Commerce, type Item, readCommerce } from './canonical/commerce';
export {
  type EventNameResolution,
  type EventNameRules,
  resolveEventName,
  STANDARD_EVENTS,
  type StandardEvent,
  standardEvent,
} from './canonical/event-name';
export { type Person, readPerson } from './canonical/person';
export { eventTimeMs } from './canonical/time';
export { classifyNetworkError, classifyStatus } from './classify-http';
export {
  createIntegration,
  type DeliverOptions,
  type DeliveryReport,
  deliver,
  type Integration,
  type IntegrationConfig,
  type RequestRecord,
  type SendRequest,
  type Transport,
} from './deliver';
export { VendorConfigError, VendorError, type VendorErrorCode } from './errors';
export { checkEventTime, checkIp } from './guards';
export {
  type CapturedResponse,
  DEAD_LETTER_REASONS,
  type DeadLetterReason,
  type DeliveryOutcome,
  DROP_REASONS,
  type DropReason,
  GUARD_REASONS,
  type GuardReason,
  isAuthFailure,
  type OutcomeKind,
  RETRY_REASONS,
  type RetryReason,
  type Verdict,
} from './outcome';
export { createRedactor, MAX_CAPTURED_BODY, type Redactor } from './redact';
export { type AnyVendorAdapter, isVendorAdapterId, vendors } from './registry';
export { type Ga4Credentials, type Ga4Settings, ga4Mp } from './vendors/ga4-mp.adapter';
export { type GoogleAdsCredentials, type GoogleAdsSettings, googleAds } from './vendors/google-ads.adapter';
export {
  type LinkedInCredentials,
  type LinkedInSettings,
  linkedinCapi,
} from './vendors/linkedin-capi.adapter';
export {
  META_ACTION_SOURCES,
  META_EVENT_NAMES,
  type MetaCredentials,
  type MetaSettings,
  metaCapi,
} from './vendors/meta-capi.adapter';
export {
  PINTEREST_EVENT_NAMES,
  type PinterestCredentials,
  type PinterestSettings,
  pinterestCapi,
} from './vendors/pinterest-capi.adapter';
export {
  SNAPCHAT_EVENT_NAMES,
  type SnapchatCredentials,
  type SnapchatSettings,
  snapchatCapi,
} from './vendors/snapchat-capi.adapter';
export {
  TIKTOK_EVENT_NAMES,
  type TikTokCredentials,
  type TikTokSettings,
  tiktokEvents,
} from './vendors/tiktok-events.adapter';
export { type WebhookCredentials, type WebhookSettings, webhook } from './vendors/webhook.adapter';
export {
  DEFAULT_SIGNATURE_TOLERANCE_MS,
  IDEMPOTENCY_HEADER,
  SIGNATURE_HEADER,
  signWebhook,
  TIMESTAMP_HEADER,
  type VerifyWebhookInput,
  verifyWebhookSignature,
  type WebhookVerification,
} from './vendors/webhook-signature';
