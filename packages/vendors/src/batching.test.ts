import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PreparedEvent } from './adapter';
import { ENVELOPE_RESERVE_BYTES, splitBatches } from './batching';

function entry(bytes: number, batchKey: string): Pick<PreparedEvent, 'bytes' | 'batchKey'> {
  return { bytes, batchKey };
}

describe('splitBatches', () => {
  it('cuts by count', () => {
    const prepared = Array.from({ length: 5 }, () => entry(10, ''));
    expect(splitBatches(prepared, { maxBatchSize: 2, maxBodyBytes: 1 << 20 })).toEqual([[0, 1], [2, 3], [4]]);
  });

  it('cuts by size, and still sends a single row bigger than the budget alone', () => {
    const budget = ENVELOPE_RESERVE_BYTES + 100;
    const prepared = [entry(60, ''), entry(60, ''), entry(500, ''), entry(10, '')];
    expect(splitBatches(prepared, { maxBatchSize: 100, maxBodyBytes: budget })).toEqual([[0], [1], [2], [3]]);
  });

  it('keeps rows of different keys apart, in order of first appearance', () => {
    const prepared = [entry(1, 'a'), entry(1, 'b'), entry(1, 'a'), entry(1, 'b')];
    expect(splitBatches(prepared, { maxBatchSize: 10, maxBodyBytes: 1 << 20 })).toEqual([
      [0, 2],
      [1, 3],
    ]);
  });

  it('is a partition that respects every limit (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ bytes: fc.integer({ min: 1, max: 3000 }), key: fc.constantFrom('a', 'b', 'c') }),
          {
            maxLength: 200,
          },
        ),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: ENVELOPE_RESERVE_BYTES + 1, max: ENVELOPE_RESERVE_BYTES + 20_000 }),
        (rows, maxBatchSize, maxBodyBytes) => {
          const prepared = rows.map((r) => entry(r.bytes, r.key));
          const batches = splitBatches(prepared, { maxBatchSize, maxBodyBytes });
          expect(batches.flat().sort((x, y) => x - y)).toEqual(prepared.map((_, i) => i));
          for (const batch of batches) {
            expect(batch.length).toBeGreaterThan(0);
            expect(batch.length).toBeLessThanOrEqual(maxBatchSize);
            expect(new Set(batch.map((i) => prepared[i]?.batchKey)).size).toBe(1);
            expect([...batch].sort((x, y) => x - y)).toEqual(batch);
            const size = batch.reduce((sum, i) => sum + (prepared[i]?.bytes ?? 0) + 1, 0);
            if (batch.length > 1) expect(size).toBeLessThanOrEqual(maxBodyBytes - ENVELOPE_RESERVE_BYTES);
          }
        },
      ),
    );
  });
});
