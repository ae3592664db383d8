import type { CanonicalEvent } from '@signal/events';
import { pipelineStepsSchema } from '@signal/org-data-layer';
import { describe, expect, it } from 'vitest';
import { compilePipeline } from './pipeline';

const event: CanonicalEvent = {
  type: 'track',
  event: 'Order Completed',
  anonymousId: 'a1',
  messageId: 'm1',
  properties: { sku: 'S-1', internal: 'x', value: 10 },
  traits: {},
  context: { consent: {}, provenance: 'pipeline_key' },
  timestamp: '2025-01-01T00:00:00.000Z',
  receivedAt: '2025-01-01T00:00:00.000Z',
  org: 'o',
  pipelineId: 'p',
};

const run = (steps: unknown, e: CanonicalEvent = event) =>
  compilePipeline(pipelineStepsSchema.parse(steps))(e);

describe('integration pipelines', () => {
  it('renames, sets and removes fields without touching the input', () => {
    const out = run([
      {
        type: 'map',
        rename: { 'properties.sku': 'properties.product.id' },
        set: { 'properties.channel': 'web', event: 'Purchase' },
        remove: ['properties.internal'],
      },
    ]);
    expect(out?.event).toBe('Purchase');
    expect(out?.properties).toEqual({ product: { id: 'S-1' }, channel: 'web', value: 10 });
    expect(event.properties).toEqual({ sku: 'S-1', internal: 'x', value: 10 });
  });

  it('filters with a condition', () => {
    const steps = [{ type: 'filter', condition: { field: 'properties.value', op: 'exists' } }];
    expect(run(steps)).not.toBeNull();
    expect(run(steps, { ...event, properties: {} })).toBeNull();
  });

  it('cannot write outside properties, traits and the event name', () => {
    for (const path of ['context.provenance', 'org', 'messageId', 'properties']) {
      expect(pipelineStepsSchema.safeParse([{ type: 'map', set: { [path]: 'x' } }]).success).toBe(false);
    }
  });
});
