import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { now, purchases } from './fixtures';
import { dedupIdOf, integrationFor, rowsOf, successBody, VENDOR_IDS } from './integrations';
import { createTlsHarness, type TlsHarness, type VendorSink } from './vendor-sink';

let tls: TlsHarness;
let sink: VendorSink;

beforeAll(async () => {
  tls = await createTlsHarness();
  sink = await tls.startSink();
});
afterAll(() => tls.close());

describe('batches are cut at each vendor limit', () => {
  it.each(VENDOR_IDS)(
    '%s: limit + 1 events make two requests, every event delivered once, in order',
    async (vendor) => {
      sink.reply(() => ({ status: 200, body: successBody(vendor) }));
      const integration = integrationFor(vendor, sink.origin);
      const limit = integration.limits.maxBatchSize;
      const events = purchases(limit + 1, (draft) => {
        // Distinct order ids, so Google's join key is the message id too.
        delete draft.properties.transaction_id;
      });

      const report = await integration.deliver(events, { transport: { dispatcher: tls.dispatcher }, now });

      expect(report.outcomes.every((o) => o.kind === 'delivered')).toBe(true);
      expect(report.requests.map((r) => r.events)).toEqual([limit, 1]);
      const rows = sink.requests.flatMap((r) => rowsOf(vendor, r.body));
      expect(rows.map((row) => dedupIdOf(vendor, row))).toEqual(events.map((e) => e.messageId));
    },
  );
});

describe('batches are cut by size as well as by count', () => {
  it('GA4: 25 events of ~10 KB do not fit one 130 kB request', async () => {
    sink.reply(() => ({ status: 204 }));
    const integration = integrationFor('ga4', sink.origin);
    const events = purchases(25, (draft) => {
      draft.properties.items = Array.from({ length: 20 }, (_, i) => ({
        item_id: `SKU-${i}-${'x'.repeat(90)}`,
        item_name: 'n'.repeat(100),
        item_brand: 'b'.repeat(100),
        item_category: 'c'.repeat(100),
        item_variant: 'v'.repeat(100),
      }));
    });

    const report = await integration.deliver(events, { transport: { dispatcher: tls.dispatcher }, now });

    expect(report.outcomes.every((o) => o.kind === 'delivered')).toBe(true);
    expect(sink.requests.length).toBeGreaterThan(1);
    for (const request of sink.requests) {
      expect(Buffer.byteLength(request.body)).toBeLessThanOrEqual(integration.limits.maxBodyBytes);
    }
    expect(report.requests.reduce((sum, r) => sum + r.events, 0)).toBe(25);
  });

  it('Meta: rows that add up past the body limit go in separate requests', async () => {
    sink.reply(() => ({ status: 200, body: successBody('meta') }));
    const integration = integrationFor('meta', sink.origin);
    // ~52 KB per event (ids in content_ids and contents): 100 events are more than one 4 MiB request.
    const events = purchases(100, (draft) => {
      draft.properties.items = Array.from({ length: 200 }, (_, i) => ({
        item_id: `${i}-${'s'.repeat(110)}`,
      }));
    });

    const report = await integration.deliver(events, { transport: { dispatcher: tls.dispatcher }, now });

    expect(report.outcomes.every((o) => o.kind === 'delivered')).toBe(true);
    expect(report.requests.length).toBe(2);
    for (const request of sink.requests) {
      expect(Buffer.byteLength(request.body)).toBeLessThanOrEqual(integration.limits.maxBodyBytes);
    }
  });
});
