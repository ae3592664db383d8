import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIntegration, ga4Mp, googleAds } from '../src/index';
import { now, purchase } from './fixtures';
import { clear, hashed, recordingLogger, sha256 } from './helpers';
import { createTlsHarness, type TlsHarness, type VendorSink } from './vendor-sink';

const API_SECRET = 'ga4-api-secret-XyZ0123456';
const ACCESS_TOKEN = 'ya29.a0AfH6SM-google-access-token';
const DEVELOPER_TOKEN = 'dev-token-0123456789abc';
const EVENT_MS = Date.parse('2026-11-20T11:58:00Z');
let tls: TlsHarness;
let sink: VendorSink;

beforeAll(async () => {
  tls = await createTlsHarness();
  sink = await tls.startSink();
});
afterAll(() => tls.close());

const g = (field: string, value: string) => hashed('google', field, value);
const gClear = (field: string, value: string) => clear('google', field, value);

function ga4(settings: Record<string, unknown> = {}) {
  return createIntegration(ga4Mp, {
    settings: { measurementId: 'G-TEST1234', endpoint: sink.origin, ...settings },
    credentials: { apiSecret: API_SECRET },
  });
}

function ads(settings: Record<string, unknown> = {}) {
  return createIntegration(googleAds, {
    settings: {
      customerId: '123-456-7890',
      loginCustomerId: '111-222-3333',
      conversionActions: { purchase: '987654321' },
      endpoint: sink.origin,
      ...settings,
    },
    credentials: { accessToken: ACCESS_TOKEN, developerToken: DEVELOPER_TOKEN },
  });
}

describe('GA4 Measurement Protocol request', () => {
  it('sends a purchase with the GA client id, hashed user_data, consent and the message id', async () => {
    sink.reply(() => ({ status: 204 }));
    const logger = recordingLogger();
    const report = await ga4().deliver([purchase()], {
      transport: { dispatcher: tls.dispatcher },
      now,
      logger,
    });

    expect(report.outcomes).toEqual([{ kind: 'delivered', messageId: 'msg-0001' }]);
    const [request] = sink.requests;
    expect(request?.url).toBe(`/mp/collect?measurement_id=G-TEST1234&api_secret=${API_SECRET}`);
    expect(sink.json()).toEqual({
      client_id: '1234567890.1763000000',
      user_id: 'User-42',
      consent: { ad_user_data: 'GRANTED' },
      user_data: {
        sha256_email_address: [g('email', '  John.Smith@Gmail.com ')],
        sha256_phone_number: [g('phone_number', '+44 7700 900123')],
        address: [
          {
            sha256_first_name: g('first_name', 'John'),
            sha256_last_name: g('last_name', "O'Smith"),
            sha256_street: g('street', '1 Main Street'),
            city: gClear('city', 'London'),
            region: gClear('region', 'England'),
            postal_code: 'SW1A 1AA',
            country: 'GB',
          },
        ],
      },
      events: [
        {
          name: 'purchase',
          timestamp_micros: EVENT_MS * 1000,
          params: {
            transaction_id: 'T-1001',
            value: 129.9,
            currency: 'EUR',
            items: [
              {
                item_id: 'SKU-1',
                item_name: 'Trail shoe',
                item_category: 'Shoes',
                price: 59.95,
                quantity: 2,
              },
              { item_id: 'SKU-2', item_name: 'Socks', price: 10, quantity: 1 },
            ],
            page_location: 'https://shop.example/checkout/done',
            page_referrer: 'https://shop.example/cart',
            event_id: 'msg-0001',
          },
        },
      ],
    });
    // Google's documented e-mail rule drops the dots of a Gmail local part; phone numbers are E.164.
    const body = sink.json() as {
      user_data: { sha256_email_address: string[]; sha256_phone_number: string[] };
    };
    expect(body.user_data.sha256_email_address).toEqual([sha256('johnsmith@gmail.com')]);
    expect(body.user_data.sha256_phone_number).toEqual([sha256('+447700900123')]);
    // The API secret can only travel in the query string; logs see the redacted URL.
    const logged = JSON.stringify(logger.lines);
    expect(logged).toContain('api_secret=[redacted]');
    expect(logged).not.toContain(API_SECRET);
  });

  it('uses the message id as transaction_id when the site sent none, and the anonymous id without _ga', async () => {
    sink.reply(() => ({ status: 204 }));
    const event = purchase((e) => {
      delete e.properties.transaction_id;
      e.context.clickIds = {};
    });
    await ga4().deliver([event], { transport: { dispatcher: tls.dispatcher }, now });
    const body = sink.json() as { client_id: string; events: Array<{ params: { transaction_id: string } }> };
    expect(body.client_id).toBe('anon-7f3a');
    expect(body.events[0]?.params.transaction_id).toBe('msg-0001');
  });

  it('sends no user data when ad_user_data is denied', async () => {
    sink.reply(() => ({ status: 204 }));
    const event = purchase((e) => {
      e.context.consent = { categories: { marketing: false, personalization: false } };
    });
    await ga4().deliver([event], { transport: { dispatcher: tls.dispatcher }, now });
    const body = sink.json() as Record<string, unknown>;
    expect(body.consent).toEqual({ ad_user_data: 'DENIED', ad_personalization: 'DENIED' });
    expect(body.user_data).toBeUndefined();
    expect(sink.requests[0]?.body).not.toContain(g('email', 'John.Smith@Gmail.com'));
  });

  it('puts only one client in a request: events are grouped by client, 25 at most', async () => {
    sink.reply(() => ({ status: 204 }));
    const events = Array.from({ length: 30 }, (_, i) =>
      purchase((e) => {
        e.messageId = `m-${i}`;
        e.anonymousId = i % 2 === 0 ? 'visitor-a' : 'visitor-b';
        e.context.clickIds = {};
      }),
    );
    const report = await ga4().deliver(events, { transport: { dispatcher: tls.dispatcher }, now });
    expect(report.outcomes.every((o) => o.kind === 'delivered')).toBe(true);
    const bodies = sink.requests.map(
      (r) => JSON.parse(r.body) as { client_id: string; events: Array<{ params: { event_id: string } }> },
    );
    expect(bodies.map((b) => [b.client_id, b.events.length])).toEqual([
      ['visitor-a', 15],
      ['visitor-b', 15],
    ]);
    expect(bodies[0]?.events.map((e) => e.params.event_id).slice(0, 3)).toEqual(['m-0', 'm-2', 'm-4']);
  });

  it('sends to the validation server in validate mode and dead-letters what it reports', async () => {
    sink.reply(() => ({
      status: 200,
      body: {
        validationMessages: [
          { fieldPath: 'events[0].params.currency', description: 'bad', validationCode: 'VALUE_INVALID' },
        ],
      },
    }));
    const report = await ga4({ validate: true }).deliver([purchase()], {
      transport: { dispatcher: tls.dispatcher },
      now,
    });
    expect(sink.requests[0]?.url.startsWith('/debug/mp/collect?')).toBe(true);
    expect(report.outcomes[0]).toMatchObject({
      kind: 'dead_letter',
      reason: 'validation_failed',
      detail: 'VALUE_INVALID at events[0].params.currency',
    });
  });
});

describe('Google Ads conversion upload request', () => {
  const userIdentifiers = () => [
    { hashedEmail: g('email', 'John.Smith@Gmail.com'), userIdentifierSource: 'FIRST_PARTY' },
    { hashedPhoneNumber: g('phone_number', '+44 7700 900123'), userIdentifierSource: 'FIRST_PARTY' },
    {
      addressInfo: {
        hashedFirstName: g('first_name', 'John'),
        hashedLastName: g('last_name', "O'Smith"),
        hashedStreetAddress: g('street', '1 Main Street'),
        city: gClear('city', 'London'),
        state: gClear('region', 'England'),
        countryCode: 'GB',
        postalCode: 'SW1A 1AA',
      },
      userIdentifierSource: 'FIRST_PARTY',
    },
  ];

  it('uploads a click conversion with gclid, hashed identifiers and consent', async () => {
    sink.reply(() => ({ status: 200, body: { results: [{}] } }));
    const report = await ads().deliver([purchase()], { transport: { dispatcher: tls.dispatcher }, now });

    expect(report.outcomes).toEqual([{ kind: 'delivered', messageId: 'msg-0001' }]);
    const [request] = sink.requests;
    expect(request?.url).toBe('/v25/customers/1234567890:uploadClickConversions');
    expect(request?.headers.authorization).toBe(`Bearer ${ACCESS_TOKEN}`);
    expect(request?.headers['developer-token']).toBe(DEVELOPER_TOKEN);
    expect(request?.headers['login-customer-id']).toBe('1112223333');
    expect(sink.json()).toEqual({
      conversions: [
        {
          conversionAction: 'customers/1234567890/conversionActions/987654321',
          conversionDateTime: '2026-11-20 11:58:00+00:00',
          conversionValue: 129.9,
          currencyCode: 'EUR',
          orderId: 'T-1001',
          gclid: 'Cj0KCQiA-gclid',
          userIdentifiers: userIdentifiers(),
          consent: { adUserData: 'GRANTED' },
        },
      ],
      partialFailure: true,
    });
  });

  it('uploads an ENHANCEMENT adjustment joined on the order id', async () => {
    sink.reply(() => ({ status: 200, body: { results: [{}] } }));
    await ads({ mode: 'enhancements', validateOnly: true }).deliver([purchase()], {
      transport: { dispatcher: tls.dispatcher },
      now,
    });
    expect(sink.requests[0]?.url).toBe('/v25/customers/1234567890:uploadConversionAdjustments');
    expect(sink.json()).toEqual({
      conversionAdjustments: [
        {
          conversionAction: 'customers/1234567890/conversionActions/987654321',
          adjustmentType: 'ENHANCEMENT',
          orderId: 'T-1001',
          userIdentifiers: userIdentifiers(),
          userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0',
          gclidDateTimePair: { gclid: 'Cj0KCQiA-gclid', conversionDateTime: '2026-11-20 11:58:00+00:00' },
        },
      ],
      partialFailure: true,
      validateOnly: true,
    });
  });

  it('drops events with no conversion action, and enhancements whose ad_user_data is denied', async () => {
    sink.reply(() => ({ status: 200, body: {} }));
    const cart = purchase((e) => {
      e.event = 'add_to_cart';
    });
    const denied = purchase((e) => {
      e.messageId = 'denied';
      e.context.consent = { categories: { marketing: false } };
    });
    const report = await ads({ mode: 'enhancements' }).deliver([cart, denied], {
      transport: { dispatcher: tls.dispatcher },
      now,
    });
    expect(report.outcomes.map((o) => [o.kind, o.kind === 'delivered' ? '' : o.reason])).toEqual([
      ['dropped', 'unmapped_event'],
      ['dropped', 'consent_denied'],
    ]);
    expect(sink.requests).toHaveLength(0);
  });
});
