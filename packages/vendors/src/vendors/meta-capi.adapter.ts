import type { CanonicalEvent } from '@signal/events';
import type { VendorResponse } from '@signal/http';
import { z } from 'zod';
import type { AdapterContext, Payload, Preparation, VendorAdapter } from '../adapter';
import { fbcFromClickId, readClickIds } from '../canonical/click-ids';
import { itemCount, readCommerce } from '../canonical/commerce';
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
import { checkIp, list, piiValue, refuse } from '../guards';
import {
  bisect,
  type DeadLetterVerdict,
  deadLetter,
  delivered,
  type FinalVerdict,
  resend,
  retry,
  type Verdict,
} from '../outcome';
import {
  baseUrl,
  DAY_MS,
  DEFAULT_FUTURE_SKEW_MS,
  endpointSchema,
  eventMapSchema,
  MIB,
  secretSchema,
} from '../settings';

/**
 * Meta Conversions API: `POST https://graph.facebook.com/{version}/{pixel}/events`. The access token travels
 * in the JSON body (Graph accepts `access_token` as a body parameter), never in the URL.
 */

export const META_ACTION_SOURCES = [
  'website',
  'app',
  'email',
  'phone_call',
  'chat',
  'physical_store',
  'system_generated',
  'business_messaging',
  'other',
] as const;

const settingsSchema = z.strictObject({
  /** Dataset (pixel) id. */
  pixelId: z.string().regex(/^\d{1,32}$/, 'must be the numeric dataset (pixel) id'),
  apiVersion: z
    .string()
    .regex(/^v\d{1,3}\.\d{1,2}$/, 'must be a Graph API version such as v25.0')
    .default('v25.0'),
  actionSource: z.enum(META_ACTION_SOURCES).default('website'),
  /** Events Manager → Test events code; events then show there and are not used for ads. */
  testEventCode: z.string().min(1).max(64).optional(),
  eventMap: eventMapSchema.optional(),
  /** Send track events without a standard mapping as custom events under their own name. */
  sendCustomEvents: z.boolean().default(true),
  /** Limited Data Use (US state privacy laws), with Meta geolocating the person. */
  limitedDataUse: z.boolean().default(false),
  endpoint: endpointSchema.optional(),
});

const credentialsSchema = z.strictObject({
  /** System-user or dataset access token. */
  accessToken: secretSchema('accessToken'),
});

export type MetaSettings = z.output<typeof settingsSchema>;
export type MetaCredentials = z.output<typeof credentialsSchema>;

export const META_EVENT_NAMES: Readonly<Partial<Record<StandardEvent, string>>> = {
  page_view: 'PageView',
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

/** Meta custom event names: up to 40 letters, digits, spaces, `_` or `-`. */
const CUSTOM_EVENT = /^[A-Za-z0-9_ -]{1,40}$/;

/** Graph error codes (RudderStack's network handler, Graph error reference). */
const THROTTLE_CODES: ReadonlySet<number> = new Set([4, 17, 32, 613]);
const TRANSIENT_CODES: ReadonlySet<number> = new Set([1, 2, 341, 368]);
const AUTH_CODES: ReadonlySet<number> = new Set([3, 10, 102, 190]);

interface GraphError {
  readonly code: number;
  readonly subcode: number | undefined;
  /** Positions in the request's `data` that the error names (`$['data'][3]`, `error_data.event_index`). */
  readonly rows: ReadonlySet<number>;
}

/**
 * How Graph names an event of `data` in its texts: `$['data'][3]` (the business SDKs' "on param" messages),
 * `data[3]`, `events[3]`. `user_data[0]` or `contents[1]` are not events: the name must start a word.
 */
const NAMED_ROW = /\b(?:data|events?)["']?\]?\[(\d{1,6})\]/g;

function namedRows(error: Record<string, unknown>): Set<number> {
  const rows = new Set<number>();
  for (const key of ['message', 'error_user_title', 'error_user_msg']) {
    const text = error[key];
    if (typeof text !== 'string') continue;
    for (const [, index] of text.matchAll(NAMED_ROW)) rows.add(Number(index));
  }
  // Offline and server event uploads put the position in `error_data`, an object or a JSON string.
  const data = typeof error.error_data === 'string' ? parseJson(error.error_data) : error.error_data;
  if (isRecord(data) && typeof data.event_index === 'number' && Number.isInteger(data.event_index)) {
    rows.add(data.event_index);
  }
  return rows;
}

function graphError(body: string): GraphError | undefined {
  const parsed = parseJson(body);
  if (!isRecord(parsed) || !isRecord(parsed.error)) return undefined;
  const { code, error_subcode: subcode } = parsed.error;
  if (typeof code !== 'number') return undefined;
  return {
    code,
    subcode: typeof subcode === 'number' ? subcode : undefined,
    rows: namedRows(parsed.error),
  };
}

function graphVerdict(error: GraphError, response: VendorResponse, now: number): FinalVerdict | undefined {
  const detail = `Graph error ${error.code}${error.subcode === undefined ? '' : `/${error.subcode}`}`;
  const { code } = error;
  if (THROTTLE_CODES.has(code) || (code >= 80_000 && code <= 80_014)) {
    return retry('rate_limited', retryAfter(response, now), detail);
  }
  if (TRANSIENT_CODES.has(code)) return retry('vendor_unavailable', retryAfter(response, now), detail);
  // 190 invalid/expired token, 102 session, 10 and 200-299 permissions, 3 capability: a human must act.
  if (AUTH_CODES.has(code) || (code >= 200 && code <= 299)) return deadLetter('auth_failed', detail);
  if (code === 100) return deadLetter('validation_failed', detail);
  return undefined;
}

/** Graph 100 subcodes of the server-event checks (2804003 too old, 2804030 data processing options, …). */
const isServerEventSubcode = (subcode: number | undefined): boolean =>
  subcode !== undefined && subcode >= 2_804_000 && subcode <= 2_804_999;

/**
 * A 100 (invalid parameter) refuses the whole request and processes none of its events, even when one event
 * is at fault ("If any event_time in data is greater than 7 days in the past, we return an error for the
 * entire request and process no events"). When Graph names the events, only they are refused and the others go
 * again; when a server-event check names none, the batch is halved to find it. Other 100s (33: the dataset
 * does not exist) are about the request and refuse every event.
 */
function invalidParameter(error: GraphError, verdict: DeadLetterVerdict, count: number): Verdict[] {
  const named = [...error.rows].filter((row) => row < count);
  if (named.length > 0)
    return Array.from({ length: count }, (_, row) => (named.includes(row) ? verdict : resend));
  return shared(isServerEventSubcode(error.subcode) ? bisect(verdict) : verdict, count);
}

function prepare(event: CanonicalEvent, ctx: AdapterContext<MetaSettings, MetaCredentials>): Preparation {
  const { settings, normalizer } = ctx;
  const name = resolveEventName(event, {
    table: META_EVENT_NAMES,
    overrides: settings.eventMap,
    custom: settings.sendCustomEvents ? (raw) => (CUSTOM_EVENT.test(raw) ? raw : undefined) : undefined,
  });
  if (!name.ok) return { ok: false, kind: 'dropped', reason: name.reason, detail: name.detail };

  const ip = checkIp(event.context.ip);
  if (!ip.ok) return refuse(ip.reason, 'context.ip is not a bare IP address');

  const person = readPerson(event);
  const hints = countryHint(person);
  const clicks = readClickIds(event);
  const eventMs = eventTimeMs(event) ?? ctx.now;
  const field = (key: string, value: string | undefined) => piiValue(normalizer, key, value, hints);

  const userData = compact({
    em: list(field('em', person.email)),
    ph: list(field('ph', person.phone)),
    fn: field('fn', person.firstName),
    ln: field('ln', person.lastName),
    ge: field('ge', person.gender),
    db: field('db', person.birthday),
    ct: field('ct', person.city),
    st: field('st', person.state),
    zp: field('zp', person.postalCode),
    country: field('country', person.country),
    external_id: list(field('external_id', event.userId)),
    client_ip_address: field('client_ip_address', ip.ip),
    client_user_agent: field('client_user_agent', event.context.userAgent),
    fbc: field(
      'fbc',
      clicks.fbc ?? (clicks.fbclid === undefined ? undefined : fbcFromClickId(clicks.fbclid, eventMs)),
    ),
    fbp: field('fbp', clicks.fbp),
  });

  const url = event.context.page?.url;
  if (settings.actionSource === 'website') {
    if (userData.client_user_agent === undefined) {
      return refuse('missing_required_field', 'website events need the client user agent');
    }
    if (url === undefined || url === '') {
      return refuse('missing_required_field', 'website events need the page URL (event_source_url)');
    }
  }
  const matchable =
    userData.em !== undefined ||
    userData.ph !== undefined ||
    userData.external_id !== undefined ||
    userData.fbc !== undefined ||
    userData.fbp !== undefined ||
    (userData.client_ip_address !== undefined && userData.client_user_agent !== undefined);
  if (!matchable) {
    return refuse(
      'missing_identifiers',
      'needs one of em, ph, external_id, fbc, fbp, or client IP with user agent',
    );
  }

  const commerce = readCommerce(event);
  const ids = commerce.items.flatMap((item) => (item.id === undefined ? [] : [item.id]));
  const customData = compact({
    value: commerce.value,
    currency: commerce.currency === undefined ? undefined : field('currency', commerce.currency),
    content_ids: ids.length > 0 ? ids : undefined,
    contents:
      commerce.items.length > 0
        ? commerce.items.map((item) =>
            compact({ id: item.id, quantity: item.quantity, item_price: item.price }),
          )
        : undefined,
    content_type: commerce.items.length > 0 ? 'product' : undefined,
    num_items: itemCount(commerce),
    order_id: commerce.transactionId,
    search_string: commerce.searchTerm,
  });

  const payload: Payload = compact({
    event_name: name.name,
    event_time: unixSeconds(eventMs),
    event_id: event.messageId,
    action_source: settings.actionSource,
    event_source_url: url,
    referrer_url: event.context.page?.referrer,
    user_data: userData,
    custom_data: Object.keys(customData).length > 0 ? customData : undefined,
    ...(settings.limitedDataUse
      ? {
          data_processing_options: ['LDU'],
          data_processing_options_country: 0,
          data_processing_options_state: 0,
        }
      : {}),
  });
  return { ok: true, payload };
}

type MetaAdapter = VendorAdapter<MetaSettings, MetaCredentials>;

export const metaCapi: MetaAdapter = {
  id: 'meta',
  displayName: 'Meta Conversions API',
  settingsSchema,
  credentialsSchema,
  piiProfile: () => 'meta',
  limits: (settings) => ({
    maxBatchSize: 1000,
    maxBodyBytes: 4 * MIB,
    maxEventBytes: 64 * 1024,
    // Graph error 100/2804003 past this: 7 days, 62 for physical_store.
    maxEventAgeMs: (settings.actionSource === 'physical_store' ? 62 : 7) * DAY_MS,
    maxFutureSkewMs: DEFAULT_FUTURE_SKEW_MS,
  }),
  prepare,
  buildRequest(batch, { settings, credentials }) {
    const url = `${baseUrl(settings.endpoint, 'https://graph.facebook.com')}/${settings.apiVersion}/${settings.pixelId}/events`;
    const body = compact({
      data: batch.map((entry) => entry.payload),
      test_event_code: settings.testEventCode,
      access_token: credentials.accessToken,
    });
    return {
      url,
      logUrl: url,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    };
  },
  classify(result, batch, { now }) {
    if (result.type === 'network_error') return shared(classifyNetworkError(result.error), batch.length);
    if (result.ok) return shared(delivered, batch.length);
    const error = graphError(result.body);
    const verdict =
      (error === undefined ? undefined : graphVerdict(error, result, now)) ?? classifyStatus(result, now);
    if (error?.code === 100 && verdict.kind === 'dead_letter') {
      return invalidParameter(error, verdict, batch.length);
    }
    return shared(verdict, batch.length);
  },
};
