import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Entry, Pool } from './memory-pool';

describe('Pool', () => {
  it('always knows the entry that expires first, through adds, replacements and removals', () => {
    type Op = { op: 'add' | 'replace' | 'remove' | 'removeSoonest'; pick: number; expiresAt: number };
    const op: fc.Arbitrary<Op> = fc.record({
      op: fc.constantFrom(
        'add' as const,
        'add' as const,
        'replace' as const,
        'remove' as const,
        'removeSoonest' as const,
      ),
      pick: fc.noBias(fc.nat()),
      expiresAt: fc.noBias(fc.integer({ min: 0, max: 100 })),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200, size: 'max' }), (ops) => {
        const pool = new Pool('p', 1_000, true);
        const held: Entry[] = [];
        let next = 0;
        for (const { op, pick, expiresAt } of ops) {
          const chosen = held[pick % Math.max(1, held.length)];
          if (op === 'add' || chosen === undefined) {
            held.push(pool.add(`k${next++}`, 'v', expiresAt));
          } else if (op === 'replace') {
            pool.replace(chosen, 'w', expiresAt);
            held.splice(held.indexOf(chosen), 1);
            held.push(chosen);
          } else {
            const victim = op === 'remove' ? chosen : pool.soonestToExpire();
            if (victim === undefined) throw new Error('non-empty pool without a soonest entry');
            pool.remove(victim);
            held.splice(held.indexOf(victim), 1);
          }
          expect(pool.size).toBe(held.length);
          expect(pool.soonestToExpire()?.expiresAt).toBe(
            held.length === 0 ? undefined : Math.min(...held.map((e) => e.expiresAt)),
          );
          expect(pool.leastRecentlyUsed()).toBe(held[0]);
        }
        for (const e of held) expect(pool.get(e.key)).toBe(e);
        // Draining soonest-first yields every expiry in order (a misplaced entry deep in the heap shows here).
        const drained: number[] = [];
        for (let e = pool.soonestToExpire(); e !== undefined; e = pool.soonestToExpire()) {
          drained.push(e.expiresAt);
          pool.remove(e);
        }
        expect(drained).toEqual(held.map((e) => e.expiresAt).sort((a, b) => a - b));
      }),
      { numRuns: 300 },
    );
  });
});
