import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIntegration, tiktokEvents } from '../src/index';
import { now, purchase } from './fixtures';
import { hashed, sha256 } from './helpers';
import { createTlsHarness, type TlsHarness, type VendorSink } from './vendor-sink';

const TOKEN = 'tiktok-events-api-token-0123456789';
let tls: TlsHarness;
let sink: VendorSink;

beforeAll(async () => {
  tls = await createTlsHarness();
  sink = await tls.startSink();
});
afterAll(() => tls.close());

function tiktok(settings: Record<string, unknown> = {}) {
  return createIntegration(tiktokEvents, {
    settings: { pixelCode: 'CABCDEF1234567890', endpoint: sink.origin, ...settings },
    credentials: { accessToken: TOKEN },
  });
}

describe('TikTok Events API request', () => {
  it('sends a purchase with hashed email/phone/external_id, clear IP/UA/click ids, event_id = message id', async () => {
    sink.reply(() => ({ status: 200, body: { code: 0, message: 'OK', request_id: 'r1' } }));
    const report = await tiktok({ testEventCode: 'TEST77', limitedDataUse: true }).deliver([purchase()], {
      transport: { dispatcher: tls.dispatcher },
      now,
    });

    expect(report.outcomes).toEqual([{ kind: 'delivered', messageId: 'msg-0001' }]);
    const [request] = sink.requests;
    expect(request?.url).toBe('/open_api/v1.3/event/track/');
    expect(request?.headers['access-token']).toBe(TOKEN);
    expect(sink.json()).toEqual({
      event_source: 'web',
      event_source_id: 'CABCDEF1234567890',
      test_event_code: 'TEST77',
      data: [
        {
          event: 'Purchase',
          event_time: Date.parse('2026-11-20T11:58:00Z') / 1000,
          event_id: 'msg-0001',
          user: {
            email: hashed('tiktok', 'email', 'John.Smith@Gmail.com'),
            phone: hashed('tiktok', 'phone', '+44 7700 900123'),
            external_id: hashed('tiktok', 'external_id', 'User-42'),
            ttclid: 'E.C.P.ttclid-value',
            ttp: 'ttp-cookie-value',
            ip: '203.0.113.7',
            user_agent: 'Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0',
            locale: 'en-GB',
          },
          page: { url: 'https://shop.example/checkout/done', referrer: 'https://shop.example/cart' },
          properties: {
            currency: 'EUR',
            value: 129.9,
            contents: [
              {
                content_id: 'SKU-1',
                content_name: 'Trail shoe',
                content_category: 'Shoes',
                price: 59.95,
                quantity: 2,
              },
              { content_id: 'SKU-2', content_name: 'Socks', price: 10, quantity: 1 },
            ],
            content_type: 'product',
            order_id: 'T-1001',
          },
          limited_data_use: true,
        },
      ],
    });
    const body = sink.json() as { data: Array<{ user: { email: string; phone: string } }> };
    expect(body.data[0]?.user.email).toBe(sha256('john.smith@gmail.com'));
    expect(body.data[0]?.user.phone).toBe(sha256('+447700900123'));
  });

  it('maps standard events, honours an eventMap override and drops page calls that are not mapped', async () => {
    sink.reply(() => ({ status: 200, body: { code: 0 } }));
    const names = ['add_to_cart', 'begin_checkout', 'view_item', 'Order Completed'];
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
    const report = await tiktok({ eventMap: { purchase: 'CompletePayment' } }).deliver([...events, page], {
      transport: { dispatcher: tls.dispatcher },
      now,
    });
    const body = sink.json() as { data: Array<{ event: string }> };
    expect(body.data.map((row) => row.event)).toEqual([
      'AddToCart',
      'InitiateCheckout',
      'ViewContent',
      'CompletePayment',
    ]);
    expect(report.outcomes.at(-1)).toMatchObject({ kind: 'dropped', reason: 'unmapped_event' });
  });
});
