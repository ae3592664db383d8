import type { CanonicalEvent } from '@signal/events';
import { z } from 'zod';
import type { AdapterContext, Preparation, VendorAdapter } from '../adapter';
import { readClickIds } from '../canonical/click-ids';
import { itemCount, readCommerce } from '../canonical/commerce';
import { resolveEventName, type StandardEvent } from '../canonical/event-name';
import { countryHint, readPerson } from '../canonical/person';
import { eventTimeMs, unixSeconds } from '../canonical/time';
import { classifyNetworkError, classifyStatus, isRecord, parseJson, shared } from '../classify-http';
import { compact } from '../compact';
import { checkIp, list, piiValue, refuse } from '../guards';
import { bisect, deadLetter } from '../outcome';
import {
  DAY_MS,
  DEFAULT_FUTURE_SKEW_MS,
  endpointSchema,
  eventMapSchema,
  MIB,
  secretSchema,
} from '../settings';

/**
 * Snap Conversions API v3: `POST https://tr.snapchat.com/v3/{pixel}/events`. Snap documents the token as the
 * `access_token` query parameter only; that stays the default and the logged URL is redacted. `tokenPlacement:
 * 'header'` sends `Authorization: Bearer` instead, for accounts where Snap accepts it.
 */

const settingsSchema = z.strictObject({
  pixelId: z.string().regex(/^[A-Za-z0-9-]{8,64}$/, 'must be the Snap Pixel id'),
  actionSource: z.enum(['WEB', 'MOBILE_APP', 'OFFLINE']).default('WEB'),
  tokenPlacement: z.enum(['query', 'header']).default('query'),
  /** Send to `/events/validate`: Snap checks the events and records nothing. */
  validate: z.boolean().default(false),
  eventMap: eventMapSchema.optional(),
  /** Limited Data Use (US state privacy laws). */
  limitedDataUse: z.boolean().default(false),
  endpoint: endpointSchema.optional(),
});

const credentialsSchema = z.strictObject({
  /** Conversions API token (Business Details → Conversions API Tokens). */
  accessToken: secretSchema('accessToken'),
});

export type SnapchatSettings = z.output<typeof settingsSchema>;
export type SnapchatCredentials = z.output<typeof credentialsSchema>;

/** Snap takes only its own event names (custom events are CUSTOM_EVENT_1…5, chosen via `eventMap`). */
export const SNAPCHAT_EVENT_NAMES: Readonly<Partial<Record<StandardEvent, string>>> = {
  page_view: 'PAGE_VIEW',
  view_item: 'VIEW_CONTENT',
  view_item_list: 'LIST_VIEW',
  search: 'SEARCH',
  add_to_cart: 'ADD_CART',
  add_to_wishlist: 'ADD_TO_WISHLIST',
  begin_checkout: 'START_CHECKOUT',
  add_payment_info: 'ADD_BILLING',
  purchase: 'PURCHASE',
  sign_up: 'SIGN_UP',
  login: 'LOGIN',
};

function prepare(
  event: CanonicalEvent,
  ctx: AdapterContext<SnapchatSettings, SnapchatCredentials>,
): Preparation {
  const { settings, normalizer } = ctx;
  const name = resolveEventName(event, { table: SNAPCHAT_EVENT_NAMES, overrides: settings.eventMap });
  if (!name.ok) return { ok: false, kind: 'dropped', reason: name.reason, detail: name.detail };

  const ip = checkIp(event.context.ip);
  if (!ip.ok) return refuse(ip.reason, 'context.ip is not a bare IP address');

  const person = readPerson(event);
  const hints = countryHint(person);
  const clicks = readClickIds(event);
  const field = (key: string, value: string | undefined) => piiValue(normalizer, key, value, hints);
  const userData = compact({
    em: list(field('em', person.email)),
    ph: list(field('ph', person.phone)),
    fn: list(field('fn', person.firstName)),
    ln: list(field('ln', person.lastName)),
    ge: list(field('ge', person.gender)),
    ct: list(field('ct', person.city)),
    st: list(field('st', person.state)),
    zp: list(field('zp', person.postalCode)),
    country: list(field('country', person.country)),
    external_id: list(field('external_id', event.userId)),
    client_ip_address: field('client_ip_address', ip.ip),
    client_user_agent: field('client_user_agent', event.context.userAgent),
    sc_click_id: field('sc_click_id', clicks.scClickId),
    sc_cookie1: field('sc_cookie1', clicks.scCookie1),
  });
  const matchable =
    userData.em !== undefined ||
    userData.ph !== undefined ||
    userData.external_id !== undefined ||
    userData.sc_click_id !== undefined ||
    userData.sc_cookie1 !== undefined ||
    (userData.client_ip_address !== undefined && userData.client_user_agent !== undefined);
  if (!matchable) {
    return refuse(
      'missing_identifiers',
      'needs one of em, ph, external_id, sc_click_id, sc_cookie1, or IP with user agent',
    );
  }

  const commerce = readCommerce(event);
  // Snap's documented example sends monetary values and quantities as strings.
  const customData = compact({
    currency: commerce.currency,
    value: commerce.value === undefined ? undefined : String(commerce.value),
    contents:
      commerce.items.length > 0
        ? commerce.items.map((item) =>
            compact({
              id: item.id,
              quantity: item.quantity === undefined ? undefined : String(item.quantity),
              item_price: item.price === undefined ? undefined : String(item.price),
              brand: item.brand,
            }),
          )
        : undefined,
    num_items: itemCount(commerce),
    order_id: commerce.transactionId,
    search_string: commerce.searchTerm,
  });
  return {
    ok: true,
    payload: compact({
      event_name: name.name,
      event_time: unixSeconds(eventTimeMs(event) ?? ctx.now),
      event_id: event.messageId,
      action_source: settings.actionSource,
      event_source_url: event.context.page?.url,
      user_data: userData,
      custom_data: Object.keys(customData).length > 0 ? customData : undefined,
      data_processing_options: settings.limitedDataUse ? ['LDU'] : undefined,
    }),
  };
}

export const snapchatCapi: VendorAdapter<SnapchatSettings, SnapchatCredentials> = {
  id: 'snapchat',
  displayName: 'Snap Conversions API v3',
  settingsSchema,
  credentialsSchema,
  piiProfile: () => 'snapchat',
  limits: () => ({
    maxBatchSize: 2000,
    maxBodyBytes: 4 * MIB,
    maxEventBytes: 64 * 1024,
    maxEventAgeMs: 37 * DAY_MS,
    maxFutureSkewMs: DEFAULT_FUTURE_SKEW_MS,
  }),
  prepare,
  buildRequest(batch, { settings, credentials }) {
    const base = settings.endpoint ?? 'https://tr.snapchat.com';
    const path = `${base}/v3/${settings.pixelId}/events${settings.validate ? '/validate' : ''}`;
    const inQuery = settings.tokenPlacement === 'query';
    return {
      url: inQuery ? `${path}?access_token=${encodeURIComponent(credentials.accessToken)}` : path,
      logUrl: inQuery ? `${path}?access_token=[redacted]` : path,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(inQuery ? {} : { authorization: `Bearer ${credentials.accessToken}` }),
      },
      body: JSON.stringify({ data: batch.map((entry) => entry.payload) }),
    };
  },
  classify(result, batch, { now }) {
    if (result.type === 'network_error') return shared(classifyNetworkError(result.error), batch.length);
    // Snap refuses the whole request (status INVALID, or 400) without naming the event at fault: the batch is
    // halved until it is alone, so one bad event does not take the good ones of its batch to the DLQ. A
    // refusal of the request itself (no half is ever taken) ends with every event dead-lettered, as before.
    if (result.ok) {
      const parsed = parseJson(result.body);
      if (isRecord(parsed) && parsed.status === 'INVALID') {
        return shared(bisect(deadLetter('validation_failed', 'Snap status INVALID')), batch.length);
      }
    }
    if (result.status === 400) return shared(bisect(deadLetter('validation_failed')), batch.length);
    return shared(classifyStatus(result, now), batch.length);
  },
};
