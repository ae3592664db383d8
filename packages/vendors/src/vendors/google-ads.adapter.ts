import type { CanonicalEvent } from '@signal/events';
import type { VendorResponse } from '@signal/http';
import { z } from 'zod';
import type { AdapterContext, Payload, Preparation, VendorAdapter } from '../adapter';
import { readClickIds } from '../canonical/click-ids';
import { readCommerce } from '../canonical/commerce';
import { resolveEventName } from '../canonical/event-name';
import { countryHint, readPerson } from '../canonical/person';
import { eventTimeMs, googleAdsDateTime } from '../canonical/time';
import {
  classifyNetworkError,
  classifyStatus,
  isRecord,
  parseJson,
  retryAfter,
  shared,
} from '../classify-http';
import { compact } from '../compact';
import { piiValue, refuse } from '../guards';
import { deadLetter, delivered, retry, type Verdict } from '../outcome';
import { DAY_MS, DEFAULT_FUTURE_SKEW_MS, endpointSchema, MIB, secretSchema } from '../settings';

/**
 * Google Ads API conversion uploads with user identifiers (REST, JSON).
 *
 * - `click_conversions` (default): `customers/{cid}:uploadClickConversions`. Records the conversion itself
 *   from a click id (gclid / gbraid / wbraid) and/or hashed user identifiers (enhanced conversions for leads).
 * - `enhancements`: `customers/{cid}:uploadConversionAdjustments` with `ENHANCEMENT` adjustments that add
 *   hashed identifiers to a conversion the site tag already recorded, joined on `orderId`.
 *
 * Credentials are an OAuth2 access token and the developer token. The token refresh flow is the credential
 * store's job: it hands over a currently valid access token; an expired one comes back as `auth_failed`.
 * `partialFailure` is always on, so row errors arrive per row (`partialFailureError`) instead of failing the
 * whole request.
 */

const customerId = z
  .string()
  .transform((value) => value.replace(/-/g, ''))
  .pipe(z.string().regex(/^\d{10}$/, 'must be a 10-digit Google Ads customer id (dashes allowed)'));

const settingsSchema = z.strictObject({
  customerId,
  /** Manager (MCC) account the token acts through, sent as `login-customer-id`. */
  loginCustomerId: customerId.optional(),
  apiVersion: z
    .string()
    .regex(/^v\d{2,3}$/, 'must be a Google Ads API version such as v25')
    .default('v25'),
  mode: z.enum(['click_conversions', 'enhancements']).default('click_conversions'),
  /** Event name as sent, or its standard (GA4) name → conversion action id. Unmapped events are not sent. */
  conversionActions: z
    .record(
      z.string().min(1).max(256),
      z.string().regex(/^\d{1,20}$/, 'must be a numeric conversion action id'),
    )
    .refine((map) => Object.keys(map).length > 0, 'map at least one event to a conversion action'),
  /** Google validates the request and records nothing. */
  validateOnly: z.boolean().default(false),
  endpoint: endpointSchema.optional(),
});

const credentialsSchema = z.strictObject({
  /** OAuth2 access token (scope adwords), provided fresh by the credential store. */
  accessToken: secretSchema('accessToken'),
  developerToken: secretSchema('developerToken'),
});

export type GoogleAdsSettings = z.output<typeof settingsSchema>;
export type GoogleAdsCredentials = z.output<typeof credentialsSchema>;

/** Each UserIdentifier is a oneof; Google takes at most five per conversion. */
const MAX_IDENTIFIERS = 5;

/** Row errors Google documents as "try again later". */
const TRANSIENT_ROW_ERRORS: ReadonlySet<string> = new Set([
  'TOO_RECENT_EVENT',
  'TOO_RECENT_CONVERSION_ACTION',
  'TOO_RECENT_CALL',
  'TOO_RECENT_CONVERSION',
]);

function identifiers(
  event: CanonicalEvent,
  ctx: AdapterContext<GoogleAdsSettings, GoogleAdsCredentials>,
): Payload[] {
  const person = readPerson(event);
  const hints = countryHint(person);
  const field = (key: string, value: string | undefined) => piiValue(ctx.normalizer, key, value, hints);
  const out: Payload[] = [];
  const email = field('email', person.email);
  if (email !== undefined) out.push({ hashedEmail: email, userIdentifierSource: 'FIRST_PARTY' });
  const phone = field('phone_number', person.phone);
  if (phone !== undefined) out.push({ hashedPhoneNumber: phone, userIdentifierSource: 'FIRST_PARTY' });
  const address = compact({
    hashedFirstName: field('first_name', person.firstName),
    hashedLastName: field('last_name', person.lastName),
    hashedStreetAddress: field('street', person.street),
    city: field('city', person.city),
    state: field('region', person.state),
    countryCode: field('country', person.country),
    postalCode: field('postal_code', person.postalCode),
  });
  // Google matches an address only with first and last name, country and postal code.
  if (
    address.hashedFirstName !== undefined &&
    address.hashedLastName !== undefined &&
    address.countryCode !== undefined &&
    address.postalCode !== undefined
  ) {
    out.push({ addressInfo: address, userIdentifierSource: 'FIRST_PARTY' });
  }
  return out.slice(0, MAX_IDENTIFIERS);
}

function prepare(
  event: CanonicalEvent,
  ctx: AdapterContext<GoogleAdsSettings, GoogleAdsCredentials>,
): Preparation {
  const { settings } = ctx;
  const action = resolveEventName(event, { table: {}, overrides: settings.conversionActions });
  if (!action.ok) return { ok: false, kind: 'dropped', reason: action.reason, detail: action.detail };

  const marketing = event.context.consent.categories?.marketing;
  const adUserData = marketing === undefined ? undefined : marketing ? 'GRANTED' : 'DENIED';
  // With ad_user_data denied, no user-provided data goes to Google.
  const userIdentifiers = adUserData === 'DENIED' ? [] : identifiers(event, ctx);
  const clicks = readClickIds(event);
  const commerce = readCommerce(event);
  const eventMs = eventTimeMs(event) ?? ctx.now;
  const conversionAction = `customers/${settings.customerId}/conversionActions/${action.name}`;
  // The join key with the site tag's transaction_id; the message id when the site sent none.
  const orderId = commerce.transactionId ?? event.messageId;

  if (settings.mode === 'enhancements') {
    if (adUserData === 'DENIED') {
      return { ok: false, kind: 'dropped', reason: 'consent_denied', detail: 'ad_user_data is denied' };
    }
    if (userIdentifiers.length === 0) {
      return refuse('missing_identifiers', 'an enhancement needs an e-mail, a phone or a full address');
    }
    return {
      ok: true,
      payload: compact({
        conversionAction,
        adjustmentType: 'ENHANCEMENT',
        orderId,
        userIdentifiers,
        userAgent: event.context.userAgent,
        gclidDateTimePair:
          clicks.gclid === undefined
            ? undefined
            : { gclid: clicks.gclid, conversionDateTime: googleAdsDateTime(eventMs) },
      }),
    };
  }

  // gclid, gbraid and wbraid are mutually exclusive: the most specific one wins.
  const click =
    clicks.gclid !== undefined
      ? { gclid: clicks.gclid }
      : clicks.gbraid !== undefined
        ? { gbraid: clicks.gbraid }
        : clicks.wbraid !== undefined
          ? { wbraid: clicks.wbraid }
          : undefined;
  if (click === undefined && userIdentifiers.length === 0) {
    return refuse('missing_identifiers', 'needs a gclid, gbraid or wbraid, or hashed user identifiers');
  }
  return {
    ok: true,
    payload: compact({
      conversionAction,
      conversionDateTime: googleAdsDateTime(eventMs),
      conversionValue: commerce.value,
      currencyCode: commerce.currency,
      orderId,
      ...click,
      userIdentifiers: userIdentifiers.length > 0 ? userIdentifiers : undefined,
      consent: adUserData === undefined ? undefined : { adUserData },
    }),
  };
}

/** `"30s"` / `"1.5s"` (protobuf Duration JSON) → ms. */
function durationMs(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^(\d+(?:\.\d+)?)s$/.exec(value);
  return match?.[1] === undefined ? undefined : Math.round(Number(match[1]) * 1000);
}

/** The first `retryDelay` anywhere in the error (RetryInfo, or QuotaErrorDetails of a GoogleAdsFailure). */
function findRetryDelay(value: unknown, depth = 0): number | undefined {
  if (depth > 8) return undefined;
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = findRetryDelay(item, depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (!isRecord(value)) return undefined;
  const own = durationMs(value.retryDelay);
  if (own !== undefined) return own;
  for (const child of Object.values(value)) {
    const found = findRetryDelay(child, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

interface RowError {
  readonly index: number | undefined;
  /** `conversionUploadError: CLICK_NOT_FOUND` */
  readonly category: string;
  readonly code: string;
}

/** GoogleAdsFailure errors from a status's `details`, with the row index from `location.fieldPathElements`. */
function failureErrors(status: unknown): RowError[] {
  if (!isRecord(status) || !Array.isArray(status.details)) return [];
  const out: RowError[] = [];
  for (const detail of status.details) {
    if (!isRecord(detail) || !Array.isArray(detail.errors)) continue;
    for (const error of detail.errors) {
      if (!isRecord(error) || !isRecord(error.errorCode)) continue;
      const [category, code] = Object.entries(error.errorCode)[0] ?? [];
      if (category === undefined || typeof code !== 'string') continue;
      const location = isRecord(error.location) ? error.location.fieldPathElements : undefined;
      const head = Array.isArray(location) ? location[0] : undefined;
      const index = isRecord(head) && typeof head.index === 'number' ? head.index : undefined;
      out.push({ index, category, code });
    }
  }
  return out;
}

function rowVerdict(error: RowError): Verdict {
  const detail = `${error.category}: ${error.code}`;
  if (error.category === 'authenticationError' || error.category === 'authorizationError') {
    return deadLetter('auth_failed', detail);
  }
  if (error.category === 'quotaError') return retry('rate_limited', undefined, detail);
  if (error.category === 'internalError') return retry('vendor_unavailable', undefined, detail);
  if (TRANSIENT_ROW_ERRORS.has(error.code)) return retry('vendor_transient', undefined, detail);
  return deadLetter('validation_failed', detail);
}

function classifyFailure(response: VendorResponse, now: number): Verdict {
  const parsed = parseJson(response.body);
  const status = isRecord(parsed) && isRecord(parsed.error) ? parsed.error : undefined;
  const first = failureErrors(status)[0];
  const detail = first === undefined ? undefined : `${first.category}: ${first.code}`;
  switch (status?.status) {
    case 'UNAUTHENTICATED':
    case 'PERMISSION_DENIED':
      return deadLetter('auth_failed', detail);
    case 'RESOURCE_EXHAUSTED':
      return retry('rate_limited', findRetryDelay(status) ?? retryAfter(response, now), detail);
    case 'UNAVAILABLE':
    case 'INTERNAL':
    case 'DEADLINE_EXCEEDED':
    case 'ABORTED':
      return retry('vendor_unavailable', retryAfter(response, now), detail);
    case 'INVALID_ARGUMENT':
    case 'FAILED_PRECONDITION':
    case 'NOT_FOUND':
      return first === undefined ? deadLetter('validation_failed') : rowVerdict(first);
    default: {
      const verdict = classifyStatus(response, now);
      return verdict.kind === 'dead_letter' && detail !== undefined
        ? deadLetter(verdict.reason, detail)
        : verdict;
    }
  }
}

export const googleAds: VendorAdapter<GoogleAdsSettings, GoogleAdsCredentials> = {
  id: 'google_ads',
  displayName: 'Google Ads conversion upload (enhanced conversions)',
  settingsSchema,
  credentialsSchema,
  piiProfile: () => 'google',
  limits: (settings) => ({
    maxBatchSize: 2000,
    maxBodyBytes: 8 * MIB,
    maxEventBytes: 16 * 1024,
    // Enhancements within 24 h of the conversion; click conversions within the 90-day maximum click window.
    maxEventAgeMs: (settings.mode === 'enhancements' ? 1 : 90) * DAY_MS,
    maxFutureSkewMs: DEFAULT_FUTURE_SKEW_MS,
  }),
  prepare,
  buildRequest(batch, { settings, credentials }) {
    const base = settings.endpoint ?? 'https://googleads.googleapis.com';
    const method =
      settings.mode === 'enhancements' ? 'uploadConversionAdjustments' : 'uploadClickConversions';
    const url = `${base}/${settings.apiVersion}/customers/${settings.customerId}:${method}`;
    const rows = batch.map((entry) => entry.payload);
    const body = {
      ...(settings.mode === 'enhancements' ? { conversionAdjustments: rows } : { conversions: rows }),
      partialFailure: true,
      ...(settings.validateOnly ? { validateOnly: true } : {}),
    };
    return {
      url,
      logUrl: url,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${credentials.accessToken}`,
        'developer-token': credentials.developerToken,
        ...(settings.loginCustomerId === undefined ? {} : { 'login-customer-id': settings.loginCustomerId }),
      },
      body: JSON.stringify(body),
    };
  },
  classify(result, batch, { now }) {
    if (result.type === 'network_error') return shared(classifyNetworkError(result.error), batch.length);
    if (!result.ok) return shared(classifyFailure(result, now), batch.length);
    const parsed = parseJson(result.body);
    const partial = isRecord(parsed) ? parsed.partialFailureError : undefined;
    if (!isRecord(partial)) return shared(delivered, batch.length);
    const errors = failureErrors(partial);
    const located = errors.filter((e) => e.index !== undefined && e.index >= 0 && e.index < batch.length);
    if (located.length === 0) {
      // A partial failure Google did not pin to rows: none of them can be trusted as recorded.
      const first = errors[0];
      return shared(first === undefined ? deadLetter('validation_failed') : rowVerdict(first), batch.length);
    }
    const verdicts: Verdict[] = shared(delivered, batch.length);
    for (const error of located) {
      if (error.index === undefined) continue;
      // A row with several errors keeps the first one that is permanent, else the first.
      const current = verdicts[error.index];
      const next = rowVerdict(error);
      if (
        current === undefined ||
        current.kind === 'delivered' ||
        (current.kind === 'retry' && next.kind === 'dead_letter')
      ) {
        verdicts[error.index] = next;
      }
    }
    return verdicts;
  },
};
