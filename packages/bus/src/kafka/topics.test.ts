import { describe, expect, it } from 'vitest';
import { reconcileTopics } from './topics';

describe('reconcileTopics (signal-cli kafka topics create)', () => {
  const raw = { name: 'signal.raw-events', partitions: 12, replicationFactor: 3 };
  const dlq = { name: 'signal.dlq-events', partitions: 3, replicationFactor: 3 };
  const delivery = { name: 'signal.delivery-int_1', partitions: 8, replicationFactor: 3 };

  it('creates only the missing topics; an existing one with the same count is fine', () => {
    const plan = reconcileTopics([raw, dlq, delivery], new Map([['signal.raw-events', 12]]));
    expect(plan.create).toEqual([dlq, delivery]);
    expect(plan.outcomes).toEqual([
      { name: 'signal.raw-events', status: 'exists', partitions: 12 },
      { name: 'signal.dlq-events', status: 'created', partitions: 3 },
      { name: 'signal.delivery-int_1', status: 'created', partitions: 8 },
    ]);
  });

  it('reports a partition-count mismatch and never recreates or alters the topic', () => {
    const plan = reconcileTopics([raw], new Map([['signal.raw-events', 6]]));
    expect(plan.create).toEqual([]);
    expect(plan.outcomes).toEqual([
      { name: 'signal.raw-events', status: 'partitions_differ', partitions: 6, wanted: 12 },
    ]);
  });

  it('plans a topic named twice once', () => {
    expect(reconcileTopics([dlq, dlq], new Map()).create).toEqual([dlq]);
  });
});
