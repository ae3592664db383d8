import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF, planRetry, retryCaps } from './backoff';

describe('retry schedule', () => {
  it('spans about 24 hours over RETRY_MAX_ATTEMPTS=5 with the defaults', () => {
    const caps = retryCaps(DEFAULT_BACKOFF);
    expect(caps.map((ms) => Math.round(ms / 1000))).toEqual([60, 660, 7260, 78_420]);
    expect(caps.reduce((a, b) => a + b, 0)).toBe(24 * 60 * 60 * 1000);
  });

  it('draws each delay within [0, cap] (full jitter) and stops after the last attempt', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.double({ min: 0, max: 0.999_999, noNaN: true }),
        (attempt, r) => {
          const plan = planRetry(DEFAULT_BACKOFF, attempt, undefined, () => r);
          expect(plan.retry).toBe(true);
          if (plan.retry) {
            expect(plan.nextAttempt).toBe(attempt + 1);
            expect(plan.delayMs).toBeGreaterThanOrEqual(0);
            expect(plan.delayMs).toBeLessThanOrEqual(retryCaps(DEFAULT_BACKOFF)[attempt - 1] ?? 0);
          }
        },
      ),
    );
    expect(planRetry(DEFAULT_BACKOFF, 5, undefined).retry).toBe(false);
  });

  it('never retries sooner than Retry-After, and clips an absurd one', () => {
    const plan = planRetry(DEFAULT_BACKOFF, 1, 120_000, () => 0);
    expect(plan).toEqual({ retry: true, delayMs: 120_000, nextAttempt: 2 });
    const absurd = planRetry(DEFAULT_BACKOFF, 1, 30 * 86_400_000, () => 0);
    expect(absurd.retry && absurd.delayMs).toBe(DEFAULT_BACKOFF.maxRetryAfterMs);
  });
});
