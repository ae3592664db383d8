import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIntegration, metaCapi } from '../src/index';
import { now, purchase } from './fixtures';
import { hashed, sha256 } from './helpers';
import { createTlsHarness, type TlsHarness, type VendorSink } from './vendor-sink';

const TOKEN = 'EAAGm0PX4ZCpsBAMetaToken0123456789';
let tls: TlsHarness;
let sink: VendorSink;

beforeAll(async () => {
  tls = await createTlsHarness();
  sink = await tls.startSink();
});
afterAll(() => tls.close());

function meta(settings: Record<string, unknown> = {}) {
  return createIntegration(metaCapi, {
    settings: { pixelId: '1234567890', endpoint: sink.origin, ...settings },
    credentials: { accessToken: TOKEN },
  });
}

const meta_ = (field: string, value: string) => hashed('meta', field, value);

describe('Meta Conversions API request', () => {
  it('sends a purchase with hashed PII, clear IP/UA/click ids and the message id as event_id', async () => {
    sink.reply(() => ({ status: 200, body: { events_received: 1, messages: [], fbtrace_id: 'AbC' } }));
    const report = await meta({ testEventCode: 'TEST4711' }).deliver([purchase()], {
      transport: { dispatcher: tls.dispatcher },
      now,
    });

    expect(report.outcomes).toEqual([{ kind: 'delivered', messageId: 'msg-0001' }]);
    expect(report.requests).toHaveLength(1);
    const [request] = sink.requests;
    expect(request?.method).toBe('POST');
    // The token travels in the body, never in the URL.
    expect(request?.url).toBe('/v25.0/1234567890/events');
    expect(request?.headers['content-type']).toBe('application/json');
    expect(sink.json()).toEqual({
      data: [
        {
          event_name: 'Purchase',
          event_time: Date.parse('2026-11-20T11:58:00Z') / 1000,
          event_id: 'msg-0001',
          action_source: 'website',
          event_source_url: 'https://shop.example/checkout/done',
          referrer_url: 'https://shop.example/cart',
          user_data: {
            em: [meta_('em', '  John.Smith@Gmail.com ')],
            ph: [meta_('ph', '+44 7700 900123')],
            fn: meta_('fn', 'John'),
            ln: meta_('ln', "O'Smith"),
            ge: meta_('ge', 'male'),
            db: meta_('db', '1990-05-08'),
            ct: meta_('ct', 'London'),
            st: meta_('st', 'England'),
            zp: meta_('zp', 'SW1A 1AA'),
            country: meta_('country', 'GB'),
            external_id: [meta_('external_id', 'User-42')],
            client_ip_address: '203.0.113.7',
            client_user_agent: 'Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0',
            fbc: 'fb.1.1763640000000.IwAR2fbclid',
            fbp: 'fb.1.1763000000000.1234567890',
          },
          custom_data: {
            value: 129.9,
            currency: 'eur',
            content_ids: ['SKU-1', 'SKU-2'],
            contents: [
              { id: 'SKU-1', quantity: 2, item_price: 59.95 },
              { id: 'SKU-2', quantity: 1, item_price: 10 },
            ],
            content_type: 'product',
            num_items: 3,
            order_id: 'T-1001',
          },
        },
      ],
      test_event_code: 'TEST4711',
      access_token: TOKEN,
    });
  });

  it('hashes exactly what Meta normalises (independent of @signal/pii)', async () => {
    sink.reply(() => ({ status: 200, body: { events_received: 1 } }));
    await meta().deliver([purchase()], { transport: { dispatcher: tls.dispatcher }, now });
    const body = sink.json() as { data: Array<{ user_data: Record<string, unknown> }> };
    const user = body.data[0]?.user_data;
    expect(user?.em).toEqual([sha256('john.smith@gmail.com')]);
    expect(user?.ph).toEqual([sha256('447700900123')]);
    expect(user?.ln).toBe(sha256('osmith'));
    expect(user?.db).toBe(sha256('19900508'));
    expect(user?.external_id).toEqual([sha256('user-42')]);
    // No clear PII anywhere in the request.
    for (const clear of ['John.Smith', 'john.smith', '7700 900123', 'SW1A', 'London']) {
      expect(sink.requests[0]?.body).not.toContain(clear);
    }
  });

  it('passes identifiers the Org Data Layer already hashed through unchanged', async () => {
    sink.reply(() => ({ status: 200, body: {} }));
    const digest = sha256('someone@example.com');
    await meta().deliver(
      [
        purchase((e) => {
          e.traits.email = digest.toUpperCase();
        }),
      ],
      { transport: { dispatcher: tls.dispatcher }, now },
    );
    const body = sink.json() as { data: Array<{ user_data: { em: string[] } }> };
    expect(body.data[0]?.user_data.em).toEqual([digest]);
  });

  it('maps GA4, Segment and Meta names to Meta standard events and keeps custom names', async () => {
    sink.reply(() => ({ status: 200, body: {} }));
    const names = [
      'add_to_cart',
      'Checkout Started',
      'ViewContent',
      'generate_lead',
      'sign_up',
      'Quote Requested',
    ];
    const events = names.map((name, i) =>
      purchase((e) => {
        e.event = name;
        e.messageId = `m-${i}`;
      }),
    );
    const page = purchase((e) => {
      e.type = 'page';
      delete e.event;
      e.messageId = 'm-page';
    });
    const identify = purchase((e) => {
      e.type = 'identify';
      delete e.event;
      e.messageId = 'm-identify';
    });
    const report = await meta().deliver([...events, page, identify], {
      transport: { dispatcher: tls.dispatcher },
      now,
    });
    const body = sink.json() as { data: Array<{ event_name: string; event_id: string }> };
    expect(body.data.map((row) => [row.event_id, row.event_name])).toEqual([
      ['m-0', 'AddToCart'],
      ['m-1', 'InitiateCheckout'],
      ['m-2', 'ViewContent'],
      ['m-3', 'Lead'],
      ['m-4', 'CompleteRegistration'],
      ['m-5', 'Quote Requested'],
      ['m-page', 'PageView'],
    ]);
    expect(report.outcomes.at(-1)).toEqual({
      kind: 'dropped',
      messageId: 'm-identify',
      reason: 'unsupported_event_type',
      detail: 'identify calls are not sent to this vendor',
    });
  });

  it('builds fbc from a landing-page fbclid when no _fbc cookie was read', async () => {
    sink.reply(() => ({ status: 200, body: {} }));
    const event = purchase((e) => {
      e.context.clickIds = { fbclid: 'IwAR-landing' };
    });
    await meta().deliver([event], { transport: { dispatcher: tls.dispatcher }, now });
    const body = sink.json() as { data: Array<{ user_data: { fbc?: string; fbp?: string } }> };
    expect(body.data[0]?.user_data.fbc).toBe(`fb.1.${Date.parse('2026-11-20T11:58:00Z')}.IwAR-landing`);
    expect(body.data[0]?.user_data.fbp).toBeUndefined();
  });

  it('sends Limited Data Use flags when configured', async () => {
    sink.reply(() => ({ status: 200, body: {} }));
    await meta({ limitedDataUse: true }).deliver([purchase()], {
      transport: { dispatcher: tls.dispatcher },
      now,
    });
    const body = sink.json() as { data: Array<Record<string, unknown>> };
    expect(body.data[0]).toMatchObject({
      data_processing_options: ['LDU'],
      data_processing_options_country: 0,
      data_processing_options_state: 0,
    });
  });
});
