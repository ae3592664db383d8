import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CanonicalEvent } from './event';
import { consumerGroup, type DlqMessage, TopicNameError, topics } from './topics';

const event: CanonicalEvent = {
  type: 'track',
  event: 'Purchase',
  anonymousId: 'visitor-1',
  messageId: 'm-1',
  properties: { value: 10 },
  traits: {},
  context: { consent: { categories: { marketing: true } }, provenance: 'pipeline_key', ip: '192.0.2.1' },
  timestamp: '2025-01-01T00:00:00.000Z',
  receivedAt: '2025-01-01T00:00:00.100Z',
  org: 'org_1',
  pipelineId: 'pl_1',
};

describe('topic names', () => {
  it('prefix the namespace, or nothing when it is empty', () => {
    expect(topics.rawEvents('signal').name).toBe('signal.raw-events');
    expect(topics.rawEvents('').name).toBe('raw-events');
    expect(topics.delivery('acme-prod', 'int_42').name).toBe('acme-prod.delivery-int_42');
    expect(topics.dlqEvents('t1').name).toBe('t1.dlq-events');
    expect(consumerGroup('signal', 'event-processor')).toBe('signal.event-processor');
    expect(consumerGroup('', 'event-processor')).toBe('event-processor');
  });

  it('refuse namespaces and integration ids that would break or forge a topic name', () => {
    for (const ns of ['a.b', '-x', 'x y', 'x'.repeat(49), 'ns/evil']) {
      expect(() => topics.rawEvents(ns), ns).toThrow(TopicNameError);
    }
    for (const id of ['', 'a.b', '../x', 'x y', '_leading', 'x'.repeat(129), 'é']) {
      expect(() => topics.delivery('signal', id), id).toThrow(TopicNameError);
    }
    expect(() => consumerGroup('signal', 'a.b')).toThrow(TopicNameError);
  });

  it('parse is the inverse of the catalog (property)', () => {
    const ns = fc.stringMatching(/^(?:[A-Za-z0-9][A-Za-z0-9_-]{0,47})?$/);
    const id = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/);
    fc.assert(
      fc.property(ns, id, (namespace, integrationId) => {
        expect(topics.parse(namespace, topics.delivery(namespace, integrationId).name)).toEqual({
          kind: 'delivery',
          integrationId,
        });
        expect(topics.parse(namespace, topics.rawEvents(namespace).name)).toEqual({ kind: 'raw-events' });
        expect(topics.parse(namespace, topics.dlqEvents(namespace).name)).toEqual({ kind: 'dlq-events' });
      }),
    );
    expect(topics.parse('signal', 'other.raw-events')).toBeNull();
    expect(topics.parse('signal', 'signal.delivery-')).toBeNull();
    expect(topics.parse('signal', 'signal.unknown')).toBeNull();
  });

  it('every topic name fits Kafka limits even at the longest namespace and id', () => {
    const name = topics.delivery('n'.repeat(48), 'i'.repeat(128)).name;
    expect(name.length).toBeLessThanOrEqual(249);
  });
});

describe('topic definitions', () => {
  it('raw-events carries canonical events keyed by visitor, dead-lettering to dlq-events', () => {
    const raw = topics.rawEvents('signal');
    expect(raw.key(raw.schema.parse(event))).toBe('visitor-1');
    expect(raw.dlq?.name).toBe('signal.dlq-events');
    expect(raw.schema.safeParse({ ...event, messageId: undefined }).success).toBe(false);
  });

  it('delivery topics carry the processed event, integration id and attempt, keyed by visitor', () => {
    const topic = topics.delivery('signal', 'meta-1');
    const message = topic.schema.parse({ integrationId: 'meta-1', event, attempt: { number: 1 } });
    expect(topic.key(message)).toBe('visitor-1');
    expect(topic.dlq?.name).toBe('signal.dlq-events');
    expect(topic.schema.safeParse({ integrationId: 'meta-1', event, attempt: { number: 0 } }).success).toBe(
      false,
    );
    expect(topic.schema.safeParse({ integrationId: 'meta-1', event }).success).toBe(false);
  });

  it('dlq-events keeps the original and its key for replay; the DLQ has no DLQ', () => {
    const dlq = topics.dlqEvents('signal');
    const letter: DlqMessage = dlq.schema.parse({
      error: 'retries_exhausted',
      details: 'vendor answered 503 five times',
      original: JSON.parse(JSON.stringify(event)) as unknown,
      originalKey: 'visitor-1',
      topic: 'signal.delivery-meta-1',
      integrationId: 'meta-1',
      attempts: 5,
      lastResponse: { status: 503, body: 'Service Unavailable' },
      failedAt: '2025-01-01T01:00:00Z',
    });
    expect(dlq.key(letter)).toBe('visitor-1');
    expect(dlq.key({ ...letter, originalKey: undefined })).toBe('signal.delivery-meta-1');
    expect(dlq.dlq).toBeNull();
    const undecodable = dlq.schema.parse({ ...letter, original: '{not json', originalKey: 'k' });
    expect(undecodable.original).toBe('{not json');
    expect(dlq.schema.safeParse({ ...letter, failedAt: 'yesterday' }).success).toBe(false);
  });
});
