import { describe, expect, it } from 'vitest';
import { BusError } from '../errors';
import { chunkRecords, mergeReceipts, recordBytes, type SealedRecord } from './chunks';

const record = (key: string, size: number, partition = 0): SealedRecord => ({
  key,
  value: 'v'.repeat(size),
  partition,
});

describe('chunkRecords (produce requests under the broker limit)', () => {
  it('keeps a publish that fits in one request', () => {
    const records = [record('a', 100), record('b', 100, 1)];
    expect(chunkRecords(records, 10_000)).toEqual([records]);
  });

  it('splits a publish larger than the limit into requests in order, none over it', () => {
    // What made the processor fail for ever: 500 events of ~2.5 KB sealed, one visitor, one partition.
    const records = Array.from({ length: 500 }, (_, i) => record(`anon-1`, 2_500 + (i % 7)));
    const chunks = chunkRecords(records, 1_000_000);
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.flat()).toEqual(records);
    for (const chunk of chunks) {
      expect(chunk.reduce((n, r) => n + recordBytes(r), 0)).toBeLessThanOrEqual(1_000_000);
    }
  });

  it('counts keys, multi-byte text and headers', () => {
    expect(recordBytes({ key: 'é', value: '€', partition: 0, headers: { h: 'v' } })).toBe(
      64 + 2 + 3 + 1 + 1 + 8,
    );
  });

  it('refuses a single record over the limit, naming its size only', () => {
    const secretish = { key: 'k', value: `user@example.com${'x'.repeat(2_000)}`, partition: 0 };
    let error: unknown;
    try {
      chunkRecords([secretish], 1_000);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(BusError);
    expect(error).toMatchObject({ code: 'bus_invalid_message' });
    expect(String((error as Error).message)).not.toContain('example.com');
  });
});

describe('mergeReceipts', () => {
  it('keeps the first base offset of each partition and adds the counts', () => {
    expect(
      mergeReceipts([
        [
          { topic: 't', partition: 0, baseOffset: '10', count: 3 },
          { topic: 't', partition: 1, baseOffset: '4', count: 1 },
        ],
        [{ topic: 't', partition: 0, baseOffset: '13', count: 2 }],
      ]),
    ).toEqual([
      { topic: 't', partition: 0, baseOffset: '10', count: 5 },
      { topic: 't', partition: 1, baseOffset: '4', count: 1 },
    ]);
  });
});
