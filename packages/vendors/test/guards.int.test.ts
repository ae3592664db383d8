import type { CanonicalEvent } from '@signal/events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveryOutcome, VendorAdapterId } from '../src/index';
import { aged, HOUR, NOW, now, purchase, unchecked } from './fixtures';
import {
  dedupIdOf,
  IP_VENDORS,
  integrationFor,
  type Mutator,
  rowsOf,
  successBody,
  VENDOR_IDS,
} from './integrations';
import { createTlsHarness, type TlsHarness, type VendorSink } from './vendor-sink';

/**
 * Pre-delivery contract guards: an event the vendor would refuse is left out with its reason, and the rest
 * of the batch is still sent. Every vendor gets the same mixed batch.
 */

let tls: TlsHarness;
let sink: VendorSink;

beforeAll(async () => {
  tls = await createTlsHarness();
  sink = await tls.startSink();
});
afterAll(() => tls.close());

/** What takes every identifier the vendor could match on away from the purchase. */
const STRIP_IDENTIFIERS: Partial<Record<VendorAdapterId, Mutator>> = {
  meta: (e) => {
    delete e.traits.email;
    delete e.traits.phone;
    delete e.userId;
    delete e.context.ip;
    e.context.clickIds = {};
  },
  ga4: (e) => {
    delete e.anonymousId;
    e.context.clickIds = {};
  },
  google_ads: (e) => {
    delete e.traits.email;
    delete e.traits.phone;
    delete e.traits.firstName;
    e.context.clickIds = {};
  },
  tiktok: (e) => {
    delete e.traits.email;
    delete e.traits.phone;
    delete e.userId;
    delete e.context.ip;
    e.context.clickIds = {};
  },
  pinterest: (e) => {
    delete e.traits.email;
    delete e.context.ip;
  },
  snapchat: (e) => {
    delete e.traits.email;
    delete e.traits.phone;
    delete e.userId;
    delete e.context.ip;
    e.context.clickIds = {};
  },
  linkedin: (e) => {
    delete e.traits.email;
    delete e.traits.lastName;
    e.context.clickIds = {};
  },
};

/** Vendors whose rows carry the cart, so one event can outgrow the per-event limit. */
const ITEM_VENDORS: readonly VendorAdapterId[] = [
  'meta',
  'ga4',
  'tiktok',
  'pinterest',
  'snapchat',
  'webhook',
];

const bigCart: Mutator = (e) => {
  e.properties.items = Array.from({ length: 200 }, (_, i) => ({
    item_id: `${i}-${'i'.repeat(400)}`,
    item_name: 'n'.repeat(100),
    item_brand: 'b'.repeat(100),
    item_category: 'c'.repeat(100),
    item_variant: 'v'.repeat(100),
  }));
};

function named(id: string, mutate: Mutator = () => {}): CanonicalEvent {
  return purchase((e) => {
    e.messageId = id;
    delete e.properties.transaction_id;
    mutate(e);
  });
}

function reasons(outcomes: readonly DeliveryOutcome[]): Record<string, string> {
  return Object.fromEntries(
    outcomes.map((o) => [o.messageId, o.kind === 'delivered' ? 'delivered' : o.reason]),
  );
}

describe.each(VENDOR_IDS)('%s guards', (vendor) => {
  it('excludes each refused event with its reason and sends the rest of the batch', async () => {
    sink.reply(() => ({ status: 200, body: successBody(vendor) }));
    const integration = integrationFor(
      vendor,
      sink.origin,
      vendor === 'webhook' ? { maxBodyBytes: 16 * 1024 } : {},
    );
    const window = integration.limits.maxEventAgeMs;

    const events: CanonicalEvent[] = [
      named('ok'),
      named('just-inside-window', (e) => aged(e, window - HOUR)),
      named('too-old', (e) => aged(e, window + HOUR)),
      named('in-future', (e) => {
        e.timestamp = new Date(NOW + 2 * HOUR).toISOString();
        e.receivedAt = e.timestamp;
      }),
      // A fast device clock alone is not "in the future": the time is clamped to when the gateway received it.
      named('fast-client-clock', (e) => {
        e.timestamp = new Date(NOW + 2 * HOUR).toISOString();
      }),
      unchecked((e) => {
        e.messageId = 'ip-with-port';
        delete e.properties.transaction_id;
        e.context.ip = '203.0.113.7:443';
      }),
    ];
    const strip = STRIP_IDENTIFIERS[vendor];
    if (strip !== undefined) events.push(named('no-identifiers', strip));
    if (ITEM_VENDORS.includes(vendor)) events.push(named('too-large', bigCart));

    const report = await integration.deliver(events, { transport: { dispatcher: tls.dispatcher }, now });

    const expected: Record<string, string> = {
      ok: 'delivered',
      'just-inside-window': 'delivered',
      'too-old': 'event_too_old',
      'in-future': 'event_in_future',
      'fast-client-clock': 'delivered',
      // Vendors that never receive the IP have nothing to refuse.
      'ip-with-port': IP_VENDORS.includes(vendor) ? 'ip_with_port' : 'delivered',
    };
    if (strip !== undefined) expected['no-identifiers'] = 'missing_identifiers';
    if (ITEM_VENDORS.includes(vendor)) expected['too-large'] = 'payload_too_large';
    expect(reasons(report.outcomes)).toEqual(expected);

    const sent = sink.requests.flatMap((r) => rowsOf(vendor, r.body)).map((row) => dedupIdOf(vendor, row));
    const delivered = Object.entries(expected)
      .filter(([, reason]) => reason === 'delivered')
      .map(([id]) => id);
    expect(sent).toEqual(delivered);
    for (const outcome of report.outcomes) {
      if (outcome.kind === 'dead_letter') expect(outcome.detail).toMatch(/\S/);
    }
  });
});

describe('Meta website events', () => {
  it('need the user agent and the page URL', async () => {
    sink.reply(() => ({ status: 200, body: successBody('meta') }));
    const noUa = named('no-ua', (e) => {
      delete e.context.userAgent;
    });
    const noUrl = named('no-url', (e) => {
      delete e.context.page;
    });
    const report = await integrationFor('meta', sink.origin).deliver([noUa, noUrl], {
      transport: { dispatcher: tls.dispatcher },
      now,
    });
    expect(reasons(report.outcomes)).toEqual({
      'no-ua': 'missing_required_field',
      'no-url': 'missing_required_field',
    });
    expect(sink.requests).toHaveLength(0);
  });

  it('accept physical_store events up to 62 days old', async () => {
    sink.reply(() => ({ status: 200, body: successBody('meta') }));
    const integration = integrationFor('meta', sink.origin, { actionSource: 'physical_store' });
    const report = await integration.deliver(
      [named('30d', (e) => aged(e, 30 * 24 * HOUR)), named('63d', (e) => aged(e, 63 * 24 * HOUR))],
      { transport: { dispatcher: tls.dispatcher }, now },
    );
    expect(reasons(report.outcomes)).toEqual({ '30d': 'delivered', '63d': 'event_too_old' });
  });
});
