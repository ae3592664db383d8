import { type CanonicalEvent, canonicalEventSchema } from '@signal/events';
import { compilePiiRules } from '@signal/pii';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkChangedEvent } from './delivery-event-check';
import { stripPersonalData } from './org-data-layer/strip';

const decoded: CanonicalEvent = canonicalEventSchema.parse({
  type: 'track',
  event: 'Order Completed',
  anonymousId: 'a-1',
  userId: 'u-1',
  messageId: 'm-1',
  properties: { value: 10, email: 'x@example.com', items: [{ sku: 'S' }] },
  traits: { email: 'Jane@Example.com', phone: '+44 20 7946 0958' },
  context: {
    ip: '203.0.113.9',
    consent: { categories: { analytics: true } },
    provenance: 'pipeline_key',
    page: { url: 'https://shop.example/' },
    clickIds: { gclid: 'g-1' },
  },
  timestamp: '2026-01-01T00:00:00.000Z',
  receivedAt: '2026-01-01T00:00:00.000Z',
  org: 'org_1',
  pipelineId: 'pl_1',
});

/** What the processor published before: a full parse of the processed event. */
function same(candidate: CanonicalEvent): void {
  const full = canonicalEventSchema.safeParse(candidate);
  const partial = checkChangedEvent(decoded, candidate);
  expect(partial.success).toBe(full.success);
  if (full.success && partial.success) {
    expect(JSON.stringify(partial.data)).toBe(JSON.stringify(full.data));
  } else if (!full.success && !partial.success) {
    expect(partial.error.issues).toEqual(full.error.issues);
  }
}

const as = (value: unknown) => value as CanonicalEvent;

describe('checking only what the processor changed gives what a full parse gives', () => {
  it('for the changes the Org Data Layer and pipelines make', () => {
    const pii = compilePiiRules({
      enabled: true,
      hash_fields: [{ field: 'traits.email' }, { field: 'traits.phone' }, { field: 'userId' }],
      redact_fields: [{ field: 'context.ip', mode: 'partial' }],
      hash_algorithm: 'sha256',
    });
    same(decoded);
    same(pii(decoded) as unknown as CanonicalEvent);
    const stripped = stripPersonalData(decoded);
    if (stripped === null) throw new Error('strippable');
    same(stripped);
    same({ ...decoded, properties: { ...decoded.properties, signal_bot: { score: 60, signals: ['x'] } } });
    same({ ...decoded, event: 'Purchase' });
  });

  it('for changes that make the event invalid (same errors, same paths)', () => {
    same(as({ ...decoded, event: 42 }));
    same(as({ ...decoded, event: undefined }));
    same(as({ ...decoded, userId: undefined, anonymousId: undefined }));
    same(as({ ...decoded, context: { ...decoded.context, ip: null } }));
    same(as({ ...decoded, traits: { deep: 'x'.repeat(10_000) } }));
    same(as({ ...decoded, properties: JSON.parse('{"__proto__": 1}') }));
    same(as({ ...decoded, timestamp: 'yesterday' }));
  });

  it('for unknown keys (stripped, as the schema strips them) and reordered keys', () => {
    same(as({ ...decoded, extra: true }));
    same(as({ ...decoded, context: { ...decoded.context, extra: 1 } }));
    const { properties, ...rest } = decoded;
    same({ ...rest, properties: { ...properties } });
  });

  it('for arbitrary JSON written into properties, traits and the event name', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom('properties', 'traits', 'event'), (value, field) => {
        same(as({ ...decoded, [field]: value }));
      }),
      { numRuns: 300 },
    );
  });
});
