import fc from 'fast-check';
import { Partitioners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { murmur2, partitionFor } from './partitioner';

describe('murmur2', () => {
  it("matches the Java client's reference values (Kafka UtilsTest)", () => {
    const cases: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [key, expected] of cases) expect(murmur2(new TextEncoder().encode(key)), key).toBe(expected);
  });

  it('partitions ASCII keys (read straight from the string) exactly as their UTF-8 bytes (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: 'binary-ascii', maxLength: 80 }), fc.string({ maxLength: 80 })),
        fc.integer({ min: 1, max: 4096 }),
        (key, n) => {
          const expected = (murmur2(new TextEncoder().encode(key)) & 0x7fffffff) % n;
          expect(partitionFor(key, n)).toBe(expected);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("puts every key in the same partition as kafkajs's DefaultPartitioner (property)", () => {
    const kafkajs = Partitioners.DefaultPartitioner();
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 64 }),
        fc.integer({ min: 1, max: 256 }),
        (key, n) => {
          const partitionMetadata = Array.from({ length: n }, (_, partitionId) => ({
            partitionId,
            leader: 0,
            partitionErrorCode: 0,
            replicas: [0],
            isr: [0],
          }));
          const expected = kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } });
          expect(partitionFor(key, n)).toBe(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('spreads keys over all partitions', () => {
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < 8000; i += 1) {
      const p = partitionFor(`visitor-${i}`, 8);
      counts[p] = (counts[p] ?? 0) + 1;
    }
    for (const c of counts) expect(c).toBeGreaterThan(800);
  });
});
