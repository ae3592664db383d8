import { describe, expect, it } from 'vitest';
import { MASK, maskPersonalData } from './mask';

describe('dead-letter masking', () => {
  it('masks personal fields and e-mail addresses, keeps digests and the rest', () => {
    const digest = 'a'.repeat(64);
    const masked = maskPersonalData({
      integrationId: 'i1',
      event: {
        event: 'Order Completed',
        userId: 'u-42',
        traits: { email: 'jane@example.com', plan: 'pro' },
        properties: { email: digest, phone: '+441234', value: 12, note: 'call jane@example.com' },
        context: { ip: '203.0.113.9', clickIds: { gclid: 'abc' }, page: { url: 'https://shop.example/' } },
      },
    });
    expect(masked).toEqual({
      integrationId: 'i1',
      event: {
        event: 'Order Completed',
        userId: MASK,
        traits: { email: MASK, plan: MASK },
        properties: { email: digest, phone: MASK, value: 12, note: `call ${MASK}` },
        context: { ip: MASK, clickIds: { gclid: MASK }, page: { url: 'https://shop.example/' } },
      },
    });
  });

  it("hides a delivery message's erasure digests and consent subject whole: keyed pseudonyms, not what was sent", () => {
    const masked = maskPersonalData({
      integrationId: 'i1',
      event: { event: 'Order Completed', userId: 'b'.repeat(64) },
      attempt: { number: 1 },
      erasureDigests: { anonymousId: 'c'.repeat(64), userId: 'd'.repeat(64) },
      consentSubject: 'e'.repeat(64),
    });
    expect(masked).toEqual({
      integrationId: 'i1',
      event: { event: 'Order Completed', userId: 'b'.repeat(64) },
      attempt: { number: 1 },
      erasureDigests: MASK,
      consentSubject: MASK,
    });
  });
});
