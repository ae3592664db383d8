/**
 * The events of `pnpm bench gateway` and `pnpm bench gateway-stages`: a GA4 purchase from a landing page with
 * a click id, as Datafly.js sends it; `i` picks one of 1,000 visitors.
 */
export const benchEvent = (i: number) => ({
  type: 'track',
  event: 'purchase',
  anonymousId: `anon-bench-${String(i % 1000).padStart(8, '0')}`,
  properties: { value: 42.5, currency: 'EUR', items: [{ item_id: 'sku-1', price: 42.5, quantity: 1 }] },
  context: {
    page: { url: 'https://shop.example.com/checkout?gclid=abc', referrer: 'https://www.google.com/' },
    consent: { categories: { analytics: true, marketing: true } },
  },
});

/** `/v1/batch` from a server: 100 visitors' events in one request. */
export const benchBatchBody = JSON.stringify({ batch: Array.from({ length: 100 }, (_, i) => benchEvent(i)) });
