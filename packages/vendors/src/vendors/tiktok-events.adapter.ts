import type { CanonicalEvent } from '@signal/events';
import type { VendorResponse } from '@signal/http';
import { z } from 'zod';
import type { AdapterContext, Preparation, VendorAdapter } from '../adapter';
import { readClickIds } from '../canonical/click-ids';
import { readCommerce } from '../canonical/commerce';
import { resolveEventName, type StandardEvent } from '../canonical/event-name';
import { countryHint, readPerson } from '../canonical/person';
import { eventTimeMs, unixSeconds } from '../canonical/time';
import {
  classifyNetworkError,
  classifyStatus,
  isRecord,
  parseJson,
  retryAfter,
  shared,
} from '../classify-http';
import { compact } from '../compact';
import { checkIp, piiValue, refuse } from '../guards';
import { bisect, deadLetter, delivered, type FinalVerdict, retry } from '../outcome';
import {
  DAY_MS,
  DEFAULT_FUTURE_SKEW_MS,
  endpointSchema,
  eventMapSchema,
  MIB,
  secretSchema,
} from '../settings';

/**
 * TikTok Events API 2.0: `POST https://business-api.tiktok.com/open_api/v1.3/event/track/`, token in the
 * `Access-Token` header. TikTok answers HTTP 200 with a body `code`: 0 is success, 40100 is throttling, and a
 * single bad row fails the whole batch with 40002 without naming the row (`"Invalid value for event_id: not a
 * valid string."`): the batch is halved until that row is alone (`settleBatch`).
 */

const settingsSchema = z.strictObject({
  /** Pixel code (`event_source_id`). */
  pixelCode: z.string().regex(/^[A-Za-z0-9_-]{4,64}$/, 'must be the TikTok pixel code'),
  /** Events Manager → Test events code. */
  testEventCode: z.string().min(1).max(64).optional(),
  eventMap: eventMapSchema.optional(),
  /** Send track events without a standard mapping as custom events under their own name. */
  sendCustomEvents: z.boolean().default(true),
  /** Limited Data Use (US state privacy laws). */
  limitedDataUse: z.boolean().default(false),
  endpoint: endpointSchema.optional(),
});

const credentialsSchema = z.strictObject({
  /** Events API access token from Events Manager. */
  accessToken: secretSchema('accessToken'),
});

export type TikTokSettings = z.output<typeof settingsSchema>;
export type TikTokCredentials = z.output<typeof credentialsSchema>;

/**
 * TikTok's standard events as listed in 2025 (`Purchase` replaced the older `CompletePayment`; a pixel still
 * firing `CompletePayment` is matched with `eventMap: { purchase: 'CompletePayment' }`). TikTok has no
 * standard page-view event for the API: page calls are sent only when mapped.
 */
export const TIKTOK_EVENT_NAMES: Readonly<Partial<Record<StandardEvent, string>>> = {
  view_item: 'ViewContent',
  search: 'Search',
  add_to_cart: 'AddToCart',
  add_to_wishlist: 'AddToWishlist',
  begin_checkout: 'InitiateCheckout',
  add_payment_info: 'AddPaymentInfo',
  purchase: 'Purchase',
  generate_lead: 'Lead',
  sign_up: 'CompleteRegistration',
};

const CUSTOM_EVENT = /^[A-Za-z0-9_ -]{1,50}$/;

/** Body codes: rate limiting, transient server trouble, bad token or permission, bad parameters. */
const THROTTLED = 40100;
const TRANSIENT: ReadonlySet<number> = new Set([40700, 50000, 50001, 50002]);
const AUTH: ReadonlySet<number> = new Set([40001, 40102, 40104, 40105]);
const VALIDATION: ReadonlySet<number> = new Set([40002]);

function prepare(event: CanonicalEvent, ctx: AdapterContext<TikTokSettings, TikTokCredentials>): Preparation {
  const { settings, normalizer } = ctx;
  const name = resolveEventName(event, {
    table: TIKTOK_EVENT_NAMES,
    overrides: settings.eventMap,
    custom: settings.sendCustomEvents ? (raw) => (CUSTOM_EVENT.test(raw) ? raw : undefined) : undefined,
  });
  if (!name.ok) return { ok: false, kind: 'dropped', reason: name.reason, detail: name.detail };

  const ip = checkIp(event.context.ip);
  if (!ip.ok) return refuse(ip.reason, 'context.ip is not a bare IP address');

  const person = readPerson(event);
  const hints = countryHint(person);
  const clicks = readClickIds(event);
  const field = (key: string, value: string | undefined) => piiValue(normalizer, key, value, hints);
  const user = compact({
    email: field('email', person.email),
    phone: field('phone', person.phone),
    external_id: field('external_id', event.userId),
    ttclid: field('ttclid', clicks.ttclid),
    ttp: field('ttp', clicks.ttp),
    ip: field('ip', ip.ip),
    user_agent: field('user_agent', event.context.userAgent),
    locale: event.context.locale,
  });
  const matchable =
    user.email !== undefined ||
    user.phone !== undefined ||
    user.external_id !== undefined ||
    user.ttclid !== undefined ||
    user.ttp !== undefined ||
    (user.ip !== undefined && user.user_agent !== undefined);
  if (!matchable) {
    return refuse(
      'missing_identifiers',
      'needs one of email, phone, external_id, ttclid, ttp, or IP with user agent',
    );
  }

  const commerce = readCommerce(event);
  const properties = compact({
    currency: commerce.currency,
    value: commerce.value,
    contents:
      commerce.items.length > 0
        ? commerce.items.map((item) =>
            compact({
              content_id: item.id,
              content_name: item.name,
              content_category: item.category,
              brand: item.brand,
              price: item.price,
              quantity: item.quantity,
            }),
          )
        : undefined,
    content_type: commerce.items.length > 0 ? 'product' : undefined,
    order_id: commerce.transactionId,
    query: commerce.searchTerm,
  });
  const page = event.context.page;
  return {
    ok: true,
    payload: compact({
      event: name.name,
      event_time: unixSeconds(eventTimeMs(event) ?? ctx.now),
      event_id: event.messageId,
      user,
      page: page === undefined ? undefined : compact({ url: page.url, referrer: page.referrer }),
      properties: Object.keys(properties).length > 0 ? properties : undefined,
      limited_data_use: settings.limitedDataUse ? true : undefined,
    }),
  };
}

function bodyVerdict(response: VendorResponse, now: number): FinalVerdict | undefined {
  const parsed = parseJson(response.body);
  if (!isRecord(parsed) || typeof parsed.code !== 'number') return undefined;
  const { code } = parsed;
  const detail = `TikTok code ${code}`;
  // 20001: accepted with warnings (RudderStack treats it as success).
  if (code === 0 || code === 20001) return delivered;
  if (code === THROTTLED) return retry('rate_limited', retryAfter(response, now), detail);
  if (TRANSIENT.has(code) || code >= 50000)
    return retry('vendor_unavailable', retryAfter(response, now), detail);
  if (AUTH.has(code)) return deadLetter('auth_failed', detail);
  if (VALIDATION.has(code)) return deadLetter('validation_failed', detail);
  // An unknown non-zero code on HTTP 200 is a refusal, not a delivery; on an error status the status decides.
  return response.ok ? deadLetter('vendor_rejected', detail) : undefined;
}

export const tiktokEvents: VendorAdapter<TikTokSettings, TikTokCredentials> = {
  id: 'tiktok',
  displayName: 'TikTok Events API',
  settingsSchema,
  credentialsSchema,
  piiProfile: () => 'tiktok',
  limits: () => ({
    maxBatchSize: 1000,
    maxBodyBytes: 4 * MIB,
    maxEventBytes: 64 * 1024,
    maxEventAgeMs: 7 * DAY_MS,
    maxFutureSkewMs: DEFAULT_FUTURE_SKEW_MS,
  }),
  prepare,
  buildRequest(batch, { settings, credentials }) {
    const url = `${settings.endpoint ?? 'https://business-api.tiktok.com'}/open_api/v1.3/event/track/`;
    const body = compact({
      event_source: 'web',
      event_source_id: settings.pixelCode,
      test_event_code: settings.testEventCode,
      data: batch.map((entry) => entry.payload),
    });
    return {
      url,
      logUrl: url,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'access-token': credentials.accessToken },
      body: JSON.stringify(body),
    };
  },
  classify(result, batch, { now }) {
    if (result.type === 'network_error') return shared(classifyNetworkError(result.error), batch.length);
    const verdict = bodyVerdict(result, now) ?? classifyStatus(result, now);
    // 40002 refuses the whole batch for one row it does not name: halve the batch to find it.
    if (verdict.kind === 'dead_letter' && verdict.reason === 'validation_failed') {
      return shared(bisect(verdict), batch.length);
    }
    return shared(verdict, batch.length);
  },
};
