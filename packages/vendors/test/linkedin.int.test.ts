import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIntegration, linkedinCapi } from '../src/index';
import { now, purchase } from './fixtures';
import { hashed, sha256 } from './helpers';
import { createTlsHarness, type TlsHarness, type VendorSink } from './vendor-sink';

const TOKEN = 'AQX-linkedin-oauth-token-0123456789';
let tls: TlsHarness;
let sink: VendorSink;

beforeAll(async () => {
  tls = await createTlsHarness();
  sink = await tls.startSink();
});
afterAll(() => tls.close());

function linkedin(settings: Record<string, unknown> = {}) {
  return createIntegration(linkedinCapi, {
    settings: { conversionRules: { purchase: '24680' }, endpoint: sink.origin, ...settings },
    credentials: { accessToken: TOKEN },
  });
}

describe('LinkedIn Conversions API request', () => {
  it('sends a BATCH_CREATE with SHA256_EMAIL, li_fat_id, clear userInfo and eventId = message id', async () => {
    sink.reply(() => ({ status: 200, body: { elements: [{ status: 201 }] } }));
    const event = purchase((e) => {
      e.traits.title = 'Head of Growth';
      e.traits.company = { name: 'Example Ltd' };
    });
    const report = await linkedin().deliver([event], { transport: { dispatcher: tls.dispatcher }, now });

    expect(report.outcomes).toEqual([{ kind: 'delivered', messageId: 'msg-0001' }]);
    const [request] = sink.requests;
    expect(request?.url).toBe('/rest/conversionEvents');
    expect(request?.headers).toMatchObject({
      authorization: `Bearer ${TOKEN}`,
      'linkedin-version': '202607',
      'x-restli-protocol-version': '2.0.0',
      'x-restli-method': 'BATCH_CREATE',
    });
    expect(sink.json()).toEqual({
      elements: [
        {
          conversion: 'urn:lla:llaPartnerConversion:24680',
          conversionHappenedAt: Date.parse('2026-11-20T11:58:00Z'),
          conversionValue: { currencyCode: 'EUR', amount: '129.9' },
          eventId: 'msg-0001',
          user: {
            userIds: [
              { idType: 'SHA256_EMAIL', idValue: hashed('linkedin', 'SHA256_EMAIL', 'John.Smith@Gmail.com') },
              { idType: 'LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID', idValue: 'li-fat-uuid' },
            ],
            userInfo: {
              firstName: 'John',
              lastName: "O'Smith",
              title: 'Head of Growth',
              companyName: 'Example Ltd',
              countryCode: 'GB',
            },
          },
        },
      ],
    });
    const body = sink.json() as { elements: Array<{ user: { userIds: Array<{ idValue: string }> } }> };
    expect(body.elements[0]?.user.userIds[0]?.idValue).toBe(sha256('john.smith@gmail.com'));
  });

  it('sends an empty userIds list when only names identify the person, and drops unmapped events', async () => {
    sink.reply(() => ({ status: 200, body: {} }));
    const namesOnly = purchase((e) => {
      delete e.traits.email;
      e.context.clickIds = {};
    });
    const unmapped = purchase((e) => {
      e.event = 'add_to_cart';
      e.messageId = 'cart';
    });
    const report = await linkedin().deliver([namesOnly, unmapped], {
      transport: { dispatcher: tls.dispatcher },
      now,
    });
    const body = sink.json() as { elements: Array<{ user: { userIds: unknown[] } }> };
    expect(body.elements[0]?.user.userIds).toEqual([]);
    expect(report.outcomes[1]).toMatchObject({ kind: 'dropped', reason: 'unmapped_event' });
  });
});
