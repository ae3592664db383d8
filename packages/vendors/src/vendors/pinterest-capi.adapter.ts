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
import { bisect, deadLetter, delivered, resend, type Verdict } from '../outcome';
import {
  DAY_MS,
  DEFAULT_FUTURE_SKEW_MS,
  endpointSchema,
  eventMapSchema,
  MIB,
  secretSchema,
} from '../settings';

/**
 * Pinterest Conversions API: `POST https://api.pinterest.com/v5/ad_accounts/{id}/events`, bearer conversion
 * token. The response lists one status per event, in request order, so failures are per event.
 */

const settingsSchema = z.strictObject({
  adAccountId: z.string().regex(/^\d{1,32}$/, 'must be the numeric Pinterest ad account id'),
  actionSource: z.enum(['web', 'app_android', 'app_ios', 'offline']).default('web'),
  /** `?test=true`: Pinterest validates and reports, nothing counts for ads. */
  test: z.boolean().default(false),
  eventMap: eventMapSchema.optional(),
  /** Send track events without a standard mapping as `custom` events. */
  sendCustomEvents: z.boolean().default(true),
  /** Limited Data Processing (US state privacy laws): `custom_data.opt_out_type = "LDP"`. */
  limitedDataProcessing: z.boolean().default(false),
  endpoint: endpointSchema.optional(),
});

const credentialsSchema = z.strictObject({
  /** Conversion access token from Ads Manager. */
  accessToken: secretSchema('accessToken'),
});

export type PinterestSettings = z.output<typeof settingsSchema>;
export type PinterestCredentials = z.output<typeof credentialsSchema>;

export const PINTEREST_EVENT_NAMES: Readonly<Partial<Record<StandardEvent, string>>> = {
  page_view: 'page_visit',
  view_item: 'page_visit',
  view_item_list: 'view_category',
  search: 'search',
  add_to_cart: 'add_to_cart',
  purchase: 'checkout',
  generate_lead: 'lead',
  sign_up: 'signup',
};

function prepare(
  event: CanonicalEvent,
  ctx: AdapterContext<PinterestSettings, PinterestCredentials>,
): Preparation {
  const { settings, normalizer } = ctx;
  const name = resolveEventName(event, {
    table: PINTEREST_EVENT_NAMES,
    overrides: settings.eventMap,
    custom: settings.sendCustomEvents ? () => 'custom' : undefined,
  });
  if (!name.ok) return { ok: false, kind: 'dropped', reason: name.reason, detail: name.detail };

  const ip = checkIp(event.context.ip);
  if (!ip.ok) return refuse(ip.reason, 'context.ip is not a bare IP address');

  const person = readPerson(event);
  const hints = countryHint(person);
  const field = (key: string, value: string | undefined) => piiValue(normalizer, key, value, hints);
  const userData = compact({
    em: list(field('em', person.email)),
    ph: list(field('ph', person.phone)),
    fn: list(field('fn', person.firstName)),
    ln: list(field('ln', person.lastName)),
    ge: list(field('ge', person.gender)),
    db: list(field('db', person.birthday)),
    ct: list(field('ct', person.city)),
    st: list(field('st', person.state)),
    zp: list(field('zp', person.postalCode)),
    country: list(field('country', person.country)),
    external_id: list(field('external_id', event.userId)),
    client_ip_address: field('client_ip_address', ip.ip),
    client_user_agent: field('client_user_agent', event.context.userAgent),
    click_id: field('click_id', readClickIds(event).epik),
  });
  // Pinterest's documented minimum: an e-mail, a mobile ad id, or IP address together with user agent.
  if (
    userData.em === undefined &&
    !(userData.client_ip_address !== undefined && userData.client_user_agent !== undefined)
  ) {
    return refuse('missing_identifiers', 'needs em, or client IP address with user agent');
  }

  const commerce = readCommerce(event);
  const ids = commerce.items.flatMap((item) => (item.id === undefined ? [] : [item.id]));
  const customData = compact({
    currency: commerce.currency,
    // Pinterest takes monetary values as strings.
    value: commerce.value === undefined ? undefined : String(commerce.value),
    content_ids: ids.length > 0 ? ids : undefined,
    contents:
      commerce.items.length > 0
        ? commerce.items.map((item) =>
            compact({
              id: item.id,
              item_name: item.name,
              item_category: item.category,
              item_brand: item.brand,
              item_price: item.price === undefined ? undefined : String(item.price),
              quantity: item.quantity,
            }),
          )
        : undefined,
    num_items: itemCount(commerce),
    order_id: commerce.transactionId,
    search_string: commerce.searchTerm,
    opt_out_type: settings.limitedDataProcessing ? 'LDP' : undefined,
  });
  const language = /^([a-z]{2})(?:[-_]|$)/i.exec(event.context.locale ?? '')?.[1]?.toLowerCase();
  return {
    ok: true,
    payload: compact({
      event_name: name.name,
      action_source: settings.actionSource,
      event_time: unixSeconds(eventTimeMs(event) ?? ctx.now),
      event_id: event.messageId,
      event_source_url: event.context.page?.url,
      user_data: userData,
      custom_data: Object.keys(customData).length > 0 ? customData : undefined,
      language,
    }),
  };
}

/** Per-event statuses of a 2xx answer (`events[i].status` is `processed` or `failed`). */
function perEvent(body: string, count: number): Verdict[] {
  const verdicts = shared(delivered, count);
  const parsed = parseJson(body);
  if (!isRecord(parsed) || !Array.isArray(parsed.events)) return verdicts;
  parsed.events.slice(0, count).forEach((entry: unknown, index) => {
    if (!isRecord(entry) || entry.status !== 'failed') return;
    const message = typeof entry.error_message === 'string' ? entry.error_message : 'failed';
    verdicts[index] = deadLetter('validation_failed', message);
  });
  return verdicts;
}

/**
 * A refused request (400, 422). When the answer lists every event (`events[i].status`, as a 2xx does), the
 * failed ones are dead-lettered. The others were kept when the answer says some were processed
 * (`num_events_processed` > 0: sending them again would count them twice), else they go again without the
 * failed ones (`resend`). When it names none, one event may still be at fault: the batch is halved until it
 * is alone (`bisect`), so one bad event does not take the good ones of its batch to the DLQ. A refusal of
 * the request itself (no half is ever taken) ends with every event dead-lettered, as before.
 */
function refused(body: string, count: number): Verdict[] {
  const parsed = parseJson(body);
  const events = isRecord(parsed) && Array.isArray(parsed.events) ? parsed.events : [];
  const processed =
    isRecord(parsed) && typeof parsed.num_events_processed === 'number' ? parsed.num_events_processed : 0;
  const failed = new Map<number, string>();
  if (events.length === count) {
    events.forEach((entry: unknown, index) => {
      if (!isRecord(entry) || entry.status !== 'failed') return;
      failed.set(index, typeof entry.error_message === 'string' ? entry.error_message : 'failed');
    });
  }
  if (failed.size === 0) return shared(bisect(deadLetter('validation_failed')), count);
  const others = processed > 0 ? delivered : resend;
  return Array.from({ length: count }, (_, index) => {
    const message = failed.get(index);
    return message === undefined ? others : deadLetter('validation_failed', message);
  });
}

export const pinterestCapi: VendorAdapter<PinterestSettings, PinterestCredentials> = {
  id: 'pinterest',
  displayName: 'Pinterest Conversions API',
  settingsSchema,
  credentialsSchema,
  piiProfile: () => 'pinterest',
  limits: () => ({
    maxBatchSize: 1000,
    maxBodyBytes: 4 * MIB,
    maxEventBytes: 64 * 1024,
    maxEventAgeMs: 7 * DAY_MS,
    maxFutureSkewMs: DEFAULT_FUTURE_SKEW_MS,
  }),
  prepare,
  buildRequest(batch, { settings, credentials }) {
    const base = settings.endpoint ?? 'https://api.pinterest.com';
    const url = `${base}/v5/ad_accounts/${settings.adAccountId}/events${settings.test ? '?test=true' : ''}`;
    return {
      url,
      logUrl: url,
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${credentials.accessToken}` },
      body: JSON.stringify({ data: batch.map((entry) => entry.payload) }),
    };
  },
  classify(result, batch, { now }) {
    if (result.type === 'network_error') return shared(classifyNetworkError(result.error), batch.length);
    if (result.ok) return perEvent(result.body, batch.length);
    if (result.status === 400 || result.status === 422) return refused(result.body, batch.length);
    return shared(classifyStatus(result, now), batch.length);
  },
};
