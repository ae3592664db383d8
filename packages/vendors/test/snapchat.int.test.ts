import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIntegration, snapchatCapi } from '../src/index';
import { now, purchase } from './fixtures';
import { hashed, recordingLogger, sha256 } from './helpers';
import { createTlsHarness, type TlsHarness, type VendorSink } from './vendor-sink';

const TOKEN = 'snap-capi-token-0123456789.abc';
const PIXEL = '5bf81ee1-15b1-4dc1-b636-d7dae49b950e';
let tls: TlsHarness;
let sink: VendorSink;

beforeAll(async () => {
  tls = await createTlsHarness();
  sink = await tls.startSink();
});
afterAll(() => tls.close());

function snap(settings: Record<string, unknown> = {}) {
  return createIntegration(snapchatCapi, {
    settings: { pixelId: PIXEL, endpoint: sink.origin, ...settings },
    credentials: { accessToken: TOKEN },
  });
}

const s = (field: string, value: string) => [hashed('snapchat', field, value)];

describe('Snap Conversions API v3 request', () => {
  it('sends a PURCHASE with hashed user_data arrays, clear IP/UA/click ids and event_id = message id', async () => {
    sink.reply(() => ({
      status: 200,
      body: { status: 'VALID', reason: 'Events have been processed successfully.' },
    }));
    const logger = recordingLogger();
    const report = await snap().deliver([purchase()], {
      transport: { dispatcher: tls.dispatcher },
      now,
      logger,
    });

    expect(report.outcomes).toEqual([{ kind: 'delivered', messageId: 'msg-0001' }]);
    // Snap documents the token as a query parameter: it is there on the wire, redacted in logs.
    expect(sink.requests[0]?.url).toBe(`/v3/${PIXEL}/events?access_token=${encodeURIComponent(TOKEN)}`);
    expect(JSON.stringify(logger.lines)).not.toContain(TOKEN);
    expect(JSON.stringify(logger.lines)).toContain('access_token=[redacted]');
    expect(sink.json()).toEqual({
      data: [
        {
          event_name: 'PURCHASE',
          event_time: Date.parse('2026-11-20T11:58:00Z') / 1000,
          event_id: 'msg-0001',
          action_source: 'WEB',
          event_source_url: 'https://shop.example/checkout/done',
          user_data: {
            em: s('em', 'John.Smith@Gmail.com'),
            ph: s('ph', '+44 7700 900123'),
            fn: s('fn', 'John'),
            ln: s('ln', "O'Smith"),
            ge: s('ge', 'male'),
            ct: s('ct', 'London'),
            st: s('st', 'England'),
            zp: s('zp', 'SW1A 1AA'),
            country: s('country', 'GB'),
            external_id: s('external_id', 'User-42'),
            client_ip_address: '203.0.113.7',
            client_user_agent: 'Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0',
            sc_click_id: 'snap-click-id',
            sc_cookie1: 'snap-cookie-value',
          },
          custom_data: {
            currency: 'EUR',
            value: '129.9',
            contents: [
              { id: 'SKU-1', quantity: '2', item_price: '59.95' },
              { id: 'SKU-2', quantity: '1', item_price: '10' },
            ],
            num_items: 3,
            order_id: 'T-1001',
          },
        },
      ],
    });
    const body = sink.json() as { data: Array<{ user_data: { ph: string[] } }> };
    expect(body.data[0]?.user_data.ph).toEqual([sha256('447700900123')]);
  });

  it('can send the token as a bearer header and use the validation endpoint', async () => {
    sink.reply(() => ({ status: 200, body: { status: 'VALID' } }));
    await snap({ tokenPlacement: 'header', validate: true }).deliver([purchase()], {
      transport: { dispatcher: tls.dispatcher },
      now,
    });
    expect(sink.requests[0]?.url).toBe(`/v3/${PIXEL}/events/validate`);
    expect(sink.requests[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('drops events Snap has no name for unless mapped to one of its events', async () => {
    sink.reply(() => ({ status: 200, body: { status: 'VALID' } }));
    const lead = purchase((e) => {
      e.event = 'generate_lead';
    });
    const mapped = purchase((e) => {
      e.event = 'generate_lead';
      e.messageId = 'mapped';
    });
    const dropped = await snap().deliver([lead], { transport: { dispatcher: tls.dispatcher }, now });
    expect(dropped.outcomes[0]).toMatchObject({ kind: 'dropped', reason: 'unmapped_event' });
    await snap({ eventMap: { generate_lead: 'CUSTOM_EVENT_1' } }).deliver([mapped], {
      transport: { dispatcher: tls.dispatcher },
      now,
    });
    expect((sink.json() as { data: Array<{ event_name: string }> }).data[0]?.event_name).toBe(
      'CUSTOM_EVENT_1',
    );
  });
});
