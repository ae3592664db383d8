import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { followUpBudget, type Judgement, type Settled, settleBatch } from './batch-refusal';
import { bisect, deadLetter, delivered, resend, retry, type Verdict } from './outcome';

/**
 * The follow-ups for a batch a vendor refused as a whole, against fake vendors that judge each request the
 * way Meta (names one bad row), LinkedIn (names them all) and TikTok (names none) do.
 */

const refused = deadLetter('validation_failed', 'bad row');
const answer = { status: 400 };

type Vendor = (rows: readonly number[]) => Verdict[];

/** Refuses any request with a bad row, naming none of them. */
const unnamed =
  (bad: ReadonlySet<number>): Vendor =>
  (rows) =>
    rows.some((r) => bad.has(r)) ? rows.map(() => bisect(refused)) : rows.map(() => delivered);

/** Refuses any request with a bad row, naming the first one (`all`: every one) and leaving the others unjudged. */
const named =
  (bad: ReadonlySet<number>, all = false): Vendor =>
  (rows) => {
    const blamed = rows.filter((r) => bad.has(r)).slice(0, all ? undefined : 1);
    if (blamed.length === 0) return rows.map(() => delivered);
    return rows.map((r) => (blamed.includes(r) ? refused : resend));
  };

async function run(count: number, vendor: Vendor) {
  const requests: number[][] = [];
  const accepted: number[] = [];
  const settled = await settleBatch(count, async (rows): Promise<Judgement> => {
    requests.push([...rows]);
    const list = vendor(rows);
    rows.forEach((r, i) => {
      if (list[i]?.kind === 'delivered') accepted.push(r);
    });
    return { list, lastResponse: list.every((v) => v.kind === 'delivered') ? undefined : answer };
  });
  return { settled, requests, accepted };
}

const kinds = (settled: readonly Settled[]) => settled.map((s) => s.verdict.kind);

describe('followUpBudget', () => {
  it('is 2·⌈log2 n⌉: none for a single event', () => {
    expect([1, 2, 3, 4, 8, 9, 1000].map(followUpBudget)).toEqual([0, 2, 4, 4, 6, 8, 20]);
  });
});

describe('settleBatch', () => {
  it('a batch the vendor accepts or refuses for good is one request', async () => {
    const accepted = await run(5, (rows) => rows.map(() => delivered));
    expect(accepted.requests).toEqual([[0, 1, 2, 3, 4]]);
    expect(kinds(accepted.settled)).toEqual(Array(5).fill('delivered'));
    const throttled = await run(3, (rows) => rows.map(() => retry('rate_limited', 5000)));
    expect(throttled.requests).toHaveLength(1);
    expect(throttled.settled[0]).toEqual({
      verdict: { kind: 'retry', reason: 'rate_limited', retryAfterMs: 5000 },
      lastResponse: answer,
    });
  });

  it('named rows are dead-lettered and the rest sent again, in input order', async () => {
    const { settled, requests } = await run(5, named(new Set([1, 3]), true));
    expect(requests).toEqual([
      [0, 1, 2, 3, 4],
      [0, 2, 4],
    ]);
    expect(kinds(settled)).toEqual(['delivered', 'dead_letter', 'delivered', 'dead_letter', 'delivered']);
    expect(settled[1]).toEqual({ verdict: refused, lastResponse: answer });
    expect(settled[0]).toEqual({ verdict: delivered, lastResponse: undefined });
  });

  it('an unnamed bad row is found by halving; inference spares the request its group would need', async () => {
    const { settled, requests } = await run(8, unnamed(new Set([5])));
    expect(requests).toEqual([[0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3], [4, 5], [4], [6, 7]]);
    expect(kinds(settled)).toEqual([...Array(5).fill('delivered'), 'dead_letter', 'delivered', 'delivered']);
  });

  it('one unnamed bad row among n costs at most ⌈log2 n⌉ + 1 follow-ups, and nothing else is lost (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 300 }).chain((n) => fc.tuple(fc.constant(n), fc.nat({ max: n - 1 }))),
        async ([n, culprit]) => {
          const { settled, requests, accepted } = await run(n, unnamed(new Set([culprit])));
          settled.forEach((s, row) => {
            expect(s.verdict).toEqual(row === culprit ? refused : delivered);
          });
          expect(requests.length - 1).toBeLessThanOrEqual(n === 1 ? 0 : Math.ceil(Math.log2(n)) + 1);
          expect(accepted.length).toBe(n - 1);
        },
      ),
    );
  });

  it('any bad rows, named or not: bounded, a bad row is never delivered, a good one never sent twice (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 1, max: 64 })
          .chain((n) =>
            fc.tuple(
              fc.constant(n),
              fc.uniqueArray(fc.nat({ max: n - 1 }), { maxLength: n }),
              fc.constantFrom('unnamed', 'first', 'all'),
            ),
          ),
        async ([n, culprits, style]) => {
          const bad = new Set(culprits);
          const vendor = style === 'unnamed' ? unnamed(bad) : named(bad, style === 'all');
          const { settled, requests, accepted } = await run(n, vendor);
          expect(requests.length).toBeLessThanOrEqual(1 + followUpBudget(n));
          expect(new Set(accepted).size).toBe(accepted.length);
          const anyDelivered = settled.some((s) => s.verdict.kind === 'delivered');
          settled.forEach((s, row) => {
            if (bad.has(row)) {
              expect(s.verdict.kind).not.toBe('delivered');
            } else if (s.verdict.kind === 'dead_letter') {
              // Only for an unnamed refusal when nothing at all got through: then it was most likely about the
              // request. A row the vendor named others for was never judged, and is never dead-lettered.
              expect(style).toBe('unnamed');
              expect(anyDelivered).toBe(false);
            } else if (s.verdict.kind === 'retry') {
              expect(s.verdict.reason).toBe('batch_partially_rejected');
            }
          });
          if (bad.size === 0) expect(requests).toHaveLength(1);
        },
      ),
    );
  });

  it('what is left when the budget runs out goes to the next attempt once something got through', async () => {
    // 1 and 6 bad among 8: the second bad row is not isolated within 6 follow-ups.
    const { settled, requests } = await run(8, unnamed(new Set([1, 6])));
    expect(requests).toHaveLength(1 + followUpBudget(8));
    expect(settled[1]?.verdict).toEqual(refused);
    const left = settled.filter((s) => s.verdict.kind === 'retry');
    expect(left.length).toBeGreaterThan(0);
    for (const s of left) {
      expect(s.verdict).toMatchObject({ kind: 'retry', reason: 'batch_partially_rejected' });
      expect(s.lastResponse).toEqual(answer);
    }
  });

  it('a follow-up the vendor answers with retry for every row stops the splitting', async () => {
    let calls = 0;
    const { settled, requests } = await run(6, (rows) => {
      calls += 1;
      if (calls === 1) return rows.map(() => bisect(refused));
      return rows.map(() => retry('vendor_unavailable', 30_000));
    });
    expect(requests).toHaveLength(2);
    for (const s of settled) expect(s.verdict).toEqual(retry('vendor_unavailable', 30_000));
  });

  it('a lone refused row gets the vendor verdict without another request', async () => {
    const { settled, requests } = await run(1, unnamed(new Set([0])));
    expect(requests).toHaveLength(1);
    expect(settled).toEqual([{ verdict: refused, lastResponse: answer }]);
  });
});
