import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIntegration, pinterestCapi } from '../src/index';
import { now, purchase } from './fixtures';
import { hashed } from './helpers';
import { createTlsHarness, type TlsHarness, type VendorSink } from './vendor-sink';

const TOKEN = 'pina_conversion-token-0123456789';
let tls: TlsHarness;
let sink: VendorSink;

beforeAll(async () => {
  tls = await createTlsHarness();
  sink = await tls.startSink();
});
afterAll(() => tls.close());

function pinterest(settings: Record<string, unknown> = {}) {
  return createIntegration(pinterestCapi, {
    settings: { adAccountId: '549755885175', endpoint: sink.origin, ...settings },
    credentials: { accessToken: TOKEN },
  });
}

const p = (field: string, value: string) => [hashed('pinterest', field, value)];

describe('Pinterest Conversions API request', () => {
  it('sends a checkout with every hashed field as an array and values as strings', async () => {
    sink.reply(() => ({
      status: 200,
      body: { num_events_received: 1, num_events_processed: 1, events: [{ status: 'processed' }] },
    }));
    const report = await pinterest({ test: true }).deliver([purchase()], {
      transport: { dispatcher: tls.dispatcher },
      now,
    });

    expect(report.outcomes).toEqual([{ kind: 'delivered', messageId: 'msg-0001' }]);
    const [request] = sink.requests;
    expect(request?.url).toBe('/v5/ad_accounts/549755885175/events?test=true');
    expect(request?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(sink.json()).toEqual({
      data: [
        {
          event_name: 'checkout',
          action_source: 'web',
          event_time: Date.parse('2026-11-20T11:58:00Z') / 1000,
          event_id: 'msg-0001',
          event_source_url: 'https://shop.example/checkout/done',
          user_data: {
            em: p('em', 'John.Smith@Gmail.com'),
            ph: p('ph', '+44 7700 900123'),
            fn: p('fn', 'John'),
            ln: p('ln', "O'Smith"),
            ge: p('ge', 'male'),
            db: p('db', '1990-05-08'),
            ct: p('ct', 'London'),
            st: p('st', 'England'),
            zp: p('zp', 'SW1A 1AA'),
            country: p('country', 'GB'),
            external_id: p('external_id', 'User-42'),
            client_ip_address: '203.0.113.7',
            client_user_agent: 'Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0',
            click_id: 'pinterest-epik',
          },
          custom_data: {
            currency: 'EUR',
            value: '129.9',
            content_ids: ['SKU-1', 'SKU-2'],
            contents: [
              {
                id: 'SKU-1',
                item_name: 'Trail shoe',
                item_category: 'Shoes',
                item_price: '59.95',
                quantity: 2,
              },
              { id: 'SKU-2', item_name: 'Socks', item_price: '10', quantity: 1 },
            ],
            num_items: 3,
            order_id: 'T-1001',
          },
          language: 'en',
        },
      ],
    });
  });

  it('maps page views, searches and sign-ups, and sends unmapped events as custom', async () => {
    sink.reply(() => ({ status: 200, body: { events: [] } }));
    const names = ['search', 'sign_up', 'generate_lead', 'Newsletter Opened'];
    const events = names.map((name, i) =>
      purchase((e) => {
        e.event = name;
        e.messageId = `m-${i}`;
      }),
    );
    const page = purchase((e) => {
      e.type = 'page';
      delete e.event;
    });
    await pinterest().deliver([...events, page], { transport: { dispatcher: tls.dispatcher }, now });
    const body = sink.json() as { data: Array<{ event_name: string }> };
    expect(body.data.map((row) => row.event_name)).toEqual([
      'search',
      'signup',
      'lead',
      'custom',
      'page_visit',
    ]);
  });
});
