import type { CanonicalEvent } from '@signal/events';
import { z } from 'zod';
import type { AdapterContext, Payload, Preparation, VendorAdapter } from '../adapter';
import { readClickIds } from '../canonical/click-ids';
import { readCommerce } from '../canonical/commerce';
import { resolveEventName, STANDARD_EVENTS, type StandardEvent } from '../canonical/event-name';
import { countryHint, readPerson } from '../canonical/person';
import { eventTimeMs } from '../canonical/time';
import { classifyNetworkError, classifyStatus, isRecord, parseJson, shared } from '../classify-http';
import { compact } from '../compact';
import { list, piiValue, refuse } from '../guards';
import { deadLetter, type Verdict } from '../outcome';
import { DEFAULT_FUTURE_SKEW_MS, endpointSchema, eventMapSchema, HOUR_MS, secretSchema } from '../settings';

/**
 * GA4 Measurement Protocol (web streams): `POST https://www.google-analytics.com/mp/collect?measurement_id=…
 * &api_secret=…`. MP has no other way to pass the API secret than the query string, so the request carries a
 * redacted `logUrl` for logs. Production answers 2xx even for invalid payloads; `validate: true` sends to
 * `/debug/mp/collect`, which records nothing and returns `validationMessages`.
 */

const settingsSchema = z.strictObject({
  measurementId: z.string().regex(/^G-[A-Z0-9]{4,20}$/, 'must be a GA4 measurement id such as G-ABC123XYZ'),
  /** `eu` collects through region1.google-analytics.com (EU data residency of collection). */
  region: z.enum(['global', 'eu']).default('global'),
  /** Send to the validation server instead (nothing is recorded). */
  validate: z.boolean().default(false),
  eventMap: eventMapSchema.optional(),
  /** Send track events without a standard mapping under their own name, when it is a valid GA4 name. */
  sendCustomEvents: z.boolean().default(true),
  /** Send hashed e-mail / phone / address as `user_data` (user-provided data collection must be on in GA4). */
  sendUserData: z.boolean().default(true),
  endpoint: endpointSchema.optional(),
});

const credentialsSchema = z.strictObject({
  /** Measurement Protocol API secret of the data stream. */
  apiSecret: secretSchema('apiSecret'),
});

export type Ga4Settings = z.output<typeof settingsSchema>;
export type Ga4Credentials = z.output<typeof credentialsSchema>;

/** GA4 event names: a letter, then letters, digits or `_`, at most 40; reserved prefixes refused. */
const GA4_NAME = /^[A-Za-z][A-Za-z0-9_]{0,39}$/;
const RESERVED_PREFIX = /^(google_|ga_|firebase_)/i;
/** Parameter values are cut at 100 characters (page_location and page_referrer at 1000). */
const MAX_PARAM = 100;
const MAX_URL_PARAM = 1000;

const GA4_EVENT_NAMES: Readonly<Partial<Record<StandardEvent, string>>> = Object.fromEntries(
  STANDARD_EVENTS.map((name) => [name, name]),
);

function cut(value: string | undefined, max: number): string | undefined {
  return value === undefined ? undefined : value.slice(0, max);
}

function consentState(value: boolean | undefined): 'GRANTED' | 'DENIED' | undefined {
  return value === undefined ? undefined : value ? 'GRANTED' : 'DENIED';
}

function prepare(event: CanonicalEvent, ctx: AdapterContext<Ga4Settings, Ga4Credentials>): Preparation {
  const { settings, normalizer } = ctx;
  const name = resolveEventName(event, {
    table: GA4_EVENT_NAMES,
    overrides: settings.eventMap,
    custom: settings.sendCustomEvents
      ? (raw) => (GA4_NAME.test(raw) && !RESERVED_PREFIX.test(raw) ? raw : undefined)
      : undefined,
  });
  if (!name.ok) return { ok: false, kind: 'dropped', reason: name.reason, detail: name.detail };

  // The client id must be the one the site's GA tag set (`_ga` cookie) to join the browser session; the
  // first-party anonymous id is the fallback. A user id alone is not a client id.
  const clientId = readClickIds(event).gaClientId ?? event.anonymousId;
  if (clientId === undefined)
    return refuse('missing_identifiers', 'needs a client id (_ga cookie or anonymousId)');

  const categories = event.context.consent.categories;
  const consent = compact({
    ad_user_data: consentState(categories?.marketing),
    ad_personalization: consentState(categories?.personalization),
  });

  // Google: with ad_user_data denied, no user-provided data is sent at all.
  let userData: Payload | undefined;
  if (settings.sendUserData && consent.ad_user_data !== 'DENIED') {
    const person = readPerson(event);
    const hints = countryHint(person);
    const field = (key: string, value: string | undefined) => piiValue(normalizer, key, value, hints);
    const address = compact({
      sha256_first_name: field('first_name', person.firstName),
      sha256_last_name: field('last_name', person.lastName),
      sha256_street: field('street', person.street),
      city: field('city', person.city),
      region: field('region', person.state),
      postal_code: field('postal_code', person.postalCode),
      country: field('country', person.country),
    });
    const data = compact({
      sha256_email_address: list(field('email', person.email)),
      sha256_phone_number: list(field('phone_number', person.phone)),
      address: Object.keys(address).length > 0 ? [address] : undefined,
    });
    if (Object.keys(data).length > 0) userData = data;
  }

  const commerce = readCommerce(event);
  const page = event.context.page;
  const isTransaction = name.standard === 'purchase' || name.standard === 'refund';
  const params = compact({
    // Purchases dedup on transaction_id; the message id stands in when the site sent none.
    transaction_id: cut(
      isTransaction ? (commerce.transactionId ?? event.messageId) : commerce.transactionId,
      MAX_PARAM,
    ),
    value: commerce.value,
    currency: commerce.currency,
    tax: commerce.tax,
    shipping: commerce.shipping,
    coupon: cut(commerce.coupon, MAX_PARAM),
    search_term: cut(commerce.searchTerm, MAX_PARAM),
    items:
      commerce.items.length > 0
        ? commerce.items.map((item) =>
            compact({
              item_id: cut(item.id, MAX_PARAM),
              item_name: cut(item.name, MAX_PARAM),
              item_brand: cut(item.brand, MAX_PARAM),
              item_category: cut(item.category, MAX_PARAM),
              item_variant: cut(item.variant, MAX_PARAM),
              price: item.price,
              quantity: item.quantity,
            }),
          )
        : undefined,
    page_location: cut(page?.url, MAX_URL_PARAM),
    page_referrer: cut(page?.referrer, MAX_URL_PARAM),
    page_title: cut(page?.title, MAX_PARAM),
    session_id:
      typeof event.properties.session_id === 'string'
        ? cut(event.properties.session_id, MAX_PARAM)
        : undefined,
    event_id: event.messageId,
  });

  const request = compact({
    client_id: clientId,
    user_id: event.userId,
    consent: Object.keys(consent).length > 0 ? consent : undefined,
    user_data: userData,
  });
  const eventMs = eventTimeMs(event) ?? ctx.now;
  return {
    ok: true,
    payload: { request, event: { name: name.name, timestamp_micros: eventMs * 1000, params } },
    // One request speaks for one client: only its events share it.
    batchKey: JSON.stringify(request),
  };
}

function validationVerdict(body: string): Verdict | undefined {
  const parsed = parseJson(body);
  if (!isRecord(parsed) || !Array.isArray(parsed.validationMessages)) return undefined;
  const first = parsed.validationMessages.find(isRecord);
  if (first === undefined) return undefined;
  const code = typeof first.validationCode === 'string' ? first.validationCode : 'VALUE_INVALID';
  const path = typeof first.fieldPath === 'string' ? ` at ${first.fieldPath}` : '';
  return deadLetter('validation_failed', `${code}${path}`);
}

export const ga4Mp: VendorAdapter<Ga4Settings, Ga4Credentials> = {
  id: 'ga4',
  displayName: 'Google Analytics 4 Measurement Protocol',
  settingsSchema,
  credentialsSchema,
  piiProfile: () => 'google',
  limits: () => ({
    maxBatchSize: 25,
    maxBodyBytes: 130_000,
    maxEventBytes: 64 * 1024,
    maxEventAgeMs: 72 * HOUR_MS,
    maxFutureSkewMs: DEFAULT_FUTURE_SKEW_MS,
  }),
  prepare,
  buildRequest(batch, { settings, credentials }) {
    const host =
      settings.endpoint ??
      (settings.region === 'eu'
        ? 'https://region1.google-analytics.com'
        : 'https://www.google-analytics.com');
    const path = settings.validate ? '/debug/mp/collect' : '/mp/collect';
    const query = (secret: string) =>
      `measurement_id=${encodeURIComponent(settings.measurementId)}&api_secret=${secret}`;
    const first = batch[0]?.payload.request;
    const body = {
      ...(isRecord(first) ? first : {}),
      events: batch.map((entry) => entry.payload.event),
    };
    return {
      url: `${host}${path}?${query(encodeURIComponent(credentials.apiSecret))}`,
      logUrl: `${host}${path}?${query('[redacted]')}`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    };
  },
  classify(result, batch, { now, settings }) {
    if (result.type === 'network_error') return shared(classifyNetworkError(result.error), batch.length);
    if (result.ok && settings.validate) {
      const invalid = validationVerdict(result.body);
      if (invalid !== undefined) return shared(invalid, batch.length);
    }
    return shared(classifyStatus(result, now), batch.length);
  },
};
