import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BACKOFF_CAP_MS, backoffMs, batchBody, retryAfterMs } from './transport';

describe('retryAfterMs', () => {
  const now = Date.parse('2026-03-01T12:00:00Z');
  it.each([
    ['5', 5_000],
    ['0', 0],
    ['1.5', 1_500],
    ['Sun, 01 Mar 2026 12:00:30 GMT', 30_000],
    ['Sun, 01 Mar 2026 11:00:00 GMT', 0],
    ['999999', 3_600_000],
    ['soon', undefined],
    ['', undefined],
    [null, undefined],
  ])('%j → %j', (header, expected) => {
    expect(retryAfterMs(header, now)).toBe(expected);
  });
});

describe('backoffMs', () => {
  it('stays within half and all of min(cap, 1 s · 2^(n-1)) (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (attempt, random) => {
          const ceiling = Math.min(BACKOFF_CAP_MS, 1_000 * 2 ** (attempt - 1));
          const delay = backoffMs(attempt, random);
          expect(delay).toBeGreaterThanOrEqual(Math.floor(ceiling / 2));
          expect(delay).toBeLessThanOrEqual(ceiling);
        },
      ),
    );
  });
});

describe('batchBody', () => {
  it('is the /v1/batch JSON with the key in the body', () => {
    const body = JSON.parse(batchBody('dk_test_a"b', ['{"messageId":"1"}', '{"messageId":"2"}'], 0));
    expect(body).toEqual({
      pipelineKey: 'dk_test_a"b',
      sentAt: expect.any(String),
      batch: [{ messageId: '1' }, { messageId: '2' }],
    });
    expect(JSON.parse(batchBody('dk_test_x', [], 7)).dropped).toBe(7);
  });
});
